// The BERT preset (models/bert.hpp) from a directory as sentence-transformers saves one
// (tests/data/hf_dirs/bert_st: config.json, model.safetensors, modules.json, 1_Pooling) against
// transformers' BertModel: hidden states on a padded batch, the sentence embedding (masked mean,
// L2-normalized), CLS and max pooling; the config reader's and the pooling reader's errors. And
// the same model converted by llama.cpp (tests/data/gguf_arch/bert.gguf) against the same
// reference; the GGUF config reader's errors.
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_source.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bert.hpp>
#include <tformer/nn/parameters.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;
namespace fs = std::filesystem;

TEST_CASE("BERT from a sentence-transformers directory matches transformers and sentence-transformers",
          "[models][parity][bert]") {
  const io::hf_directory dir(test::hf_dir("bert_st"));
  const auto ref = test::hf_reference("bert_st");
  const auto m = models::load_bert(dir);
  CHECK(m.config.d_model() == 32);
  CHECK(m.config.token_types == 2);
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto hidden = m.forward(ids, lengths);  // [3, 9, 32]
  const double err = test::max_abs_diff(hidden, ref.load<float>("last_hidden_state"), lengths);
  INFO("last_hidden_state max abs error " << err);
  CHECK(err <= 1e-4);  // LayerNorm-scaled outputs of order 1

  const auto pooling = models::read_sentence_pooling(dir);
  CHECK(pooling.mean);
  CHECK_FALSE(pooling.cls);
  CHECK(pooling.normalize);
  tensor<float> emb(shape{3, pooling.dim(32)});
  models::sentence_embedding(hidden, lengths, pooling, emb);
  CHECK(test::max_abs_diff(emb, ref.load<float>("embedding")) <= 1e-5);

  tensor<float> cls(shape{3, 32}), mx(shape{3, 32}), mean(shape{3, 32}), both(shape{3, 64});
  models::sentence_embedding(hidden, lengths, models::sentence_pooling{.cls = true, .mean = false}, cls);
  models::sentence_embedding(hidden, lengths, models::sentence_pooling{.max = true, .mean = false}, mx);
  models::sentence_embedding(hidden, lengths, models::sentence_pooling{}, mean);
  CHECK(test::max_abs_diff(cls, ref.load<float>("cls")) <= 1e-4);
  CHECK(test::max_abs_diff(mx, ref.load<float>("max")) <= 1e-4);  // padding never wins the max
  CHECK(test::max_abs_diff(mean, ref.load<float>("mean")) <= 1e-4);
  models::sentence_embedding(hidden, lengths, models::sentence_pooling{.max = true, .mean = true}, both);
  for (std::int64_t b = 0; b < 3; ++b)  // concatenated in sentence-transformers' order: max, then mean
    for (std::int64_t c = 0; c < 32; ++c) {
      CHECK(both(b, c) == mx(b, c));
      CHECK(both(b, 32 + c) == mean(b, c));
    }
  CHECK_THROWS_AS(models::sentence_embedding(hidden, lengths, pooling, mean.view().slice(1, 0, 16)), shape_error);
}

TEST_CASE("BERT preset: BertFor* names with the bert. prefix", "[models][bert]") {
  CHECK(io::hf_bert("bert.").resolve("layers.1.attn.q.weight")->name == "bert.encoder.layer.1.attention.self.query.weight");
  CHECK(io::hf_bert("bert.").ignored("cls.predictions.bias"));
  CHECK(io::hf_bert().resolve("embed.tokens.weight")->name == "embeddings.word_embeddings.weight");
}

TEST_CASE("bert_config names config.json and the field it cannot use", "[models][bert][errors]") {
  const io::hf_directory dir(test::hf_dir("bert_st"));
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = dir.config();
    if (v.is_discarded())
      j.erase(key);
    else
      j[key] = v;
    return test::thrown_message<io::config_error>([&] { (void)models::bert_config(io::json_fields(j, "d/config.json")); });
  };
  CHECK(with("hidden_size", nlohmann::json::value_t::discarded) == "tformer: d/config.json: field 'hidden_size' is missing");
  CHECK(with("hidden_size", "384") == "tformer: d/config.json: field 'hidden_size' is a string, expected an integer");
  CHECK(with("num_attention_heads", 5).find("does not divide hidden_size 32") != std::string::npos);
  CHECK(with("hidden_act", "relu").find("field 'hidden_act' is 'relu'") != std::string::npos);
  CHECK(with("position_embedding_type", "relative_key").find("'position_embedding_type'") != std::string::npos);
  CHECK(with("model_type", "roberta").find("field 'model_type' is 'roberta', not 'bert'") != std::string::npos);
  CHECK(with("num_hidden_layers", 0).find("'num_hidden_layers' is 0, expected at least 1") != std::string::npos);
  CHECK(with("layer_norm_eps", -1.0).find("'layer_norm_eps' must be > 0") != std::string::npos);
}

TEST_CASE("sentence-transformers pooling: modes, Normalize, and errors", "[models][bert][errors]") {
  auto read = [](const char* text) {
    const auto j = nlohmann::json::parse(text);
    return models::sentence_pooling_config(io::json_fields(j, "1_Pooling/config.json"));
  };
  const auto cls = read(R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})");
  CHECK((cls.cls && !cls.mean));
  CHECK(cls.dim(384) == 384);
  const auto two = read(R"({"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": true})");
  CHECK(two.dim(384) == 768);
  CHECK(read(R"({"pooling_mode": "lasttoken"})").last);
  auto fails = [&](const char* text) { return test::thrown_message<io::config_error>([&] { (void)read(text); }); };
  CHECK(fails(R"({"pooling_mode_weightedmean_tokens": true})").find("'pooling_mode_weightedmean_tokens'") != std::string::npos);
  CHECK(fails(R"({"pooling_mode_mean_tokens": false})").find("no pooling mode is set") != std::string::npos);
  CHECK(fails(R"({"pooling_mode_mean_tokens": 1})").find("'pooling_mode_mean_tokens' is an integer, expected true or false") !=
        std::string::npos);

  // a directory whose modules.json names an unknown module, or a Pooling config that is truncated
  const fs::path d = fs::temp_directory_path() / "tformer_test_bert_modules";
  fs::remove_all(d);
  fs::copy(test::hf_dir("bert_st"), d, fs::copy_options::recursive);
  {
    const io::hf_directory dir(d);
    std::ofstream(d / "1_Pooling" / "config.json", std::ios::trunc) << R"({"pooling_mode_cls_token": tr)";
    const auto msg = test::thrown_message<io::config_error>([&] { (void)models::read_sentence_pooling(dir); });
    CHECK(msg.find("1_Pooling/config.json") != std::string::npos);
    CHECK(msg.find("not valid JSON at byte") != std::string::npos);
    std::ofstream(d / "modules.json", std::ios::trunc) << R"([{"type": "sentence_transformers.models.Dense", "path": "2_Dense"}])";
    CHECK(test::thrown_message<io::config_error>([&] { (void)models::read_sentence_pooling(dir); })
              .find("field '[0].type' is 'sentence_transformers.models.Dense'") != std::string::npos);
    fs::remove(d / "modules.json");
    const auto plain = models::read_sentence_pooling(dir);  // no modules.json: masked mean, no normalize
    CHECK((plain.mean && !plain.normalize));
  }
  fs::remove_all(d);
}

TEST_CASE("sentence_embedding checks the lengths before reading the hidden states", "[models][bert][errors]") {
  const tensor<float> hidden(shape{2, 3, 4}, 1.0f);  // [B, S, d]
  tensor<float> out(shape{2, 4});                      // [B, d]
  for (const auto& pooling : {models::sentence_pooling{.max = true, .mean = false},
                              models::sentence_pooling{.mean = false, .mean_sqrt_len = true}}) {
    tensor<std::int32_t> too_long(shape{2}, 3);
    too_long(1) = 4;  // more tokens than S = 3
    CHECK_THROWS_AS(models::sentence_embedding(hidden, too_long, pooling, out), value_error);
    const tensor<std::int32_t> short_lengths(shape{1}, 3);  // one length for two sequences
    CHECK_THROWS_AS(models::sentence_embedding(hidden, short_lengths, pooling, out), tformer::error);
  }
}

// ---- GGUF: llama.cpp's convert_hf_to_gguf.py output of the same model (tools/make_gguf_arch_fixtures.py)

TEST_CASE("BERT from llama.cpp's GGUF matches transformers and sentence-transformers", "[models][parity][bert][gguf]") {
  const io::gguf_file f(test::gguf_arch("bert.gguf"));
  const auto c = models::bert_config(f);
  const auto hf = models::bert_config(io::hf_directory(test::hf_dir("bert_st")));
  test::check_same_sizes(c, hf);
  models::encoder<models::bert<>> m(c);
  CHECK(io::load_gguf(m, f, io::gguf_bert()) == static_cast<std::int64_t>(nn::parameter_names(m).size()));
  const auto ref = test::hf_reference("bert_st");
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto hidden = m.forward(ids, lengths);
  const double err = test::max_abs_diff(hidden, ref.load<float>("last_hidden_state"), lengths);
  INFO("last_hidden_state max abs error " << err);
  CHECK(err <= 1e-4);  // as the directory test
  tensor<float> emb(shape{3, 32});  // bert.pooling_type 1 (mean), then sentence-transformers' Normalize
  models::sentence_embedding(hidden, lengths, models::sentence_pooling{.normalize = true}, emb);
  CHECK(test::max_abs_diff(emb, ref.load<float>("embedding")) <= 1e-5);
}

TEST_CASE("bert_config(gguf) names the file and the key it cannot use", "[models][bert][gguf][errors]") {
  const auto wrong = test::thrown_message<io_error>([] { (void)models::bert_config(io::gguf_file(test::gguf_arch("qwen2.gguf"))); });
  CHECK(wrong.find("general.architecture is 'qwen2', not 'bert'") != std::string::npos);
  CHECK(wrong.find("qwen2.gguf") != std::string::npos);

  const auto path = fs::temp_directory_path() / "tformer_test_bert.gguf";
  tensor<float> table(shape{5, 8}, 0.25f), positions(shape{4, 8}, 0.5f), types(shape{2, 8}, 0.0f);
  auto write = [&](bool with_heads, bool causal, std::uint32_t type_count) {
    io::gguf_writer w;
    w.add("general.architecture", std::string("bert"));
    w.add("bert.block_count", std::uint32_t{1});
    w.add("bert.context_length", std::uint32_t{4});
    w.add("bert.embedding_length", std::uint32_t{8});
    w.add("bert.feed_forward_length", std::uint32_t{32});
    if (with_heads) w.add("bert.attention.head_count", std::uint32_t{2});
    w.add("bert.attention.layer_norm_epsilon", 1e-12f);
    w.add("bert.attention.causal", causal);
    w.add("tokenizer.ggml.token_type_count", type_count);
    w.add_tensor("token_embd.weight", table);
    w.add_tensor("position_embd.weight", positions);
    w.add_tensor("token_types.weight", types);
    w.write(path);
  };
  auto error = [&] { return test::thrown_message<io_error>([&] { (void)models::bert_config(io::gguf_file(path)); }); };
  write(false, false, 2);
  CHECK(error().find("has no key 'bert.attention.head_count'") != std::string::npos);
  write(true, false, 2);
  CHECK(models::bert_config(io::gguf_file(path)).token_types == 2);
  write(true, true, 2);
  CHECK(error().find("key 'bert.attention.causal' is true") != std::string::npos);
  write(true, false, 3);
  CHECK(error() == "tformer: gguf file '" + path.string() +
                       "': key 'tokenizer.ggml.token_type_count' is 3 but token_types.weight has 2 rows");
  fs::remove(path);
}
