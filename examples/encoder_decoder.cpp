// Two encoder-decoders defined in user code, decoding greedily with the cross-attention K/V
// computed once per source and the self-attention K/V cached:
//  - the original Transformer: sinusoidal positions, Post-LN, ReLU, shared embeddings and head;
//  - T5-style: RMSNorm (no mean), relative position buckets, no logit scaling, gated GELU.
// Random weights; prints the decoded ids.
#include <tformer/tformer.hpp>

#include <cmath>
#include <cstdio>

using namespace tformer;

// ---- the model definitions --------------------------------------------------------------------
struct vaswani_spec {
  using encoder_layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using decoder_layer = nn::cross_decoder_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using positions = nn::sinusoidal_positions;
  static constexpr bool tie_embeddings = true;
};
struct t5_spec {
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using attention_bias = nn::t5_relative_bias;
  using final_norm = nn::rms_norm;
};

models::model_config config(bool t5) {
  models::model_config c;
  c.vocab = 500, c.layers = 3;
  c.layer.attention = {.d_model = 128, .heads = 4, .qkv_bias = !t5, .out_bias = !t5};
  c.layer.ffn = {.d_model = 128, .d_ff = t5 ? 320 : 512, .bias = !t5};
  if (t5) c.layer.attention.scale = 1.0f, c.layer.norm_eps = 1e-6f;
  else c.embed_scale = std::sqrt(128.0f);
  return c;
}
// ---- end of the model definitions ---------------------------------------------------------------

template <class Model>
void translate(const char* name, Model& model) {
  nn::init_random(model, 11);
  tensor<std::int32_t> src(shape{2, 5}), src_len(shape{2});
  for (std::int64_t i = 0; i < 10; ++i) src.data()[i] = static_cast<std::int32_t>(3 + (i * 37) % 400);
  src_len(0) = 5, src_len(1) = 3;
  const models::encoded source = model.encode(src, src_len);  // once per source
  auto cache = model.make_state(2, 16);
  tensor<std::int32_t> next(shape{2, 1}, 0);  // start token 0
  std::printf("%s: decoded", name);
  for (int step = 0; step < 8; ++step) {
    const tensor<float> logits = model.decode(next, source, {}, &cache);  // [2, 1, vocab]
    for (std::int64_t b = 0; b < 2; ++b) {
      std::int32_t best = 0;
      for (std::int64_t v = 1; v < model.config.vocab; ++v)
        if (logits(b, 0, v) > logits(b, 0, best)) best = static_cast<std::int32_t>(v);
      next(b, 0) = best;
    }
    std::printf(" (%d,%d)", next(0, 0), next(1, 0));
  }
  std::printf("\n");
}

int main() try {
  models::encoder_decoder<vaswani_spec> vaswani(config(false));
  translate("Transformer (Vaswani et al.)", vaswani);
  models::encoder_decoder<t5_spec> t5(config(true));
  translate("T5-style", t5);
  return 0;
} catch (const tformer::error& e) {
  std::fprintf(stderr, "encoder_decoder: %s\n", e.what());
  return 1;
}
