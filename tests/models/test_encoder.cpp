// models::encoder as BERT against Hugging Face BertModel (tiny, randomly initialised, padded batch):
// hidden states, the dense pooler, CLS and masked-mean pooling.
#include <tformer/io/name_maps.hpp>
#include <tformer/models/encoder.hpp>
#include <tformer/models/heads.hpp>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

namespace {
// The user-side definition of a BERT-style encoder.
struct bert_spec {
  using layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>>;
  using positions = nn::learned_positions;
  using embed_norm = nn::layer_norm;
};

models::model_config bert_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["num_hidden_layers"];
  c.max_positions = j["max_position_embeddings"];
  c.token_types = j["type_vocab_size"];
  c.layer.attention = {.d_model = j["hidden_size"], .heads = j["num_attention_heads"]};
  c.layer.ffn = {.d_model = j["hidden_size"], .d_ff = j["intermediate_size"], .bias = true};
  c.layer.norm_eps = j["layer_norm_eps"];
  return c;
}
}  // namespace

TEST_CASE("BERT encoder matches Hugging Face BertModel on a padded batch", "[models][parity][bert]") {
  test::fixture fx("hf_bert");
  models::encoder<bert_spec> bert(bert_config(fx.config));
  io::load_safetensors(bert, fx.model, io::hf_bert());
  const auto ids = fx.i32("input_ids");
  const auto lengths = fx.i32("lengths");
  const auto hidden = bert.forward(ids, lengths);
  const double err = test::max_abs_diff(hidden, fx.f32("last_hidden_state"), lengths);
  INFO("last_hidden_state max abs error " << err);
  CHECK(err <= 1e-4);  // LayerNorm-scaled outputs of order 1; measured ~1e-6

  const std::int64_t B = ids.dim(0), d = bert.config.d_model();
  tensor<float> cls(shape{B, d}), mean(shape{B, d}), pooled(shape{B, d});
  models::pool(hidden, lengths, models::pooling::cls, cls);
  models::pool(hidden, lengths, models::pooling::mean, mean);
  CHECK(test::max_abs_diff(cls, fx.f32("cls")) <= 1e-4);
  CHECK(test::max_abs_diff(mean, fx.f32("mean_pooled")) <= 1e-4);  // padding must not leak into the mean

  models::dense_pooler pooler(d);
  io::load_safetensors(pooler, fx.model, io::hf_bert_pooler());
  pooler.forward(hidden, pooled);
  CHECK(test::max_abs_diff(pooled, fx.f32("pooler_output")) <= 1e-4);
}

TEST_CASE("padding never influences real positions", "[models][bert]") {
  test::fixture fx("hf_bert");
  models::encoder<bert_spec> bert(bert_config(fx.config));
  io::load_safetensors(bert, fx.model, io::hf_bert());
  auto ids = fx.i32("input_ids");
  const auto lengths = fx.i32("lengths");
  const auto a = bert.forward(ids, lengths);
  for (std::int64_t b = 0; b < ids.dim(0); ++b)
    for (std::int64_t s = lengths(b); s < ids.dim(1); ++s) ids(b, s) = 5 + static_cast<std::int32_t>(s);  // other padding
  const auto c = bert.forward(ids, lengths);
  CHECK(test::max_abs_diff(a, c, lengths) == 0.0);
}

TEST_CASE("encoder bad input: ids out of range, too long, wrong lengths", "[models][errors]") {
  test::fixture fx("hf_bert");
  models::encoder<bert_spec> bert(bert_config(fx.config));
  tensor<std::int32_t> ids(shape{1, 4}, 3);
  ids(0, 2) = 97;  // vocab is 97
  try {
    (void)bert.forward(ids);
    FAIL("expected value_error");
  } catch (const value_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("embedding") != std::string::npos);
    CHECK(msg.find("97") != std::string::npos);
  }
  tensor<std::int32_t> long_ids(shape{1, 41}, 3);  // 40 learned positions
  try {
    (void)bert.forward(long_ids);
    FAIL("expected value_error");
  } catch (const value_error& e) {
    CHECK(std::string(e.what()).find("learned_positions") != std::string::npos);
  }
  tensor<std::int32_t> ok(shape{2, 4}, 3), bad_lengths(shape{2}, 5);
  CHECK_THROWS_AS(bert.forward(ok, bad_lengths), value_error);
  tensor<std::int32_t> ids3(shape{1, 2, 2});
  CHECK_THROWS_AS(bert.forward(ids3), shape_error);
}
