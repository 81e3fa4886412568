// Two decoder-only language models defined in user code, generating greedily through the KV cache:
//  - Llama-style: RMSNorm Pre-LN, grouped-query attention with rotary positions, causal mask,
//    SwiGLU, untied LM head;
//  - GPT-2-style: learned positions, Pre-LN LayerNorm, GELU (tanh) MLP, tied LM head.
// Random weights (the point is the composition); prints the generated ids and the time per token.
#include <tformer/tformer.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace tformer;

// ---- the model definitions --------------------------------------------------------------------
struct llama_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};
struct gpt2_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};

models::model_config llama_config() {
  models::model_config c;
  c.vocab = 1000, c.layers = 4;
  c.layer.attention = {.d_model = 256, .heads = 8, .kv_heads = 2, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 256, .d_ff = 688, .bias = false};
  c.layer.norm_eps = 1e-6f;
  c.layer.rope = nn::rotary{.base = 10000.0f};
  return c;
}
models::model_config gpt2_config() {
  models::model_config c;
  c.vocab = 1000, c.layers = 4, c.max_positions = 256;
  c.layer.attention = {.d_model = 256, .heads = 8};
  c.layer.ffn = {.d_model = 256, .d_ff = 1024};
  return c;
}
// ---- end of the model definitions ---------------------------------------------------------------

template <class Model>
void continue_greedily(const char* name, Model& model, int new_tokens) {
  nn::init_random(model, 7);
  const std::vector<std::int32_t> prompt = {1, 42, 7, 300, 12};
  auto cache = model.make_state(1, 64);
  tensor<std::int32_t> ids(shape{1, static_cast<std::int64_t>(prompt.size())});
  for (std::size_t i = 0; i < prompt.size(); ++i) ids(0, static_cast<std::int64_t>(i)) = prompt[i];
  std::printf("%s (%lld parameters): prompt", name, static_cast<long long>(nn::count_parameters(model)));
  for (auto t : prompt) std::printf(" %d", t);
  std::printf(" ->");
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < new_tokens; ++step) {
    const tensor<float> logits = model.forward(ids, {}, &cache);  // [1, S, vocab]
    const auto last = logits.view()[0][ids.dim(1) - 1];           // [vocab]
    std::int32_t best = 0;
    for (std::int64_t v = 1; v < last.dim(0); ++v)
      if (last(v) > last(best)) best = static_cast<std::int32_t>(v);
    std::printf(" %d", best);
    ids = tensor<std::int32_t>(shape{1, 1}, best);  // next step feeds only the new token
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n  %.2f ms per token (prompt included)\n", ms / new_tokens);
}

int main() try {
  models::decoder_lm<llama_spec> llama(llama_config());
  continue_greedily("Llama-style", llama, 12);
  models::decoder_lm<gpt2_spec> gpt2(gpt2_config());
  continue_greedily("GPT-2-style", gpt2, 12);
  return 0;
} catch (const tformer::error& e) {
  std::fprintf(stderr, "decoder_lm: %s\n", e.what());
  return 1;
}
