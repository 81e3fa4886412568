// Transformer layers: sublayers wrapped by residual connections with norms placed by a policy
// (nn/residual.hpp). Layers (x: [B, S, d], updated in place):
//
//   transformer_layer<Placement, Norm, Attention, FFN>   self-attention + FFN: encoder layers and
//                                                         decoder-only layers (the mask decides)
//   cross_decoder_layer<Placement, Norm, Attention, FFN>  self-attention + cross-attention + FFN
//   parallel_layer<Norm, Attention, FFN>                  x + Attn(N(x)) + FFN(N(x))  (GPT-J, PaLM)
//
// Every layer names the state its self-attention keeps (state_type, make_state) and can be
// re-instantiated with other weight formats for its attention and its feed-forward
// (with_weights<AttentionFormat, FFNFormat>), which is how a model spec chooses formats per role.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/elementwise.hpp"
#include "attention.hpp"
#include "feed_forward.hpp"
#include "norm.hpp"
#include "residual.hpp"

namespace tformer::nn {

/// @brief Sizes of a layer: its attention, its feed-forward, the norms' eps, the residual scale.
struct layer_config {
  attention_config attention;
  ffn_config ffn;
  float norm_eps = 1e-5f;
  float residual_scale = 1.0f;
  rotary rope = {};  ///< used when the attention block is rotary
};

namespace detail {
template <class Attn>
Attn make_attention(const layer_config& c) {
  if constexpr (std::constructible_from<Attn, attention_config, rotary>)
    return Attn(c.attention, c.rope);
  else
    return Attn(c.attention);
}
// FFN re-instantiated with format G (FFN policies without formats stay as they are).
template <class FFN, class G>
struct ffn_with {
  using type = FFN;
};
template <class FFN, class G>
  requires requires { typename FFN::template with_weights<G>; }
struct ffn_with<FFN, G> {
  using type = typename FFN::template with_weights<G>;
};
template <class FFN>
struct ffn_format {
  using type = quant::f32;
};
template <class FFN>
  requires requires { typename FFN::format; }
struct ffn_format<FFN> {
  using type = typename FFN::format;
};
}  // namespace detail

/// @brief Self-attention + feed-forward layer (encoder layer; decoder-only layer under a causal mask).
template <norm_placement Placement, norm Norm, attention_block Attention, feed_forward FFN>
class transformer_layer {
 public:
  using attention_type = Attention;
  using ffn_type = FFN;
  using state_type = typename Attention::state_type;
  using attention_format = typename Attention::format;
  using ffn_format = typename detail::ffn_format<FFN>::type;
  template <quant::weight_format FA, quant::weight_format FF>
  using with_weights = transformer_layer<Placement, Norm, typename Attention::template with_weights<FA>,
                                         typename detail::ffn_with<FFN, FF>::type>;

  transformer_layer() = default;
  explicit transformer_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)),
        ffn(c.ffn),
        attn_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        ffn_residual(c.attention.d_model, c.norm_eps, c.residual_scale) {}

  /// @brief An empty state for incremental decoding (see nn/state.hpp).
  state_type make_state(std::int64_t batch, std::int64_t capacity) const { return self_attn.make_state(batch, capacity); }

  /// @brief x [B, S, d] in place. state: this layer's state for incremental decoding, or null.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask,
               state_type* state = nullptr, const Bias& bias = {}) const {
    attn_residual.run(x, seq.scratch, [&](tensor_view<const float> in, tensor_view<float> out) {
      self_attn.forward(in, out, seq, mask, state, bias);
    });
    ffn_residual.run(x, seq.scratch, [&](tensor_view<const float> in, tensor_view<float> out) {
      ffn.forward(in, out, seq.scratch);
    });
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    self_attn.visit(v, prefix + "attn.");
    attn_residual.visit(v, prefix + "attn_");
    ffn.visit(v, prefix + "ffn.");
    ffn_residual.visit(v, prefix + "ffn_");
  }

  Attention self_attn;
  FFN ffn;
  residual<Placement, Norm> attn_residual, ffn_residual;
};

/// @brief Decoder layer of an encoder-decoder: causal self-attention, cross-attention, feed-forward.
template <norm_placement Placement, norm Norm, attention_block Attention, feed_forward FFN>
class cross_decoder_layer {
 public:
  using attention_type = Attention;
  using ffn_type = FFN;
  using state_type = typename Attention::state_type;
  using attention_format = typename Attention::format;
  using ffn_format = typename detail::ffn_format<FFN>::type;
  using cross_attention_type = multi_head_attention<no_rope, attention_format>;  // no positions across sequences
  template <quant::weight_format FA, quant::weight_format FF>
  using with_weights = cross_decoder_layer<Placement, Norm, typename Attention::template with_weights<FA>,
                                           typename detail::ffn_with<FFN, FF>::type>;

  cross_decoder_layer() = default;
  explicit cross_decoder_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)),
        cross_attn(c.attention),
        ffn(c.ffn),
        self_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        cross_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        ffn_residual(c.attention.d_model, c.norm_eps, c.residual_scale) {}

  state_type make_state(std::int64_t batch, std::int64_t capacity) const { return self_attn.make_state(batch, capacity); }

  /// @brief x [B, T, d] in place; memory: cross K/V from cross_attn.project_kv.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask, state_type* state,
               const cross_kv& memory, tensor_view<const std::int32_t> memory_lengths, const Bias& bias = {}) const {
    self_residual.run(x, seq.scratch, [&](tensor_view<const float> in, tensor_view<float> out) {
      self_attn.forward(in, out, seq, mask, state, bias);
    });
    cross_residual.run(x, seq.scratch, [&](tensor_view<const float> in, tensor_view<float> out) {
      cross_attn.forward_cross(in, out, memory, memory_lengths, ops::no_bias{}, seq.scratch);
    });
    ffn_residual.run(x, seq.scratch, [&](tensor_view<const float> in, tensor_view<float> out) {
      ffn.forward(in, out, seq.scratch);
    });
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    self_attn.visit(v, prefix + "attn.");
    self_residual.visit(v, prefix + "attn_");
    cross_attn.visit(v, prefix + "cross.");
    cross_residual.visit(v, prefix + "cross_");
    ffn.visit(v, prefix + "ffn.");
    ffn_residual.visit(v, prefix + "ffn_");
  }

  Attention self_attn;
  cross_attention_type cross_attn;
  FFN ffn;
  residual<Placement, Norm> self_residual, cross_residual, ffn_residual;
};

/// @brief Parallel layer: x + Attn(N(x)) + FFN(N(x)) with one shared norm (GPT-J, PaLM).
template <norm Norm, attention_block Attention, feed_forward FFN>
class parallel_layer {
 public:
  using attention_type = Attention;
  using ffn_type = FFN;
  using state_type = typename Attention::state_type;
  using attention_format = typename Attention::format;
  using ffn_format = typename detail::ffn_format<FFN>::type;
  template <quant::weight_format FA, quant::weight_format FF>
  using with_weights =
      parallel_layer<Norm, typename Attention::template with_weights<FA>, typename detail::ffn_with<FFN, FF>::type>;

  parallel_layer() = default;
  explicit parallel_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)), ffn(c.ffn), norm(c.attention.d_model, c.norm_eps) {}

  state_type make_state(std::int64_t batch, std::int64_t capacity) const { return self_attn.make_state(batch, capacity); }

  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask,
               state_type* state = nullptr, const Bias& bias = {}) const {
    workspace_ref scratch(seq.scratch);
    const auto scope = scratch->open();
    // each [B, S, d]
    const auto normed = scratch->take<float>(x.shape()), a = scratch->take<float>(x.shape()),
               f = scratch->take<float>(x.shape());
    sequence_info inner = seq;
    inner.scratch = scratch.get();
    norm.forward(x, normed);
    self_attn.forward(normed, a, inner, mask, state, bias);
    ffn.forward(normed, f, scratch.get());
    ops::residual_add(x, a);
    ops::residual_add(x, f);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    self_attn.visit(v, prefix + "attn.");
    ffn.visit(v, prefix + "ffn.");
    norm.visit(v, prefix + "norm.");
  }

  Attention self_attn;
  FFN ffn;
  Norm norm;  // shared by attention and feed-forward
};

}  // namespace tformer::nn
