// The BART and Marian presets (models/bart.hpp) from directories save_pretrained wrote
// (tests/data/hf_dirs/bart: learned positions with offset 2, layernorm_embedding, GELU;
// tests/data/hf_dirs/marian: split sinusoids, embeddings scaled by sqrt(d), swish; both post-LN
// with a non-zero final_logits_bias) against transformers' BartForConditionalGeneration and
// MarianMTModel on padded batches (max abs 1e-4, the bound of the other directory tests);
// step-by-step decoding against the full pass; the runtime dispatch; config errors.
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bart.hpp>
#include <tformer/models/hf_auto.hpp>

#include <string>
#include <variant>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
template <class Model>
void check_logits(const Model& m, const std::string& name) {
  const auto logits = test::check_seq2seq_logits(m, name);
  const auto ref = test::hf_reference(name);
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto dec_ids = ref.load<std::int32_t>("decoder_input_ids"), dec_lengths = ref.load<std::int32_t>("decoder_lengths");
  const auto source = m.encode(ids, lengths);

  // One token at a time through the decoder's state: the decoder's own positions continue from the
  // state's length.
  const std::int64_t B = dec_ids.dim(0), T = dec_ids.dim(1), V = logits.dim(2);
  auto state = m.make_state(B, T);
  tensor<float> steps(shape{B, T, V});
  for (std::int64_t t = 0; t < T; ++t) {
    tensor<std::int32_t> step(shape{B, 1});
    for (std::int64_t b = 0; b < B; ++b) step(b, 0) = dec_ids(b, t);
    const auto l = m.decode(step, source, {}, &state);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t v = 0; v < V; ++v) steps(b, t, v) = l(b, 0, v);
  }
  const double step_err = test::max_abs_diff(steps, logits, dec_lengths);
  INFO(name << " step-by-step vs full pass " << step_err);
  CHECK(step_err <= 1e-5);
}

std::string config_error(const nlohmann::json& j) {
  return test::thrown_message<io::config_error>([&] { (void)models::bart_config(io::json_fields(j, "bart/config.json")); });
}
}  // namespace

TEST_CASE("BART from its directory matches transformers", "[models][parity][bart]") {
  const io::hf_directory dir(test::hf_dir("bart"));
  const auto c = models::bart_config(dir);
  CHECK(c.position_offset == 2);
  CHECK(c.embed_scale == 1.0f);
  const auto m = models::load_bart<models::bart<>>(dir);
  CHECK(m.embed.positions.weight.dim(0) == 22);  // max_position_embeddings 20 + the offset
  check_logits(m, "bart");
  CHECK_THROWS_AS((models::load_bart<models::marian<>>(dir)), io::config_error);
  CHECK_THROWS_AS((models::load_bart<models::bart<simd::act::relu>>(dir)), io::config_error);
}

TEST_CASE("Marian from its directory matches transformers", "[models][parity][bart]") {
  const io::hf_directory dir(test::hf_dir("marian"));
  const auto c = models::bart_config(dir);
  CHECK(c.position_offset == 0);
  CHECK(c.embed_scale == Approx(std::sqrt(32.0)));
  check_logits(models::load_bart<models::marian<>>(dir), "marian");
  const std::string msg = test::thrown_message<io::config_error>([&] { (void)models::load_bart<models::marian<simd::act::gelu>>(dir); });
  CHECK(msg.find("field 'activation_function' is 'swish' but the model type runs gelu") != std::string::npos);
}

TEST_CASE("open_seq2seq reads BART and Marian directories", "[models][bart][hf_auto]") {
  for (const std::string name : {"bart", "marian"}) {
    const io::hf_directory dir(test::hf_dir(name));
    CHECK(models::hf_kind_of(dir) == models::hf_kind::seq2seq);
    const auto m = models::open_seq2seq(dir);
    CHECK(m.index() == (name == "bart" ? 4u : 5u));
    std::visit([&](const auto& model) { check_logits(model, name); }, m);
  }
  CHECK_THROWS_AS(models::open_decoder(io::hf_directory(test::hf_dir("bart"))), io::config_error);
}

TEST_CASE("bart config: errors name the field", "[models][bart][errors]") {
  const io::hf_directory bart(test::hf_dir("bart")), marian(test::hf_dir("marian"));
  auto with = [](nlohmann::json j, const char* key, nlohmann::json v) {
    j[key] = std::move(v);
    return j;
  };
  CHECK(config_error(with(bart.config(), "decoder_attention_heads", 8)) ==
        "tformer: bart/config.json: field 'decoder_attention_heads' is 8 but encoder_attention_heads is 4: the preset runs "
        "one size on both sides");
  CHECK(config_error(with(bart.config(), "decoder_ffn_dim", 64)).find("field 'decoder_ffn_dim' is 64") != std::string::npos);
  CHECK(config_error(with(bart.config(), "encoder_attention_heads", 5)).find("field 'decoder_attention_heads'") !=
        std::string::npos);  // differs from the decoder's 4 first
  CHECK(config_error(with(bart.config(), "model_type", "mbart")).find("not 'bart' or 'marian'") != std::string::npos);
  CHECK(config_error(with(bart.config(), "tie_word_embeddings", false)).find("field 'tie_word_embeddings'") != std::string::npos);
  CHECK(config_error(with(marian.config(), "decoder_vocab_size", 50)).find("field 'decoder_vocab_size' differs") !=
        std::string::npos);
  CHECK(config_error(with(marian.config(), "share_encoder_decoder_embeddings", false))
            .find("field 'share_encoder_decoder_embeddings'") != std::string::npos);
  nlohmann::json j = bart.config();
  j.erase("d_model");
  CHECK(config_error(j).find("'d_model'") != std::string::npos);
  j = marian.config();  // absent fields take MarianConfig's defaults (the checkpoints write them)
  j.erase("scale_embedding");
  CHECK(models::bart_config(io::json_fields(j, "m")).embed_scale == 1.0f);
  j.erase("max_position_embeddings");
  CHECK(models::bart_config(io::json_fields(j, "m")).max_positions == 1024);
  j.erase("activation_function");
  CHECK(models::bart_activation(io::json_fields(j, "m")) == "gelu");
}
