// The GPT-2 preset (models/gpt2.hpp) from a directory save_pretrained wrote
// (tests/data/hf_dirs/gpt2) against transformers' GPT2LMHeadModel on a padded batch, incremental
// decoding against the full pass, and the config reader's errors. And the same model converted by
// llama.cpp (tests/data/gguf_arch/gpt2*.gguf): F32, and Q8_0 kept as its bytes (the fused attn_qkv
// sliced) against transformers on the dequantized weights; the GGUF config reader's errors.
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_source.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/gpt2.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/quant/q8_0.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
// Logits of lm on the reference batch against want, within the directory test's tolerance.
template <class Model>
void check_logits(const Model& lm, const io::safetensors_file& ref) {
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto logits = lm.forward(ids, lengths);
  const auto want = ref.load<float>("logits");
  const double err = test::max_abs_diff(logits, want, lengths);
  INFO("logits max abs error " << err);
  CHECK(err <= 1e-4);  // logits of order 1
  CHECK(test::same_argmax(logits, want, lengths));
}
}  // namespace

TEST_CASE("GPT-2 from its directory matches transformers' GPT2LMHeadModel", "[models][parity][gpt2]") {
  const io::hf_directory dir(test::hf_dir("gpt2"));
  const auto ref = test::hf_reference("gpt2");
  const auto lm = models::load_gpt2(dir);
  check_logits(lm, ref);
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto logits = lm.forward(ids, lengths);
  auto state = lm.make_state(3, 9);  // one token per step equals the full pass
  for (std::int64_t s = 0; s < 9; ++s) {
    tensor<std::int32_t> step(shape{3, 1}), n(shape{3});
    for (std::int64_t b = 0; b < 3; ++b) {
      step(b, 0) = ids(b, s);
      n(b) = s < lengths(b) ? 1 : 0;
    }
    const auto out = lm.forward(step, n, &state);
    for (std::int64_t b = 0; b < 3; ++b)
      if (s < lengths(b))
        for (std::int64_t v = 0; v < 97; ++v) REQUIRE(std::fabs(out(b, 0, v) - logits(b, s, v)) <= 1e-5f);
  }
}

TEST_CASE("gpt2_config: defaults, scaled layers, and errors naming the field", "[models][gpt2][errors]") {
  const io::hf_directory dir(test::hf_dir("gpt2"));
  nlohmann::json j = dir.config();
  auto config = [&] { return models::gpt2_config(io::json_fields(j, "g/config.json")); };
  CHECK(config().layer.ffn.d_ff == 128);  // n_inner null: 4 * n_embd
  j["n_inner"] = 40;
  CHECK(config().layer.ffn.d_ff == 40);
  j["scale_attn_by_inverse_layer_idx"] = true;
  const auto scaled = config();
  CHECK(scaled.layer_at(1).attention.scale.value() == Approx(1.0 / std::sqrt(8.0) / 2.0));
  j["scale_attn_weights"] = false;
  CHECK_FALSE(models::gpt2_config(io::json_fields(nlohmann::json{{"model_type", "gpt2"}, {"vocab_size", 5}, {"n_layer", 1},
                                                                {"n_positions", 4}, {"n_embd", 8}, {"n_head", 2},
                                                                {"scale_attn_weights", true}},
                                                 "x"))
                   .layer.attention.scale.has_value());
  CHECK(config().layer_at(0).attention.scale.value() == 1.0f);
  auto fails = [&](const char* key, nlohmann::json v) {
    nlohmann::json k = dir.config();
    k[key] = v;
    return test::thrown_message<io::config_error>([&] { (void)models::gpt2_config(io::json_fields(k, "g/config.json")); });
  };
  CHECK(fails("activation_function", "relu").find("field 'activation_function' is 'relu'") != std::string::npos);
  CHECK(fails("n_head", 3).find("field 'n_head' is 3, which does not divide n_embd 32") != std::string::npos);
  CHECK(fails("n_layer", nullptr).find("field 'n_layer' is missing") != std::string::npos);
  CHECK(fails("tie_word_embeddings", false).find("'tie_word_embeddings'") != std::string::npos);
  CHECK(fails("model_type", "llama").find("not 'gpt2'") != std::string::npos);
}

// ---- GGUF: llama.cpp's convert_hf_to_gguf.py output of the same model (tools/make_gguf_arch_fixtures.py)


TEST_CASE("GPT-2 from llama.cpp's F32 GGUF matches transformers' GPT2LMHeadModel", "[models][parity][gpt2][gguf]") {
  const io::gguf_file f(test::gguf_arch("gpt2.gguf"));
  const auto c = models::gpt2_config(f);
  const auto hf = models::gpt2_config(io::hf_directory(test::hf_dir("gpt2")));
  test::check_same_sizes(c, hf);
  models::decoder_lm<models::gpt2<>> lm(c);
  CHECK(io::load_gguf(lm, f, io::gguf_gpt2()) == static_cast<std::int64_t>(nn::parameter_names(lm).size()));
  check_logits(lm, test::hf_reference("gpt2"));
}

TEST_CASE("GPT-2 from llama.cpp's Q8_0 GGUF keeps its bytes and matches transformers on the dequantized weights",
          "[models][parity][gpt2][gguf]") {
  const io::gguf_file f(test::gguf_arch("gpt2_q8_0.gguf"));
  models::decoder_lm<models::gpt2<quant::q8_0, quant::q8_0>> lm(models::gpt2_config(f));
  io::load_gguf(lm, f, io::gguf_gpt2());
  const auto& layer = lm.stack.layers[1];
  const auto qkv = f.bytes(f.at("blk.1.attn_qkv.weight"));  // [96, 32] Q8_0: k is rows 32..63
  REQUIRE(qkv.size() == 3 * layer.self_attn.k.weight.size_bytes());
  CHECK(std::memcmp(layer.self_attn.k.weight.data(), qkv.data() + layer.self_attn.k.weight.size_bytes(),
                    layer.self_attn.k.weight.size_bytes()) == 0);  // a slice of the fused tensor's bytes
  CHECK(std::memcmp(layer.ffn.up.weight.data(), f.bytes(f.at("blk.1.ffn_up.weight")).data(), layer.ffn.up.weight.size_bytes()) == 0);
  // transformers' GPT2LMHeadModel with every Q8_0 weight replaced by its dequantized values: tformer's
  // Q8_0 kernels compute exactly with those weights, so the directory test's tolerance holds.
  check_logits(lm, io::safetensors_file(test::gguf_arch("gpt2_q8_0.reference.safetensors")));
}

TEST_CASE("gpt2_config(gguf) names the file and the key it cannot use", "[models][gpt2][gguf][errors]") {
  const auto wrong = test::thrown_message<io_error>([] { (void)models::gpt2_config(io::gguf_file(test::gguf_arch("bert.gguf"))); });
  CHECK(wrong.find("general.architecture is 'bert', not 'gpt2'") != std::string::npos);
  CHECK(wrong.find("bert.gguf") != std::string::npos);

  const auto path = std::filesystem::temp_directory_path() / "tformer_test_gpt2.gguf";
  tensor<float> table(shape{5, 8}, 0.25f), positions(shape{4, 8}, 0.5f), head(shape{5, 8}, 0.25f);
  auto write = [&](bool with_eps, bool with_head) {
    io::gguf_writer w;
    w.add("general.architecture", std::string("gpt2"));
    w.add("gpt2.block_count", std::uint32_t{1});
    w.add("gpt2.context_length", std::uint32_t{4});
    w.add("gpt2.embedding_length", std::uint32_t{8});
    w.add("gpt2.feed_forward_length", std::uint32_t{32});
    w.add("gpt2.attention.head_count", std::uint32_t{2});
    if (with_eps) w.add("gpt2.attention.layer_norm_epsilon", 1e-5f);
    w.add_tensor("token_embd.weight", table);
    w.add_tensor("position_embd.weight", positions);
    if (with_head) w.add_tensor("output.weight", head);
    w.write(path);
  };
  auto error = [&] { return test::thrown_message<io_error>([&] { (void)models::gpt2_config(io::gguf_file(path)); }); };
  write(false, false);
  CHECK(error().find("has no key 'gpt2.attention.layer_norm_epsilon'") != std::string::npos);
  write(true, true);  // an output.weight that copies the token table is the tied head
  CHECK(models::gpt2_config(io::gguf_file(path)).vocab == 5);
  head(4, 7) = 1.0f;
  write(true, true);
  CHECK(error() == "tformer: gguf file '" + path.string() +
                       "': tensor 'output.weight' differs from 'token_embd.weight': the GPT-2 preset ties its head");
  std::filesystem::remove(path);
}
