// Transformer layers: a sublayer f wrapped by a residual connection and norms placed by a policy.
//
//   post_ln:  x = N(alpha x + f(x))                       (original Transformer, BERT; DeepNet: alpha > 1)
//   pre_ln:   x = alpha x + f(N(x))                       (GPT-2, Llama, T5)
//   peri_ln:  x = alpha x + N_out(f(N_in(x)))             (Peri-LN)
//
// Layers (x: [B, S, d], updated in place):
//   transformer_layer<Placement, Norm, Attention, FFN>   self-attention + FFN: encoder layers and
//                                                         decoder-only layers (the mask decides)
//   cross_decoder_layer<Placement, Norm, Attention, FFN>  self-attention + cross-attention + FFN
//   parallel_layer<Norm, Attention, FFN>                  x + Attn(N(x)) + FFN(N(x))  (GPT-J, PaLM)
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../ops/elementwise.hpp"
#include "attention.hpp"
#include "feed_forward.hpp"
#include "norm.hpp"

namespace tformer::nn {

/// @brief Norm placement policies.
struct post_ln {
  static constexpr const char* name = "post_ln";
};
struct pre_ln {
  static constexpr const char* name = "pre_ln";
};
struct peri_ln {
  static constexpr const char* name = "peri_ln";
};

/// @brief One of post_ln, pre_ln, peri_ln.
template <class P>
concept norm_placement = std::same_as<P, post_ln> || std::same_as<P, pre_ln> || std::same_as<P, peri_ln>;

/// @brief A residual connection around one sublayer, with its norm(s) placed by Placement.
template <norm_placement Placement, norm Norm>
class residual {
 public:
  residual() = default;
  residual(std::int64_t d, float eps, float alpha = 1.0f) : norm_in(d, eps), alpha(alpha) {
    if constexpr (std::same_as<Placement, peri_ln>) norm_out = Norm(d, eps);
  }

  /// @brief x [B, S, d] <- the placement's formula around f(in, out) (both [B, S, d]).
  template <class F>
  void run(tensor_view<float> x, F&& f) const {
    tensor<float> delta(x.shape());  // f's output: [B, S, d]
    if constexpr (std::same_as<Placement, post_ln>) {
      f(tensor_view<const float>(x), delta.view());
      if (alpha != 1.0f) ops::scale(x, alpha, x);
      norm_in.add_forward(x, delta, x);  // x = N(alpha x + delta)
    } else {
      tensor<float> normed(x.shape());  // N(x): [B, S, d]
      norm_in.forward(x, normed);
      f(tensor_view<const float>(normed), delta.view());
      if constexpr (std::same_as<Placement, peri_ln>) norm_out.forward(delta, delta);
      if (alpha != 1.0f) ops::scale(x, alpha, x);
      ops::residual_add(x, delta);
    }
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    norm_in.visit(v, prefix + "norm.");
    if constexpr (std::same_as<Placement, peri_ln>) norm_out.visit(v, prefix + "out_norm.");
  }

  Norm norm_in;   // the norm of post_ln / pre_ln, the input norm of peri_ln
  Norm norm_out;  // peri_ln only
  float alpha = 1.0f;  // residual scale (DeepNet / Sub-LN style); 1 for the usual residual
};

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
}  // namespace detail

/// @brief Self-attention + feed-forward layer (encoder layer; decoder-only layer under a causal mask).
template <norm_placement Placement, norm Norm, class Attention, feed_forward FFN>
class transformer_layer {
 public:
  using attention_type = Attention;
  transformer_layer() = default;
  explicit transformer_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)),
        ffn(c.ffn),
        attn_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        ffn_residual(c.attention.d_model, c.norm_eps, c.residual_scale) {}

  /// @brief x [B, S, d] in place. cache: this layer's KV cache for incremental decoding, or null.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask,
               kv_cache_layer* cache = nullptr, const Bias& bias = {}) const {
    attn_residual.run(x, [&](tensor_view<const float> in, tensor_view<float> out) {
      self_attn.forward(in, out, seq, mask, cache, bias);
    });
    ffn_residual.run(x, [&](tensor_view<const float> in, tensor_view<float> out) { ffn.forward(in, out); });
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
template <norm_placement Placement, norm Norm, class Attention, feed_forward FFN>
class cross_decoder_layer {
 public:
  using attention_type = Attention;
  cross_decoder_layer() = default;
  explicit cross_decoder_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)),
        cross_attn(c.attention),
        ffn(c.ffn),
        self_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        cross_residual(c.attention.d_model, c.norm_eps, c.residual_scale),
        ffn_residual(c.attention.d_model, c.norm_eps, c.residual_scale) {}

  /// @brief x [B, T, d] in place; memory: cross K/V from cross_attn.project_kv.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask, kv_cache_layer* cache,
               const kv_cache_layer& memory, tensor_view<const std::int32_t> memory_lengths, const Bias& bias = {}) const {
    self_residual.run(x, [&](tensor_view<const float> in, tensor_view<float> out) {
      self_attn.forward(in, out, seq, mask, cache, bias);
    });
    cross_residual.run(x, [&](tensor_view<const float> in, tensor_view<float> out) {
      cross_attn.forward_cross(in, out, memory, memory_lengths);
    });
    ffn_residual.run(x, [&](tensor_view<const float> in, tensor_view<float> out) { ffn.forward(in, out); });
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
  multi_head_attention<no_rope, typename Attention::format> cross_attn;  // no positions across sequences
  FFN ffn;
  residual<Placement, Norm> self_residual, cross_residual, ffn_residual;
};

/// @brief Parallel layer: x + Attn(N(x)) + FFN(N(x)) with one shared norm (GPT-J, PaLM).
template <norm Norm, class Attention, feed_forward FFN>
class parallel_layer {
 public:
  using attention_type = Attention;
  parallel_layer() = default;
  explicit parallel_layer(const layer_config& c)
      : self_attn(detail::make_attention<Attention>(c)), ffn(c.ffn), norm(c.attention.d_model, c.norm_eps) {}

  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<float> x, const sequence_info& seq, const ops::attention_mask& mask,
               kv_cache_layer* cache = nullptr, const Bias& bias = {}) const {
    tensor<float> normed(x.shape()), a(x.shape()), f(x.shape());  // each [B, S, d]
    norm.forward(x, normed);
    self_attn.forward(normed, a, seq, mask, cache, bias);
    ffn.forward(normed, f);
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
