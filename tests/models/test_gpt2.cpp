// The GPT-2 preset (models/gpt2.hpp) from a directory save_pretrained wrote
// (tests/data/hf_dirs/gpt2) against transformers' GPT2LMHeadModel on a padded batch, incremental
// decoding against the full pass, and the config reader's errors.
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/gpt2.hpp>

#include <cmath>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("GPT-2 from its directory matches transformers' GPT2LMHeadModel", "[models][parity][gpt2]") {
  const io::hf_directory dir(test::hf_dir("gpt2"));
  const auto ref = test::hf_reference("gpt2");
  const auto lm = models::load_gpt2(dir);
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto logits = lm.forward(ids, lengths);
  const auto want = ref.load<float>("logits");
  const double err = test::max_abs_diff(logits, want, lengths);
  INFO("logits max abs error " << err);
  CHECK(err <= 1e-4);  // logits of order 1
  CHECK(test::same_argmax(logits, want, lengths));
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
