// Decoder-only causal language model (GPT-2, Llama families): embeddings, causal self-attention
// layers with a KV cache, final norm, LM head (tied to the embeddings or its own weights).
#pragma once

#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../nn/linear.hpp"
#include "spec.hpp"
#include "stack.hpp"

namespace tformer::models {

/// @brief Decoder-only causal LM defined by a spec (see spec.hpp).
template <class Spec>
class decoder_lm {
 public:
  using traits = spec_traits<Spec>;
  using layer_type = typename Spec::layer;
  static_assert(self_attention_layer<layer_type>, "Spec::layer must be a self-attention layer (nn::transformer_layer or "
                                                  "nn::parallel_layer)");

  explicit decoder_lm(const model_config& c)
      : config(c), embed(c), stack(c, c.layers, /*bidirectional=*/false) {
    if constexpr (!traits::tie_embeddings) lm_head = nn::linear<>(c.d_model(), c.vocab, false);
  }

  /// @brief An empty KV cache for batch sequences of up to capacity tokens.
  kv_cache make_cache(std::int64_t batch, std::int64_t capacity) const {
    kv_cache c;
    for (const auto& l : stack.layers) c.layers.push_back(l.self_attn.make_cache(batch, capacity));
    c.lengths = tensor<std::int32_t>(shape{batch});
    return c;
  }

  /// @brief Logits [B, S, vocab] of ids [B, S] (sequence b: lengths[b] real tokens, then padding).
  /// With a cache, the tokens continue each cached sequence and are appended to the cache.
  tensor<float> forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {},
                        kv_cache* cache = nullptr, ops::attention_mask mask = causal()) const {
    detail::check_ids("decoder_lm", ids);
    const std::int64_t B = ids.dim(0), S = ids.dim(1);
    if (cache && cache->batch() != B)
      throw shape_error("tformer::models::decoder_lm: the KV cache is for batch " + std::to_string(cache->batch()) +
                        ", the ids are for batch " + std::to_string(B));
    tensor<float> x(shape{B, S, config.d_model()});  // [B, S, d]
    tensor_view<const std::int32_t> start = cache ? tensor_view<const std::int32_t>(cache->lengths) : tensor_view<const std::int32_t>();
    embed.forward(ids, start, x);
    forward_hidden(x, lengths, cache, mask);
    tensor<float> logits(shape{B, S, config.vocab});  // [B, S, vocab]
    head(x, logits);
    return logits;
  }

  /// @brief Layers and final norm over embeddings x [B, S, d] in place (advances the cache).
  void forward_hidden(tensor_view<float> x, tensor_view<const std::int32_t> lengths = {}, kv_cache* cache = nullptr,
                      ops::attention_mask mask = causal()) const {
    const std::int64_t B = x.dim(0), S = x.dim(1);
    detail::check_lengths("decoder_lm", lengths, B, S);
    tensor_view<const std::int32_t> start = cache ? tensor_view<const std::int32_t>(cache->lengths) : tensor_view<const std::int32_t>();
    stack.forward(x, nn::sequence_info{lengths, start}, mask, cache);
    if (cache)
      for (std::int64_t b = 0; b < B; ++b) cache->lengths(b) += static_cast<std::int32_t>(lengths.data() ? lengths(b) : S);
  }

  /// @brief logits [..., vocab] = hidden [..., d] times the head (tied: the embedding table).
  void head(tensor_view<const float> hidden, tensor_view<float> logits) const {
    if constexpr (traits::tie_embeddings) {
      const shape h2{hidden.rows(), config.d_model()}, l2{logits.rows(), config.vocab};
      ops::linear(hidden.reshape(h2), embed.tokens.weight, logits.reshape(l2));
    } else {
      lm_head.forward(hidden, logits);
    }
  }

  static ops::attention_mask causal() {
    ops::attention_mask m;
    m.causal = true;
    return m;
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    stack.visit(v, prefix);
    if constexpr (!traits::tie_embeddings)
      if (config.vocab > 0) lm_head.visit(v, prefix + "lm_head.");
  }

  model_config config;
  embedder<typename traits::positions, typename traits::embed_norm> embed;
  layer_stack<layer_type, typename traits::attention_bias, typename traits::final_norm> stack;
  nn::linear<> lm_head;  // [vocab, d], unused when tied
};

}  // namespace tformer::models
