// Encoder-only model (BERT family): embeddings, bidirectional self-attention layers with a
// padding mask, optional final norm. Output: hidden states [B, S, d]; see heads.hpp for pooling.
#pragma once

#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "config.hpp"
#include "spec.hpp"
#include "stack.hpp"

namespace tformer::models {

/// @brief Encoder-only transformer defined by a spec (see spec.hpp).
template <class Spec>
class encoder {
 public:
  using traits = spec_traits<Spec>;
  using layers_type = typename traits::template stack_layers<typename spec_layer<Spec>::type>;
  using stack_type = layer_stack<layers_type, typename traits::attention_bias, typename traits::final_norm>;
  using embedder_type = embedder<typename traits::positions, typename traits::embed_norm, typename traits::embedding_weights>;

  explicit encoder(const model_config& c) : config(c) {
    check_layers(layers_type{});
    detail::build_checked("encoder", c, [&] {
      embed = embedder_type(c);
      stack = stack_type(c, c.layers, /*bidirectional=*/true, &traits::template layer_kind<layers_type::count>);
    });
  }

  /// @brief Hidden states [B, S, d] of token ids [B, S]; sequence b has lengths[b] real tokens.
  tensor<float> forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {},
                        workspace* ws = nullptr) const {
    detail::check_ids("encoder", ids);
    tensor<float> x(shape{ids.dim(0), ids.dim(1), config.d_model()});  // [B, S, d]
    embed.forward(ids, {}, x);
    forward_hidden(x, lengths, ws);
    return x;
  }

  /// @brief Runs the layers and the final norm on embeddings x [B, S, d] in place.
  void forward_hidden(tensor_view<float> x, tensor_view<const std::int32_t> lengths = {}, workspace* ws = nullptr) const {
    detail::check_lengths("encoder", lengths, x.dim(0), x.dim(1));
    ops::attention_mask mask;  // bidirectional; padding comes from lengths
    workspace_ref scratch(ws);
    stack.forward(x, nn::sequence_info{lengths, {}, scratch.get()}, mask, nullptr);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    stack.visit(v, prefix);
  }

  model_config config;
  embedder_type embed;
  stack_type stack;

 private:
  template <class... L>
  static void check_layers(layer_types<L...>) {
    static_assert((self_attention_layer<L> && ...), "Spec::layer(s) must be self-attention layers (nn::transformer_layer or "
                                                    "nn::parallel_layer)");
  }
};

}  // namespace tformer::models
