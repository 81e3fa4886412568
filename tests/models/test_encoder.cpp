// models::encoder as BERT against Hugging Face BertModel (tiny, randomly initialised, padded batch):
// hidden states, the dense pooler, CLS and masked-mean pooling; token_type_ids, left padding and
// inputs_embeds (hf_bert_segments, tools/make_generate_fixtures.py, transformers 5.24).
#include <tformer/io/name_maps.hpp>
#include <tformer/models/encoder.hpp>
#include <tformer/models/heads.hpp>

#include "catch.hpp"
#include "fixture.hpp"
#include "support.hpp"

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

namespace {
// The real rows of a left-padded [B, S, d] tensor moved to the front (to compare with right padding).
tensor<float> left_to_right(const tensor<float>& x, const tensor<std::int32_t>& lengths) {
  const std::int64_t B = x.dim(0), S = x.dim(1), d = x.dim(2);
  tensor<float> out(x.shape());
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < lengths(b); ++s)
      std::copy_n(x.data() + (b * S + S - lengths(b) + s) * d, d, out.data() + (b * S + s) * d);
  return out;
}
}  // namespace

TEST_CASE("BERT with token types and left padding matches Hugging Face BertModel", "[models][parity][bert]") {
  test::fixture fx("hf_bert");
  const io::safetensors_file ref(std::string(TFORMER_TEST_DATA_DIR) + "/hf_bert_segments.case.safetensors");
  models::encoder<bert_spec> bert(bert_config(fx.config));
  io::load_safetensors(bert, fx.model, io::hf_bert());
  const auto lengths = ref.load<std::int32_t>("lengths");
  const auto ids_right = ref.load<std::int32_t>("input_ids_right"), types_right = ref.load<std::int32_t>("token_type_ids_right");
  const auto ids_left = ref.load<std::int32_t>("input_ids_left"), types_left = ref.load<std::int32_t>("token_type_ids_left");
  // Tolerances as above: LayerNorm-scaled outputs of order 1, float32 on both sides.

  // segments, right padding
  const auto right = bert.forward(models::encoder_input{.ids = ids_right, .lengths = lengths, .token_types = types_right});
  const double err_right = test::max_abs_diff(right, ref.load<float>("hidden_right"), lengths);
  INFO("right-padded max abs error " << err_right);
  CHECK(err_right <= 1e-4);

  // segments, left padding: HF's positions stay 0..S-1, so the real tokens sit at S - length..
  const models::encoder_input left_in{.ids = ids_left, .lengths = lengths, .token_types = types_left, .left_padded = true};
  const auto left = bert.forward(left_in);
  const auto want_left = ref.load<float>("hidden_left");
  const double err_left = test::max_abs_diff(left_to_right(left, lengths), left_to_right(want_left, lengths), lengths);
  INFO("left-padded max abs error " << err_left);
  CHECK(err_left <= 1e-4);
  // the full-length row has no padding: both layouts agree on it; the shorter ones differ (positions)
  CHECK(test::max_abs_diff(left[0], right[0]) <= 1e-5);
  CHECK(test::max_abs_diff(left_to_right(left, lengths)[2], right[2]) > 1e-3);

  // embeddings in place of ids, left padding, segments
  const auto embeds = ref.load<float>("inputs_embeds_left");
  const auto from_embeds = bert.forward(
      models::encoder_input{.embeds = embeds, .lengths = lengths, .token_types = types_left, .left_padded = true});
  const double err_embeds =
      test::max_abs_diff(left_to_right(from_embeds, lengths), left_to_right(ref.load<float>("hidden_embeds_left"), lengths), lengths);
  INFO("inputs_embeds max abs error " << err_embeds);
  CHECK(err_embeds <= 1e-4);

  // without token types and padding, encoder_input is forward(ids, lengths) exactly
  test::fixture plain("hf_bert");
  const auto ids = plain.i32("input_ids"), plain_lengths = plain.i32("lengths");
  CHECK(test::max_abs_diff(bert.forward(models::encoder_input{.ids = ids, .lengths = plain_lengths}),
                           bert.forward(ids, plain_lengths), plain_lengths) == 0.0);
}

TEST_CASE("encoder_input bad input: ids and embeds, shapes, token types", "[models][errors]") {
  test::fixture fx("hf_bert");
  models::encoder<bert_spec> bert(bert_config(fx.config));
  tensor<std::int32_t> ids(shape{2, 4}, 3), types(shape{2, 4}, 0);
  tensor<float> embeds(shape{2, 4, bert.config.d_model()});
  CHECK_THROWS_AS(bert.forward(models::encoder_input{.ids = ids, .embeds = embeds}), value_error);  // both
  CHECK_THROWS_AS(bert.forward(models::encoder_input{}), value_error);                               // neither
  tensor<float> narrow(shape{2, 4, 5});
  CHECK_THROWS_AS(bert.forward(models::encoder_input{.embeds = narrow}), shape_error);
  tensor<std::int32_t> short_types(shape{2, 3}, 0);
  CHECK_THROWS_AS(bert.forward(models::encoder_input{.ids = ids, .token_types = short_types}), shape_error);
  types(1, 2) = 2;  // type_vocab_size is 2
  const std::string msg =
      test::thrown_message<value_error>([&] { bert.forward(models::encoder_input{.ids = ids, .token_types = types}); });
  CHECK(msg.find("token_types[1, 2] = 2") != std::string::npos);
}
