// Encoder-only model (BERT family): embeddings, bidirectional self-attention layers with a
// padding mask, optional final norm. Output: hidden states [B, S, d]; see heads.hpp for pooling.
//
// Besides token ids and lengths, an encoder_input carries what Hugging Face models take as
// inputs_embeds (vectors in place of the token lookup), token_type_ids (BERT's segments) and a
// left-padded attention_mask. Left padding follows HF: the positions of a row are 0..S-1 whatever
// its padding, so a left-padded row's real tokens sit at positions S - length .. S - 1 (BERT's
// position_ids = arange(S)); tformer runs the row with its real tokens moved to the front and
// position offset S - length, which attends exactly as the masked row, and moves the result back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "config.hpp"
#include "spec.hpp"
#include "stack.hpp"

namespace tformer::models {

/// @brief What an encoder reads (HF: input_ids or inputs_embeds, attention_mask, token_type_ids).
struct encoder_input {
  tensor_view<const std::int32_t> ids;          ///< [B, S] token ids; empty when embeds is given
  tensor_view<const float> embeds;              ///< [B, S, d] in place of the token lookup (HF inputs_embeds:
                                                ///< no embed_scale; positions, token types and embed_norm still apply)
  tensor_view<const std::int32_t> lengths;      ///< [B] real tokens per row; empty: all S
  tensor_view<const std::int32_t> token_types;  ///< [B, S] segment ids (HF token_type_ids); empty: all 0
  bool left_padded = false;                     ///< real tokens are the last lengths[b] of a row (HF padding_side="left")
};

namespace detail {

// Rotates every row of x [B, S, ...] left by shift[b] positions (back: right), in place.
template <class T>
void rotate_rows(tensor<T>& x, const std::vector<std::int64_t>& shift, bool back) {
  const std::int64_t B = x.dim(0), S = x.dim(1), inner = S > 0 ? x.numel() / (B * S) : 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t k = shift[static_cast<std::size_t>(b)] * inner;
    if (k == 0) continue;
    T* row = x.data() + b * S * inner;
    std::rotate(row, row + (back ? S * inner - k : k), row + S * inner);
  }
}

// The embedding stage for an encoder_input, into x [B, S, d] with every row right-padded (a
// left-padded row's real tokens moved to its front). start [B]: the position of each row's first
// real token (S - length when left-padded; rank 0 otherwise). Returns each row's shift.
template <class Embedder>
std::vector<std::int64_t> embed_input(const char* who, const Embedder& e, const encoder_input& in, std::int64_t d,
                                      tensor<float>& x, tensor<std::int32_t>& start) {
  const std::string me = std::string("tformer::models::") + who;
  if (!in.ids.data() == !in.embeds.data())
    throw value_error(me + ": give exactly one of encoder_input::ids and encoder_input::embeds");
  if (in.ids.data()) check_ids(who, in.ids);
  if (in.embeds.data() && (in.embeds.rank() != 3 || in.embeds.dim(2) != d))
    throw shape_error(me + ": embeds must be [batch, seq, " + std::to_string(d) + "], got " + in.embeds.shape().to_string());
  const std::int64_t B = in.ids.data() ? in.ids.dim(0) : in.embeds.dim(0), S = in.ids.data() ? in.ids.dim(1) : in.embeds.dim(1);
  check_lengths(who, in.lengths, B, S);
  if (in.token_types.data()) {
    if (in.token_types.rank() != 2 || in.token_types.dim(0) != B || in.token_types.dim(1) != S)
      throw shape_error(me + ": token_types must be [" + std::to_string(B) + ", " + std::to_string(S) + "], got " +
                        in.token_types.shape().to_string());
    const std::int64_t types = e.token_type.rank() == 2 ? e.token_type.dim(0) : 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t s = 0; s < S; ++s)
        if (in.token_types(b, s) < 0 || in.token_types(b, s) >= types)
          throw value_error(me + ": token_types[" + std::to_string(b) + ", " + std::to_string(s) + "] = " +
                            std::to_string(in.token_types(b, s)) + " is outside the model's " + std::to_string(types) +
                            " token types");
  }
  std::vector<std::int64_t> shift(static_cast<std::size_t>(B), 0);
  if (in.left_padded && in.lengths.data())
    for (std::int64_t b = 0; b < B; ++b) shift[static_cast<std::size_t>(b)] = S - in.lengths(b);
  // [B, S] ints or [B, S, d] floats, rows rotated to right padding
  auto moved = [&](auto view) {
    auto t = tensor<typename decltype(view)::value_type>::copy_of(view);
    rotate_rows(t, shift, false);
    return t;
  };
  x = tensor<float>(shape{B, S, d});
  if (in.ids.data())
    e.tokens.forward(moved(in.ids), x, e.scale);
  else
    x = moved(in.embeds);
  if (e.token_type.rank() == 2) {  // segment rows (all 0 when no token types are given)
    tensor<std::int32_t> types = in.token_types.data() ? moved(in.token_types) : tensor<std::int32_t>(shape{B, S}, 0);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t s = 0; s < S; ++s) {
        float* row = x.data() + (b * S + s) * d;
        const float* t = e.token_type.data() + static_cast<std::int64_t>(types(b, s)) * d;
        for (std::int64_t c = 0; c < d; ++c) row[c] += t[c];
      }
  }
  start = tensor<std::int32_t>();
  if (in.left_padded) {
    start = tensor<std::int32_t>(shape{B});
    for (std::int64_t b = 0; b < B; ++b) start(b) = static_cast<std::int32_t>(shift[static_cast<std::size_t>(b)]);
  }
  e.add_positions(x, start);
  return shift;
}

}  // namespace detail

/// @brief Encoder-only transformer defined by a spec (see spec.hpp).
template <class Spec>
class encoder {
 public:
  using traits = spec_traits<Spec>;
  static_assert(!traits::separate_positions && !traits::logits_bias,
                "spec::separate_positions and spec::logits_bias belong to encoder-decoder specs");
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

  /// @brief Hidden states [B, S, d] of an encoder_input: ids or embeddings, with token types and
  /// left or right padding (a left-padded result keeps the input's layout; padded rows hold
  /// values that mean nothing, as in HF).
  tensor<float> forward(const encoder_input& in, workspace* ws = nullptr) const {
    tensor<float> x;
    tensor<std::int32_t> start;
    const auto shift = detail::embed_input("encoder", embed, in, config.d_model(), x, start);
    workspace_ref scratch(ws);
    stack.forward(x, nn::sequence_info{in.lengths, start, scratch.get()}, ops::attention_mask{}, nullptr);
    if (in.left_padded) detail::rotate_rows(x, shift, true);
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
