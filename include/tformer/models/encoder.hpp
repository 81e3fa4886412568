// Encoder-only model (BERT family): embeddings, bidirectional self-attention layers with a
// padding mask, optional final norm. Output: hidden states [B, S, d]; see heads.hpp for pooling.
#pragma once

#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "spec.hpp"
#include "stack.hpp"

namespace tformer::models {

/// @brief Encoder-only transformer defined by a spec (see spec.hpp).
template <class Spec>
class encoder {
 public:
  using traits = spec_traits<Spec>;
  using layer_type = typename Spec::layer;
  static_assert(self_attention_layer<layer_type>, "Spec::layer must be a self-attention layer (nn::transformer_layer or "
                                                  "nn::parallel_layer)");

  explicit encoder(const model_config& c) : config(c), embed(c), stack(c, c.layers, /*bidirectional=*/true) {}

  /// @brief Hidden states [B, S, d] of token ids [B, S]; sequence b has lengths[b] real tokens.
  tensor<float> forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {}) const {
    detail::check_ids("encoder", ids);
    tensor<float> x(shape{ids.dim(0), ids.dim(1), config.d_model()});  // [B, S, d]
    embed.forward(ids, {}, x);
    forward_hidden(x, lengths);
    return x;
  }

  /// @brief Runs the layers and the final norm on embeddings x [B, S, d] in place.
  void forward_hidden(tensor_view<float> x, tensor_view<const std::int32_t> lengths = {}) const {
    detail::check_lengths("encoder", lengths, x.dim(0), x.dim(1));
    ops::attention_mask mask;  // bidirectional; padding comes from lengths
    stack.forward(x, nn::sequence_info{lengths, {}}, mask, nullptr);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    stack.visit(v, prefix);
  }

  model_config config;
  embedder<typename traits::positions, typename traits::embed_norm> embed;
  layer_stack<layer_type, typename traits::attention_bias, typename traits::final_norm> stack;
};

}  // namespace tformer::models
