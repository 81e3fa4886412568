// What a user writes to define a model: a spec struct of types (the policies) and a model_config
// of sizes (runtime data). A spec names
//   layer           (required) e.g. nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
//                              nn::gated_mlp<simd::act::silu>>
//   positions       absolute positions added to embeddings      default nn::no_positions
//   attention_bias  a bias shared by all layers of a stack        default models::no_attention_bias
//                   (models::alibi, models::t5_relative)
//   embed_norm      norm right after the embeddings (BERT)       default nn::no_norm
//   final_norm      norm after the last layer (Pre-LN models)    default nn::no_norm
//   tie_embeddings  LM head shares the token embedding table     default false
// An encoder-decoder spec names encoder_layer and decoder_layer instead of layer.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../nn/attention.hpp"
#include "../nn/layers.hpp"
#include "../nn/norm.hpp"
#include "../nn/positions.hpp"

namespace tformer::models {

/// @brief Sizes of a model (runtime data).
struct model_config {
  std::int64_t vocab = 0;
  std::int64_t layers = 0;           ///< layers of the stack (the encoder's, for encoder-decoders)
  std::int64_t decoder_layers = 0;   ///< encoder-decoders: decoder layers (0: same as layers)
  std::int64_t max_positions = 0;    ///< learned position table size
  std::int64_t token_types = 0;      ///< BERT segment embeddings (segment 0 is used); 0: none
  float embed_scale = 1.0f;          ///< token embeddings are multiplied by this (sqrt(d) in the original Transformer)
  float final_norm_eps = 0.0f;       ///< 0: the layers' norm eps
  std::int64_t relative_buckets = 32;        ///< T5 relative attention buckets
  std::int64_t relative_max_distance = 128;  ///< T5 relative attention max distance
  nn::layer_config layer;            ///< every layer's sizes (attention, ffn, norm eps)
  std::int64_t d_model() const { return layer.attention.d_model; }
};

/// @brief No attention bias (the default).
struct no_attention_bias : ops::no_bias {
  no_attention_bias() = default;
  no_attention_bias(const model_config&, bool /*bidirectional*/) {}
  template <class V>
  void visit(V&&, const std::string&) {}
};

/// @brief ALiBi slopes for the stack's heads.
struct alibi : nn::alibi_bias {
  alibi() = default;
  alibi(const model_config& c, bool) : nn::alibi_bias(c.layer.attention.heads) {}
  template <class V>
  void visit(V&&, const std::string&) {}
};

/// @brief T5 relative position buckets, one table per stack: bidirectional in an encoder, causal in a decoder.
struct t5_relative : nn::t5_relative_bias {
  t5_relative() = default;
  t5_relative(const model_config& c, bool bidirectional)
      : nn::t5_relative_bias(c.relative_buckets, c.layer.attention.heads, c.relative_max_distance, bidirectional) {}
};

/// @brief A stack-level attention bias policy.
template <class B>
concept stack_bias = ops::attention_bias<B> && std::constructible_from<B, const model_config&, bool>;

namespace detail {
// spec member types with their defaults
template <class S> struct positions_of { using type = nn::no_positions; };
template <class S> requires requires { typename S::positions; } struct positions_of<S> { using type = typename S::positions; };
template <class S> struct bias_of { using type = no_attention_bias; };
template <class S> requires requires { typename S::attention_bias; } struct bias_of<S> { using type = typename S::attention_bias; };
template <class S> struct embed_norm_of { using type = nn::no_norm; };
template <class S> requires requires { typename S::embed_norm; } struct embed_norm_of<S> { using type = typename S::embed_norm; };
template <class S> struct final_norm_of { using type = nn::no_norm; };
template <class S> requires requires { typename S::final_norm; } struct final_norm_of<S> { using type = typename S::final_norm; };
template <class S> constexpr bool tied_of() {
  if constexpr (requires { S::tie_embeddings; }) return S::tie_embeddings;
  else return false;
}
}  // namespace detail

/// @brief A spec's types with defaults filled in.
template <class S>
struct spec_traits {
  using positions = typename detail::positions_of<S>::type;
  using attention_bias = typename detail::bias_of<S>::type;
  using embed_norm = typename detail::embed_norm_of<S>::type;
  using final_norm = typename detail::final_norm_of<S>::type;
  static constexpr bool tie_embeddings = detail::tied_of<S>();
  static_assert(nn::absolute_positions<positions>, "spec::positions must be an absolute-position policy (nn::no_positions, "
                                                   "nn::learned_positions, nn::sinusoidal_positions)");
  static_assert(stack_bias<attention_bias>, "spec::attention_bias must be models::no_attention_bias, models::alibi or "
                                            "models::t5_relative");
  static_assert(nn::norm<embed_norm> && nn::norm<final_norm>, "spec::embed_norm / final_norm must be a norm policy");
};

/// @brief A layer usable in a self-attention stack (encoder or decoder-only).
template <class L>
concept self_attention_layer = std::constructible_from<L, const nn::layer_config&> &&
    requires(const L& l, tensor_view<float> x, const nn::sequence_info& s, const ops::attention_mask& m,
             nn::kv_cache_layer* c) {
      l.forward(x, s, m, c);
      l.self_attn.make_cache(1, 1);
    };

namespace detail {
// out[i] = in[rows[i]] along the leading dimension; only the first `used` positions of dimension 1
// are copied when the tensor is a cache [B, capacity, ...] (used < 0: everything).
template <element T>
tensor<T> gather_rows(const tensor<T>& in, std::span<const std::int64_t> rows, std::int64_t used = -1) {
  shape s = in.shape();
  std::int64_t b = static_cast<std::int64_t>(rows.size());
  tensor<T> out;
  switch (s.rank()) {
    case 1: out = tensor<T>(shape{b}); break;
    case 2: out = tensor<T>(shape{b, s[1]}); break;
    case 3: out = tensor<T>(shape{b, s[1], s[2]}); break;
    default: out = tensor<T>(shape{b, s[1], s[2], s[3]}); break;
  }
  const std::int64_t row = b > 0 ? out.numel() / b : 0;
  const std::int64_t per_pos = s.rank() >= 2 && s[1] > 0 ? row / s[1] : row;
  const std::int64_t copy = used >= 0 && s.rank() >= 2 ? std::min(used, s[1]) * per_pos : row;
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    if (r < 0 || r >= s[0])
      throw value_error("tformer::models: row " + std::to_string(r) + " is outside a batch of " + std::to_string(s[0]));
    std::copy_n(in.data() + r * row, copy, out.data() + i * row);
  }
  return out;
}
}  // namespace detail

/// @brief KV cache of a whole decoder: one layer cache each, plus the tokens cached per sequence.
struct kv_cache {
  std::vector<nn::kv_cache_layer> layers;
  tensor<std::int32_t> lengths;  // [B] positions filled per sequence
  std::int64_t batch() const { return lengths.rank() == 1 ? lengths.dim(0) : 0; }
  std::int64_t capacity() const { return layers.empty() ? 0 : layers.front().capacity(); }

  /// @brief Keeps rows[i] of the batch as row i (rows may repeat: beams; may drop: finished sequences).
  void select(std::span<const std::int64_t> rows) {
    std::int64_t used = 0;
    for (std::int64_t b = 0; b < batch(); ++b) used = std::max<std::int64_t>(used, lengths(b));
    for (auto& l : layers) {
      l.k = detail::gather_rows(l.k, rows, used);
      l.v = detail::gather_rows(l.v, rows, used);
    }
    lengths = detail::gather_rows(lengths, rows);
  }
};

namespace detail {
// The final norm's eps.
inline float final_eps(const model_config& c) { return c.final_norm_eps > 0 ? c.final_norm_eps : c.layer.norm_eps; }

// lengths [B] (or empty: all S) must lie in [0, S].
inline void check_lengths(const char* who, tensor_view<const std::int32_t> lengths, std::int64_t B, std::int64_t S) {
  if (!lengths.data()) return;
  if (lengths.rank() != 1 || lengths.dim(0) != B)
    throw shape_error(std::string("tformer::models::") + who + ": lengths must be [" + std::to_string(B) + "], got " +
                      lengths.shape().to_string());
  for (std::int64_t b = 0; b < B; ++b)
    if (lengths(b) < 0 || lengths(b) > S)
      throw value_error(std::string("tformer::models::") + who + ": lengths[" + std::to_string(b) + "] = " +
                        std::to_string(lengths(b)) + " is outside [0, " + std::to_string(S) + "]");
}

// ids [B, S] of int32.
inline void check_ids(const char* who, tensor_view<const std::int32_t> ids) {
  if (ids.rank() != 2)
    throw shape_error(std::string("tformer::models::") + who + ": token ids must be [batch, seq], got " +
                      ids.shape().to_string());
}
}  // namespace detail

}  // namespace tformer::models
