// models::encoder_decoder as PyTorch's nn.Transformer (2+2 layers, post-norm ReLU, final norms) and
// as T5 (RMSNorm, relative buckets, no logit scaling, gated GELU) against Hugging Face; incremental
// decoding through the cache with cross-attention K/V computed once.
#include <tformer/io/name_maps.hpp>
#include <tformer/models/encoder_decoder.hpp>
#include <tformer/nn/parameters.hpp>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"

using namespace tformer;
using test::t5_spec, test::t5_config;

namespace {

struct torch_transformer_spec {
  using encoder_layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using decoder_layer = nn::cross_decoder_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using final_norm = nn::layer_norm;
};

// The original Transformer: sinusoidal positions, Post-LN, ReLU, shared embeddings and head.
struct vaswani_spec {
  using encoder_layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using decoder_layer = nn::cross_decoder_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using positions = nn::sinusoidal_positions;
  static constexpr bool tie_embeddings = true;
};

}  // namespace

TEST_CASE("2+2-layer encoder-decoder matches nn.Transformer", "[models][parity][transformer]") {
  test::fixture fx("torch_transformer");
  models::model_config c;
  c.layers = 2;
  c.layer.attention = {.d_model = 16, .heads = 4};
  c.layer.ffn = {.d_model = 16, .d_ff = 32, .bias = true};
  c.layer.norm_eps = 1e-5f;
  models::encoder_decoder<torch_transformer_spec> model(c);
  io::load_safetensors(model, fx.model, io::torch_transformer());
  const auto src_lengths = fx.i32("src_lengths"), tgt_lengths = fx.i32("tgt_lengths");
  const auto source = model.encode_hidden(fx.f32("src"), src_lengths);
  auto y = fx.f32("tgt");
  model.decode_hidden(y, source, tgt_lengths);
  const double err = test::max_abs_diff(y, fx.f32("y"), tgt_lengths);
  INFO("max abs error " << err);
  CHECK(err <= 1e-5);
}

TEST_CASE("T5 matches Hugging Face T5ForConditionalGeneration", "[models][parity][t5]") {
  test::fixture fx("hf_t5");
  models::encoder_decoder<t5_spec> t5(t5_config(fx.config));
  io::load_safetensors(t5, fx.model, io::hf_t5());
  const auto ids = fx.i32("input_ids"), lengths = fx.i32("lengths");
  const auto dec_ids = fx.i32("decoder_input_ids"), dec_lengths = fx.i32("decoder_lengths");
  const auto source = t5.encode(ids, lengths);
  const auto logits = t5.decode(dec_ids, source, dec_lengths);
  const auto want = fx.f32("logits");
  const double err = test::max_abs_diff(logits, want, dec_lengths);
  INFO("logits max abs error " << err);
  CHECK(err <= 1e-4);
  CHECK(test::same_argmax(logits, want, dec_lengths));

  // incremental decoding: one target token per step through the cache, cross K/V from encode()
  const std::int64_t B = dec_ids.dim(0), T = dec_ids.dim(1), V = t5.config.vocab;
  auto cache = t5.make_state(B, T);
  for (std::int64_t s = 0; s < T; ++s) {
    tensor<std::int32_t> step(shape{B, 1}), n(shape{B});
    for (std::int64_t b = 0; b < B; ++b) {
      step(b, 0) = dec_ids(b, s);
      n(b) = s < dec_lengths(b) ? 1 : 0;
    }
    const auto out = t5.decode(step, source, n, &cache);
    for (std::int64_t b = 0; b < B; ++b)
      if (s < dec_lengths(b))
        for (std::int64_t v = 0; v < V; ++v) REQUIRE(std::fabs(out(b, 0, v) - logits(b, s, v)) <= 1e-5f);
  }
}

TEST_CASE("original Transformer (sinusoidal, Post-LN, ReLU) decodes incrementally like a full pass",
          "[models][cache][transformer]") {
  models::model_config c;
  c.vocab = 50;
  c.layers = 2;
  c.embed_scale = 4.0f;  // sqrt(d_model)
  c.layer.attention = {.d_model = 16, .heads = 4};
  c.layer.ffn = {.d_model = 16, .d_ff = 32};
  models::encoder_decoder<vaswani_spec> model(c);
  nn::init_random(model, 3);
  tensor<std::int32_t> src(shape{2, 6}), tgt(shape{2, 5}), src_len(shape{2}), tgt_len(shape{2});
  for (std::int64_t i = 0; i < 12; ++i) src.data()[i] = static_cast<std::int32_t>((i * 7) % 50);
  for (std::int64_t i = 0; i < 10; ++i) tgt.data()[i] = static_cast<std::int32_t>((i * 11 + 3) % 50);
  src_len(0) = 6, src_len(1) = 3, tgt_len(0) = 5, tgt_len(1) = 2;
  const auto source = model.encode(src, src_len);
  const auto full = model.decode(tgt, source, tgt_len);
  auto cache = model.make_state(2, 5);
  for (std::int64_t s = 0; s < 5; ++s) {
    tensor<std::int32_t> step(shape{2, 1}), n(shape{2});
    for (std::int64_t b = 0; b < 2; ++b) {
      step(b, 0) = tgt(b, s);
      n(b) = s < tgt_len(b) ? 1 : 0;
    }
    const auto out = model.decode(step, source, n, &cache);
    for (std::int64_t b = 0; b < 2; ++b)
      if (s < tgt_len(b))
        for (std::int64_t v = 0; v < 50; ++v) REQUIRE(std::fabs(out(b, 0, v) - full(b, s, v)) <= 1e-5f);
  }
}

TEST_CASE("T5 encodes embeddings, left-padded sources and encoder outputs", "[models][t5]") {
  test::fixture fx("hf_t5");
  models::encoder_decoder<t5_spec> t5(t5_config(fx.config));
  io::load_safetensors(t5, fx.model, io::hf_t5());
  const auto ids = fx.i32("input_ids"), lengths = fx.i32("lengths");
  const auto dec_ids = fx.i32("decoder_input_ids"), dec_lengths = fx.i32("decoder_lengths");
  const auto want = t5.decode(dec_ids, t5.encode(ids, lengths), dec_lengths);

  // an encoder_input of ids is encode(ids, lengths)
  const auto a = t5.decode(dec_ids, t5.encode(models::encoder_input{.ids = ids, .lengths = lengths}), dec_lengths);
  CHECK(test::max_abs_diff(a, want, dec_lengths) == 0.0);

  // the token embeddings given as embeds (T5 has no scale, positions or embedding norm)
  const std::int64_t B = ids.dim(0), S = ids.dim(1), d = t5.config.d_model();
  tensor<float> embeds(shape{B, S, d});
  t5.embed.tokens.forward(ids, embeds);
  const auto b = t5.decode(dec_ids, t5.encode(models::encoder_input{.embeds = embeds, .lengths = lengths}), dec_lengths);
  CHECK(test::max_abs_diff(b, want, dec_lengths) == 0.0);

  // the same sources left-padded: T5's relative positions do not move, so the logits agree
  tensor<std::int32_t> left(shape{B, S}, 0);
  for (std::int64_t r = 0; r < B; ++r)
    for (std::int64_t s = 0; s < lengths(r); ++s) left(r, S - lengths(r) + s) = ids(r, s);
  const auto source = t5.encode(models::encoder_input{.ids = left, .lengths = lengths, .left_padded = true});
  const double err = test::max_abs_diff(t5.decode(dec_ids, source, dec_lengths), want, dec_lengths);
  INFO("left-padded max abs error " << err);
  CHECK(err <= 1e-5);  // the same sums over the same keys

  // the encoder's output handed back: only the cross keys and values are computed again
  const auto encoded = t5.encode(ids, lengths);
  const auto c = t5.decode(dec_ids, t5.from_encoder_output(tensor<float>(encoded.hidden), lengths), dec_lengths);
  CHECK(test::max_abs_diff(c, want, dec_lengths) == 0.0);
  CHECK_THROWS_AS(t5.encode(models::encoder_input{.ids = ids, .token_types = ids}), value_error);  // T5 has no segments
}
