// Multi-head attention block: projections, optional QK-norm and rotary positions, a per-layer
// state for incremental decoding, and the exact tiled kernel of ops/attention.hpp.
//
//   nn::attention<Spec>, where Spec is a struct of named member types, each optional:
//     rope     rotary policy (nn::no_rope, nn::rotary)                     default nn::no_rope
//     weights  weight format of the projections (quant::f32, quant::q8_0)   default quant::f32
//     qk_norm  norm of each query and key head (nn::rms_norm: QK-norm)      default nn::no_norm
//     state    what incremental decoding keeps (nn::kv_cache, nn::sliding_window_cache)
//                                                                          default nn::kv_cache
//   nn::multi_head_attention<Rope, Format, QKNorm> is attention<> with those three given in order.
//
//   query heads and key/value heads are separate runtime numbers (MHA, GQA, MQA);
//   self-attention: forward(x [B, S, d], out [B, S, d], seq, mask, state*, bias);
//   cross-attention: project_kv(memory [B, M, d]) once per source, then forward_cross per step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/attention.hpp"
#include "../ops/gather.hpp"
#include "../quant/f32.hpp"
#include "../quant/format.hpp"
#include "attention_config.hpp"
#include "kv_cache.hpp"
#include "linear.hpp"
#include "norm.hpp"
#include "positions.hpp"
#include "rotary.hpp"
#include "state.hpp"

namespace tformer::nn {

/// @brief Keys and values of a cross-attention memory (an encoder's output), per source:
/// k, v [B, M, kv_heads, head_dim].
struct cross_kv {
  tensor<float> k, v;
  std::int64_t batch() const noexcept { return k.rank() == 4 ? k.dim(0) : 0; }
  /// @brief Keeps sources rows[i] as source i.
  void select(std::span<const std::int64_t> rows) {
    ops::select_rows(k, rows);
    ops::select_rows(v, rows);
  }
};

/// @brief The spec of attention<>: every member defaulted.
struct default_attention {};

/// @brief The spec multi_head_attention<Rope, Format, QKNorm> stands for.
template <class Rope, class Format, class QKNorm>
struct attention_spec {
  using rope = Rope;
  using weights = Format;
  using qk_norm = QKNorm;
};

namespace detail {
template <class S> struct rope_of { using type = no_rope; };
template <class S> requires requires { typename S::rope; } struct rope_of<S> { using type = typename S::rope; };
template <class S> struct weights_of { using type = quant::f32; };
template <class S> requires requires { typename S::weights; } struct weights_of<S> { using type = typename S::weights; };
template <class S> struct qk_norm_of { using type = no_norm; };
template <class S> requires requires { typename S::qk_norm; } struct qk_norm_of<S> { using type = typename S::qk_norm; };
template <class S> struct state_of { using type = kv_cache; };
template <class S> requires requires { typename S::state; } struct state_of<S> { using type = typename S::state; };

// Spec S with its weight format replaced by F.
template <class S, class F>
struct with_weights_spec : S {
  using weights = F;
};
}  // namespace detail

/// @brief An attention spec's members with their defaults filled in, each checked with one line.
template <class S>
struct attention_traits {
  using rope = typename detail::rope_of<S>::type;
  using weights = typename detail::weights_of<S>::type;
  using qk_norm = typename detail::qk_norm_of<S>::type;
  using state = typename detail::state_of<S>::type;
  static_assert(rotary_policy<rope>, "attention spec::rope must be a rotary policy (nn::no_rope, nn::rotary)");
  static_assert(quant::weight_format<weights>, "attention spec::weights must be a weight format (quant::f32, quant::bf16, ...)");
  static_assert(norm<qk_norm>, "attention spec::qk_norm must be a norm policy (nn::no_norm, nn::rms_norm, nn::layer_norm)");
  static_assert(attention_state<state>, "attention spec::state must be an attention state (nn::kv_cache, ...)");
};

/// @brief Multi-head attention with grouped KV heads, optional rotary positions and QK-norm, and a
/// per-layer state for incremental decoding, as chosen by Spec (see the file comment).
template <class Spec = default_attention>
class attention {
 public:
  using traits = attention_traits<Spec>;
  using rope_type = typename traits::rope;
  using format = typename traits::weights;
  using qk_norm_type = typename traits::qk_norm;
  using state_type = typename traits::state;
  /// @brief The same block with its projections in format G.
  template <quant::weight_format G>
  using with_weights = attention<detail::with_weights_spec<Spec, G>>;

  attention() = default;
  explicit attention(const attention_config& c, rope_type positions = {}) : config(resolve(c)), rope(positions) {
    const auto& r = config;
    q = linear<format>(r.d_model, r.heads * r.head_dim, r.qkv_bias);
    k = linear<format>(r.d_model, r.kv_heads * r.head_dim, r.qkv_bias);
    v = linear<format>(r.d_model, r.kv_heads * r.head_dim, r.qkv_bias);
    o = linear<format>(r.heads * r.head_dim, r.d_model, r.out_bias);
    q_norm = qk_norm_type(r.head_dim, r.qk_norm_eps);
    k_norm = qk_norm_type(r.head_dim, r.qk_norm_eps);
  }

  /// @brief Validates a config and fills its defaults; throws value_error naming the bad field.
  static attention_config resolve(attention_config c) {
    auto fail = [](const std::string& why) { throw value_error("tformer::nn::attention: " + why); };
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
    if (c.window < 0) fail("window must be >= 0, got " + std::to_string(c.window));
    return c;
  }

  /// @brief An empty state for batch sequences of up to capacity positions.
  state_type make_state(std::int64_t batch, std::int64_t capacity) const { return state_type(batch, capacity, config); }

  /// @brief Self-attention over x [B, S, d] into out [B, S, d]. mask holds the structural rules
  /// (causal, prefix; the block's own config.window, when set, replaces mask.window); padding and
  /// positions come from seq. With a state, this call's keys and values are appended to it (at
  /// positions seq.positions[b] + i) and the queries attend to everything it holds.
  template <ops::attention_bias Bias = ops::no_bias>
  void forward(tensor_view<const float> x, tensor_view<float> out, const sequence_info& seq,
               ops::attention_mask mask = {}, state_type* state = nullptr, const Bias& bias = {}) const {
    check_input("x", x);
    const std::int64_t B = x.dim(0), S = x.dim(1);
    const auto& c = config;
    detail::check_start("attention", seq.positions, B);
    if (seq.lengths.data() && (seq.lengths.rank() != 1 || seq.lengths.dim(0) != B))
      throw shape_error("tformer::nn::attention: lengths must be [" + std::to_string(B) + "], got " +
                        seq.lengths.shape().to_string());
    if (state && state->batch() != B)
      throw shape_error("tformer::nn::attention: the state is for batch " + std::to_string(state->batch()) +
                        ", the input for batch " + std::to_string(B));
    workspace_ref scratch(seq.scratch);
    const auto scope = scratch->open();
    // projections, [B, S, heads, head_dim]
    const auto qh = scratch->take<float>(shape{B, S, c.heads, c.head_dim});
    const auto kh = scratch->take<float>(shape{B, S, c.kv_heads, c.head_dim});
    const auto vh = scratch->take<float>(shape{B, S, c.kv_heads, c.head_dim});
    q.forward(x, qh.reshape(shape{B, S, c.heads * c.head_dim}), scratch.get());
    k.forward(x, kh.reshape(shape{B, S, c.kv_heads * c.head_dim}), scratch.get());
    v.forward(x, vh.reshape(shape{B, S, c.kv_heads * c.head_dim}), scratch.get());
    q_norm.forward(qh, qh);
    k_norm.forward(kh, kh);
    rope.apply(qh, seq.positions);
    rope.apply(kh, seq.positions);
    if (c.window > 0) mask.window = c.window;

    const auto attn = scratch->take<float>(shape{B, S, c.heads, c.head_dim});  // [B, S, heads, head_dim]
    if (!state) {
      mask.key_lengths = seq.lengths;
      mask.key_begin = {};
      mask.ring = 0;
      mask.query_start = {};
      mask.query_offset = 0;  // keys are this call's tokens: positions relative to its start
      ops::attention(qh, kh, vh, attn, mask, c.scale, bias, {}, scratch.get());
    } else {
      // append and attend in chunks of as many tokens as the state takes at once
      const std::int64_t chunk = std::max<std::int64_t>(1, std::min(S, state->max_append()));
      const auto counts = scratch->take<std::int32_t>(shape{B});     // real tokens of the chunk
      const auto positions = scratch->take<std::int32_t>(shape{B});  // position of the chunk's first token
      for (std::int64_t c0 = 0; c0 < S; c0 += chunk) {
        const std::int64_t c1 = std::min(S, c0 + chunk);
        for (std::int64_t b = 0; b < B; ++b) {
          const std::int64_t n = seq.lengths.data() ? seq.lengths(b) : S;
          counts(b) = static_cast<std::int32_t>(std::clamp<std::int64_t>(n - c0, 0, c1 - c0));
          positions(b) = static_cast<std::int32_t>(detail::start_of(seq.positions, b) + c0);
        }
        state->append(kh.slice(1, c0, c1), vh.slice(1, c0, c1), counts, positions);
        const kv_view kv = state->keys();
        mask.key_lengths = kv.end;
        mask.key_begin = kv.begin;
        mask.ring = kv.ring;
        mask.query_start = positions;
        ops::attention(qh.slice(1, c0, c1), kv.k, kv.v, attn.slice(1, c0, c1), mask, c.scale, bias, {}, scratch.get(),
                       kv.reader);
      }
    }
    o.forward(attn.reshape(shape{B, S, c.heads * c.head_dim}), out, scratch.get());
  }

  /// @brief Cross-attention keys and values of memory [B, M, d] (computed once per source).
  void project_kv(tensor_view<const float> memory, cross_kv& kv) const {
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
  void forward_cross(tensor_view<const float> x, tensor_view<float> out, const cross_kv& memory,
                     tensor_view<const std::int32_t> memory_lengths = {}, const Bias& bias = {},
                     workspace* ws = nullptr) const {
    check_input("x", x);
    const std::int64_t B = x.dim(0), T = x.dim(1);
    const auto& c = config;
    const std::int64_t M = memory.batch();
    if (M < 1 || B % M != 0)
      throw shape_error("tformer::nn::attention: cross-attention memory of batch " + std::to_string(M) +
                        " does not fit queries of batch " + std::to_string(B) + " (call project_kv first)");
    const std::int64_t g = B / M;  // query rows per memory sequence
    workspace_ref scratch(ws);
    const auto scope = scratch->open();
    const auto qh = scratch->take<float>(shape{M, g * T, c.heads, c.head_dim});    // queries grouped per source
    const auto attn = scratch->take<float>(shape{M, g * T, c.heads, c.head_dim});  // [M, g*T, heads, head_dim]
    q.forward(x, qh.reshape(shape{B, T, c.heads * c.head_dim}), scratch.get());
    q_norm.forward(qh, qh);
    ops::attention_mask mask;  // no causal mask: every row of a group sees the same memory
    mask.key_lengths = memory_lengths;
    ops::attention(qh, memory.k, memory.v, attn, mask, c.scale, bias, {}, scratch.get());
    o.forward(attn.reshape(shape{B, T, c.heads * c.head_dim}), out, scratch.get());
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
  linear<format> q, k, v, o;     // q: [heads*hd, d], k/v: [kv_heads*hd, d], o: [d, heads*hd]
  qk_norm_type q_norm, k_norm;   // over head_dim
  rope_type rope;

 private:
  void check_input(const char* name, const tensor_view<const float>& x) const {
    if (x.rank() != 3 || x.dim(2) != config.d_model)
      throw shape_error(std::string("tformer::nn::attention: ") + name + " must be [batch, seq, " +
                        std::to_string(config.d_model) + "], got " + x.shape().to_string());
  }
};

/// @brief attention<> with rotary policy Rope, projections in Format and QK-norm QKNorm.
template <rotary_policy Rope = no_rope, quant::weight_format Format = quant::f32, norm QKNorm = no_norm>
using multi_head_attention = attention<attention_spec<Rope, Format, QKNorm>>;

/// @brief A self-attention block: what a layer needs from its attention policy.
template <class A>
concept attention_block = requires { typename A::state_type; typename A::format; } &&
                          attention_state<typename A::state_type> && std::constructible_from<A, const attention_config&>;

}  // namespace tformer::nn
