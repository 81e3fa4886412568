// Multi-head attention block: projections, optional QK-norm and rotary positions, a KV cache for
// incremental decoding, and the exact tiled kernel of ops/attention.hpp.
//
//   query heads and key/value heads are separate runtime numbers (MHA, GQA, MQA);
//   self-attention: forward(x [B, S, d], out [B, S, d], seq, mask, cache*, bias);
//   cross-attention: project_kv(memory [B, M, d]) once per source, then forward_cross per step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../ops/attention.hpp"
#include "linear.hpp"
#include "norm.hpp"
#include "positions.hpp"

namespace tformer::nn {

/// @brief Sizes and switches of an attention block (runtime data).
struct attention_config {
  std::int64_t d_model = 0;
  std::int64_t heads = 0;     ///< query heads
  std::int64_t kv_heads = 0;  ///< key/value heads; 0 means heads (MHA); 1 is MQA
  std::int64_t head_dim = 0;  ///< 0 means d_model / heads
  bool qkv_bias = true;
  bool out_bias = true;
  std::optional<float> scale;  ///< logit scale; empty means 1/sqrt(head_dim); 1.0f for T5
  float qk_norm_eps = 1e-6f;   ///< eps of the QK-norm, when the block has one
};

/// @brief Which tokens of a [B, S, ...] call are real: sequence b has lengths[b] tokens (padding
/// after them), the first at absolute position start[b] (its place in the KV cache).
struct sequence_info {
  tensor_view<const std::int32_t> lengths;  ///< [B]; empty: every sequence has S tokens
  tensor_view<const std::int32_t> start;    ///< [B]; empty: all start at position 0
};

/// @brief Keys and values of one attention layer: [B, capacity, kv_heads, head_dim] each.
struct kv_cache_layer {
  tensor<float> k, v;
  std::int64_t capacity() const { return k.rank() == 4 ? k.dim(1) : 0; }
};

/// @brief Multi-head attention with grouped KV heads, optional rotary positions and QK-norm.
/// @tparam Rope no_rope or rotary; @tparam Format weight format of the projections;
/// @tparam QKNorm no_norm, or a norm applied per head to queries and keys (QK-norm).
template <rotary_policy Rope = no_rope, weight_format Format = f32_weights, norm QKNorm = no_norm>
class multi_head_attention {
 public:
  using format = Format;
  multi_head_attention() = default;
  explicit multi_head_attention(const attention_config& c, Rope positions = {}) : config(resolve(c)), rope(positions) {
    const auto& r = config;
    q = linear<Format>(r.d_model, r.heads * r.head_dim, r.qkv_bias);
    k = linear<Format>(r.d_model, r.kv_heads * r.head_dim, r.qkv_bias);
    v = linear<Format>(r.d_model, r.kv_heads * r.head_dim, r.qkv_bias);
    o = linear<Format>(r.heads * r.head_dim, r.d_model, r.out_bias);
    q_norm = QKNorm(r.head_dim, r.qk_norm_eps);
    k_norm = QKNorm(r.head_dim, r.qk_norm_eps);
  }

  /// @brief Validates a config and fills its defaults; throws value_error naming the bad field.
  static attention_config resolve(attention_config c) {
    auto fail = [](const std::string& why) { throw value_error("tformer::nn::multi_head_attention: " + why); };
    if (c.d_model < 1 || c.heads < 1) fail("d_model and heads must be >= 1");
    if (c.kv_heads == 0) c.kv_heads = c.heads;
    if (c.head_dim == 0) {
      if (c.d_model % c.heads != 0)
        fail("heads (" + std::to_string(c.heads) + ") must divide d_model (" + std::to_string(c.d_model) +
             ") when head_dim is not given");
      c.head_dim = c.d_model / c.heads;
    }
    if (c.kv_heads < 1 || c.heads % c.kv_heads != 0)
      fail("kv_heads (" + std::to_string(c.kv_heads) + ") must divide heads (" + std::to_string(c.heads) + ")");
    return c;
  }

  /// @brief Self-attention over x [B, S, d] into out [B, S, d]. mask holds the structural rules
  /// (causal, window, prefix); padding and positions come from seq. With a cache, this call's keys
  /// and values are stored at start[b] + i and the queries attend to everything cached so far.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<const float> x, tensor_view<float> out, const sequence_info& seq,
               ops::attention_mask mask = {}, kv_cache_layer* cache = nullptr, const Bias& bias = {}) const {
    check_input("x", x);
    const std::int64_t B = x.dim(0), S = x.dim(1);
    const auto& c = config;
    tensor<float> qh(shape{B, S, c.heads, c.head_dim}), kh(shape{B, S, c.kv_heads, c.head_dim}),
        vh(shape{B, S, c.kv_heads, c.head_dim});  // projections, [B, S, heads, head_dim]
    q.forward(x, qh.view().reshape(shape{B, S, c.heads * c.head_dim}));
    k.forward(x, kh.view().reshape(shape{B, S, c.kv_heads * c.head_dim}));
    v.forward(x, vh.view().reshape(shape{B, S, c.kv_heads * c.head_dim}));
    q_norm.forward(qh, qh);
    k_norm.forward(kh, kh);
    rope.apply(qh, seq.start);
    rope.apply(kh, seq.start);

    tensor<float> attn(shape{B, S, c.heads, c.head_dim});  // [B, S, heads, head_dim]
    if (!cache) {
      mask.key_lengths = seq.lengths;
      mask.query_start = {};
      mask.query_offset = 0;  // keys are this call's tokens: positions relative to its start
      ops::attention(qh, kh, vh, attn, mask, c.scale, bias);
    } else {
      tensor<std::int32_t> total(shape{B});  // valid cached keys per sequence after this call
      std::int64_t longest = 0;
      for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t s0 = detail::start_of(seq.start, b), n = seq.lengths.data() ? seq.lengths(b) : S;
        if (s0 + n > cache->capacity())
          throw value_error("tformer::nn::multi_head_attention: sequence " + std::to_string(b) + " needs " +
                            std::to_string(s0 + n) + " cached positions but the KV cache holds " +
                            std::to_string(cache->capacity()));
        total(b) = static_cast<std::int32_t>(s0 + n);
        longest = std::max(longest, s0 + n);
        for (std::int64_t i = 0; i < n; ++i) {  // append this call's real tokens
          std::copy_n(kh.view()[b][i].data(), c.kv_heads * c.head_dim, cache->k.view()[b][s0 + i].data());
          std::copy_n(vh.view()[b][i].data(), c.kv_heads * c.head_dim, cache->v.view()[b][s0 + i].data());
        }
      }
      mask.key_lengths = total;
      mask.query_start = seq.start;
      ops::attention(qh, tensor_view<const float>(cache->k.view().slice(1, 0, longest)),
                     tensor_view<const float>(cache->v.view().slice(1, 0, longest)), attn, mask, c.scale, bias);
    }
    o.forward(attn.view().reshape(shape{B, S, c.heads * c.head_dim}), out);
  }

  /// @brief Cross-attention keys and values of memory [B, M, d] (computed once per source).
  void project_kv(tensor_view<const float> memory, kv_cache_layer& kv) const {
    check_input("memory", memory);
    const std::int64_t B = memory.dim(0), M = memory.dim(1);
    const auto& c = config;
    kv.k = tensor<float>(shape{B, M, c.kv_heads, c.head_dim});
    kv.v = tensor<float>(shape{B, M, c.kv_heads, c.head_dim});
    k.forward(memory, kv.k.view().reshape(shape{B, M, c.kv_heads * c.head_dim}));
    v.forward(memory, kv.v.view().reshape(shape{B, M, c.kv_heads * c.head_dim}));
    k_norm.forward(kv.k, kv.k);
  }

  /// @brief Cross-attention of x [B, T, d] to memory keys/values from project_kv, whose sequence
  /// b has memory_lengths[b] real positions. x may hold g rows per memory sequence (B = g * M):
  /// rows b*g .. b*g + g - 1 attend to memory b, e.g. the beams of one source.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward_cross(tensor_view<const float> x, tensor_view<float> out, const kv_cache_layer& memory,
                     tensor_view<const std::int32_t> memory_lengths = {}, const Bias& bias = {}) const {
    check_input("x", x);
    const std::int64_t B = x.dim(0), T = x.dim(1);
    const auto& c = config;
    const std::int64_t M = memory.k.rank() == 4 ? memory.k.dim(0) : 0;
    if (M < 1 || B % M != 0)
      throw shape_error("tformer::nn::multi_head_attention: cross-attention memory of batch " + std::to_string(M) +
                        " does not fit queries of batch " + std::to_string(B) + " (call project_kv first)");
    const std::int64_t g = B / M;  // query rows per memory sequence
    tensor<float> qh(shape{M, g * T, c.heads, c.head_dim}), attn(shape{M, g * T, c.heads, c.head_dim});
    q.forward(x, qh.view().reshape(shape{B, T, c.heads * c.head_dim}));
    q_norm.forward(qh, qh);
    ops::attention_mask mask;  // no causal mask: every row of a group sees the same memory
    mask.key_lengths = memory_lengths;
    ops::attention(qh, memory.k, memory.v, attn, mask, c.scale, bias);
    o.forward(attn.view().reshape(shape{B, T, c.heads * c.head_dim}), out);
  }

  /// @brief An empty cache for batch sequences of up to capacity positions.
  kv_cache_layer make_cache(std::int64_t batch, std::int64_t capacity) const {
    return {tensor<float>(shape{batch, capacity, config.kv_heads, config.head_dim}),
            tensor<float>(shape{batch, capacity, config.kv_heads, config.head_dim})};
  }

  template <class V>
  void visit(V&& vis, const std::string& prefix) {
    q.visit(vis, prefix + "q.");
    k.visit(vis, prefix + "k.");
    v.visit(vis, prefix + "v.");
    o.visit(vis, prefix + "o.");
    q_norm.visit(vis, prefix + "q_norm.");
    k_norm.visit(vis, prefix + "k_norm.");
  }

  attention_config config;
  linear<Format> q, k, v, o;  // q: [heads*hd, d], k/v: [kv_heads*hd, d], o: [d, heads*hd]
  QKNorm q_norm, k_norm;      // over head_dim
  Rope rope;

 private:
  void check_input(const char* name, const tensor_view<const float>& x) const {
    if (x.rank() != 3 || x.dim(2) != config.d_model)
      throw shape_error(std::string("tformer::nn::multi_head_attention: ") + name + " must be [batch, seq, " +
                        std::to_string(config.d_model) + "], got " + x.shape().to_string());
  }
};

}  // namespace tformer::nn
