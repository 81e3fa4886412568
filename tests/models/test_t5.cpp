// The T5 preset (models/t5.hpp) from directories save_pretrained wrote: v1.0 (ReLU, head tied to
// the shared table with the d_model^-0.5 rescale; tests/data/hf_dirs/t5_v1_0) and v1.1 (gated GELU;
// transformers 5 ties its head without the rescale; t5_v1_1) against transformers'
// T5ForConditionalGeneration on padded batches; transformers 4's config spelling; errors.
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/t5.hpp>

#include <string>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;


TEST_CASE("T5 v1.0 (ReLU, tied head, rescaled) from its directory matches transformers", "[models][parity][t5]") {
  const io::hf_directory dir(test::hf_dir("t5_v1_0"));
  const auto f = dir.fields();
  CHECK_FALSE(models::t5_gated(f));
  CHECK(models::t5_tied(f));
  CHECK(models::t5_decoder_output_scale(f) == Approx(1.0 / std::sqrt(32.0)));
  (void)test::check_seq2seq_logits(models::load_t5<models::t5<false, true>>(dir), "t5_v1_0");
  CHECK_THROWS_AS((models::load_t5<models::t5<true, true>>(dir)), io::config_error);  // not gated
  CHECK_THROWS_AS((models::load_t5<models::t5<false, false>>(dir)), io::config_error);  // tied
}

TEST_CASE("T5 v1.1 (gated GELU) from its directory matches transformers", "[models][parity][t5]") {
  const io::hf_directory dir(test::hf_dir("t5_v1_1"));
  const auto f = dir.fields();
  CHECK(models::t5_gated(f));
  CHECK(models::t5_tied(f));  // transformers 5 writes tie_word_embeddings: true and scale_decoder_outputs: false
  CHECK(models::t5_decoder_output_scale(f) == 1.0f);
  (void)test::check_seq2seq_logits(models::load_t5<models::t5<true, true>>(dir), "t5_v1_1");
}

TEST_CASE("t5 config: transformers 4's spelling and errors naming the field", "[models][t5][errors]") {
  const io::hf_directory dir(test::hf_dir("t5_v1_0"));
  nlohmann::json j = dir.config();
  j.erase("scale_decoder_outputs");  // 4.x: the rescale follows tie_word_embeddings
  CHECK(models::t5_decoder_output_scale(io::json_fields(j, "t")) < 1.0f);
  j["tie_word_embeddings"] = false;
  CHECK(models::t5_decoder_output_scale(io::json_fields(j, "t")) == 1.0f);
  j.erase("tie_word_embeddings");  // T5Config's default: tied
  CHECK(models::t5_tied(io::json_fields(j, "t")));
  j.erase("num_decoder_layers");
  CHECK(models::t5_config(io::json_fields(j, "t")).decoder_layers == 2);
  auto fails = [&](const char* key, nlohmann::json v) {
    nlohmann::json k = dir.config();
    k[key] = v;
    return test::thrown_message<io::config_error>([&] { (void)models::t5_config(io::json_fields(k, "t5/config.json")); });
  };
  CHECK(fails("feed_forward_proj", "gated-silu") ==
        "tformer: t5/config.json: field 'feed_forward_proj' is 'gated-silu': the T5 preset runs 'relu' (v1.0) and 'gated-gelu' (v1.1)");
  CHECK(fails("d_kv", 0).find("field 'd_kv' is 0, expected at least 1") != std::string::npos);
  CHECK(fails("d_model", 32.5).find("field 'd_model' is a number with a fraction") != std::string::npos);
  CHECK(fails("model_type", "bart").find("not 't5'") != std::string::npos);
}
