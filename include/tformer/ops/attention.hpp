// Exact, memory-efficient scaled dot-product attention ("Self-attention Does Not Need O(n^2)
// Memory"; the FlashAttention schedule on a CPU).
//
//   q   [B, Sq, Hq,  D ]     k [B, Sk, Hkv, D]     v [B, Sk, Hkv, Dv]     out [B, Sq, Hq, Dv]
//
// Query head h reads key/value head h / (Hq / Hkv): MHA (Hkv == Hq), GQA, MQA (Hkv == 1). Views
// may be strided (a KV cache [B, Smax, Hkv, D] sliced to the valid length works as is); the
// innermost dimension must be contiguous.
//
// Keys are addressed by position. Query i of sequence b sits at position query_start[b] + i; the
// keys of sequence b are positions [key_begin[b], key_lengths[b]), stored at slot = position
// (ring == 0) or slot = position % ring (a ring buffer of `ring` slots, e.g. a sliding-window
// cache), so a state can hand its storage to the kernel as it is.
//
// Work item = (batch, head, block of query_block queries). Keys are visited in tiles of key_block
// with a running row maximum m and sum l (online softmax), so no [Sq, Sk] buffer ever exists.
// Working memory per item (per thread): scores query_block x key_block floats + accumulator
// query_block x Dv floats + 2 x query_block floats = 64*256 + 64*Dv + 128 floats (80 KiB at
// Dv = 64), independent of the sequence length, taken from the caller's workspace when given.
// With a kv_reader (a quantized KV cache) each thread also holds one key and one value tile as
// floats, key_block x (D + Dv). Tiles that the mask hides entirely are skipped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../simd/arch.hpp"
#include "matmul.hpp"

namespace tformer::ops {

/// @brief Which keys each query may see, and how logits are scaled. All fields are runtime data.
struct attention_mask {
  bool causal = false;            ///< key position <= query position
  std::int64_t window = 0;        ///< sliding window: query q sees keys k with q - k < window (0: unlimited)
  std::int64_t global_tokens = 0; ///< with a window: the first n positions see and are seen by all
  std::int64_t prefix = 0;        ///< prefix-LM: with causal, keys < prefix are visible to every query
  /// One past the last valid key position per sequence, [B] (the number of valid keys when they
  /// start at 0; padding at the end); empty: all Sk keys are valid.
  tensor_view<const std::int32_t> key_lengths;
  /// First valid key position per sequence, [B]; empty: 0.
  tensor_view<const std::int32_t> key_begin;
  /// Keys stored in a ring of this many slots (slot = position % ring); 0: slot = position.
  std::int64_t ring = 0;
  /// Absolute position of each sequence's first query, [B] (KV-cache decoding); empty: query_offset.
  tensor_view<const std::int32_t> query_start;
  std::int64_t query_offset = 0;  ///< absolute position of query 0 when query_start is empty
};

/// @brief No additive bias (the default bias hook).
struct no_bias {
  static constexpr bool enabled = false;
  void add(std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*) const noexcept {}
};

/// @brief An additive attention-bias hook (ALiBi, T5 relative buckets, ...): add(batch, head,
/// query_pos, key_pos0, n, logits) adds the bias of keys key_pos0 .. key_pos0 + n - 1 to logits[0..n).
template <class B>
concept attention_bias = requires(const B& b, float* row) {
  { B::enabled } -> std::convertible_to<bool>;
  b.add(std::int64_t{}, std::int64_t{}, std::int64_t{}, std::int64_t{}, std::int64_t{}, row);
};

/// @brief Tile sizes of the attention kernel (queries per work item, keys per tile).
struct attention_tiles {
  std::int64_t query_block = 64;
  std::int64_t key_block = 256;
};

/// @brief Keys and values held in another form than float tensors (a quantized KV cache): the
/// kernel asks for each tile of rows as floats, into its own per-thread scratch, instead of reading
/// k and v (which then only give the shapes: [B, slots, Hkv, D] and [B, slots, Hkv, Dv]).
class kv_reader {
 public:
  /// @brief Keys (values: false) of sequence b, key/value head h, slots [slot0, slot0 + n) as
  /// floats: out [n, D] (or [n, Dv]), rows contiguous.
  virtual void read(bool keys, std::int64_t b, std::int64_t h, std::int64_t slot0, std::int64_t n, float* out) const = 0;

 protected:
  ~kv_reader() = default;
};

namespace detail {

// s[i] = exp(s[i] - m) for i < n, returning the sum (vectorized; the tail as one padded batch).
inline float exp_shift_sum(float* s, std::int64_t n, float m) noexcept {
  using A = simd::default_arch;
  using batch = simd::fbatch<A>;
  constexpr std::int64_t W = static_cast<std::int64_t>(batch::size);
  const batch mb(m);
  batch acc(0.0f);
  std::int64_t i = 0;
  for (; i + W <= n; i += W) {
    const batch e = xsimd::exp(batch::load_unaligned(s + i) - mb);
    e.store_unaligned(s + i);
    acc += e;
  }
  if (i < n) {  // padding lanes hold -inf: exp gives 0 and adds nothing
    const auto rest = static_cast<std::size_t>(n - i);
    const batch e = xsimd::exp(simd::load_partial<A>(s + i, rest, -std::numeric_limits<float>::infinity()) - mb);
    simd::store_partial<A>(s + i, e, rest);
    acc += e;
  }
  return xsimd::hadd(acc);
}

inline void check_attention_shapes(const tensor_view<const float>& q, const tensor_view<const float>& k,
                                   const tensor_view<const float>& v, const tensor_view<float>& out,
                                   const attention_mask& mask) {
  auto fail = [&](const std::string& why) {
    throw shape_error("tformer::ops::attention: " + why + " (q " + q.shape().to_string() + ", k " + k.shape().to_string() +
                      ", v " + v.shape().to_string() + ", out " + out.shape().to_string() + ")");
  };
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4 || out.rank() != 4)
    fail("expected rank-4 q [B, Sq, Hq, D], k [B, Sk, Hkv, D], v [B, Sk, Hkv, Dv], out [B, Sq, Hq, Dv]");
  const auto B = q.dim(0), Sq = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  const auto Sk = k.dim(1), Hkv = k.dim(2);
  if (k.dim(0) != B || v.dim(0) != B || out.dim(0) != B) fail("batch sizes differ");
  if (k.dim(3) != D) fail("q and k head dims differ: " + std::to_string(D) + " vs " + std::to_string(k.dim(3)));
  if (v.dim(1) != Sk || v.dim(2) != Hkv) fail("k and v must have the same [B, Sk, Hkv]");
  if (Hkv < 1 || Hq % Hkv != 0)
    fail("query heads (" + std::to_string(Hq) + ") must be a multiple of key/value heads (" + std::to_string(Hkv) + ")");
  if (out.dim(1) != Sq || out.dim(2) != Hq || out.dim(3) != v.dim(3)) fail("out must be [B, Sq, Hq, Dv]");
  for (const auto* t : {&q, &k, &v})
    if (t->dim(3) > 1 && t->stride(3) != 1) fail("the head dimension must be contiguous");
  if (out.dim(3) > 1 && out.stride(3) != 1) fail("the head dimension of out must be contiguous");
  for (const auto* lens : {&mask.key_lengths, &mask.query_start, &mask.key_begin})
    if (lens->data() && (lens->rank() != 1 || lens->dim(0) != B))
      fail("key_lengths / key_begin / query_start must be [" + std::to_string(B) + "], got " + lens->shape().to_string());
  if (mask.ring < 0 || mask.ring > Sk)
    throw value_error("tformer::ops::attention: ring " + std::to_string(mask.ring) + " is outside [0, Sk = " +
                      std::to_string(Sk) + "]");
  if (mask.ring > 0 && !mask.key_lengths.data())
    throw value_error("tformer::ops::attention: keys in a ring need key_lengths (the end position of each sequence)");
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t begin = mask.key_begin.data() ? mask.key_begin(b) : 0;
    const std::int64_t end = mask.key_lengths.data() ? mask.key_lengths(b) : Sk;
    const std::int64_t limit = mask.ring > 0 ? begin + mask.ring : Sk;  // one past the last storable position
    if (begin < 0 || end < begin || end > limit)
      throw value_error("tformer::ops::attention: the keys of sequence " + std::to_string(b) + " are positions [" +
                        std::to_string(begin) + ", " + std::to_string(end) + "), which " +
                        (mask.ring > 0 ? "a ring of " + std::to_string(mask.ring) + " slots cannot hold"
                                       : "do not fit [0, Sk = " + std::to_string(Sk) + "]"));
  }
  if (mask.window < 0 || mask.global_tokens < 0 || mask.prefix < 0)
    throw value_error("tformer::ops::attention: window, global_tokens and prefix must be >= 0");
}

}  // namespace detail

/// @brief out = softmax(scale * q k^T + bias + mask) v, per head, exactly, in O(seq) memory.
/// @param scale logit scale; std::nullopt means 1/sqrt(D) (pass 1.0f for T5, which has none).
/// Query rows that see no key at all (padding) produce zeros.
/// ws, when given, supplies the per-thread working memory (nothing is allocated once it is sized).
/// reader, when given, supplies the keys and values tile by tile (k and v then give only shapes).
template <attention_bias Bias = no_bias>
void attention(tensor_view<const float> q, tensor_view<const float> k, tensor_view<const float> v,
               tensor_view<float> out, const attention_mask& mask = {}, std::optional<float> scale = std::nullopt,
               const Bias& bias = {}, attention_tiles tiles = {}, workspace* ws = nullptr,
               const kv_reader* reader = nullptr) {
  detail::check_attention_shapes(q, k, v, out, mask);
  const std::int64_t B = q.dim(0), Sq = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  const std::int64_t Sk = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  const std::int64_t group = Hq / Hkv;
  const float sc = scale.value_or(1.0f / std::sqrt(static_cast<float>(D)));
  const std::int64_t QB = std::max<std::int64_t>(1, tiles.query_block), KB = std::max<std::int64_t>(1, tiles.key_block);
  const std::int64_t q_blocks = (Sq + QB - 1) / QB;
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  detail::eigen_single_threaded();

  using strided = Eigen::Map<const row_matrix<float>, Eigen::Unaligned, Eigen::OuterStride<>>;
  using scratch_matrix = Eigen::Map<row_matrix<float>>;
  const std::int64_t items = B * Hq * q_blocks;
  const int threads = loop_threads(items, std::min(QB, Sq) * std::max<std::int64_t>(Sk, 1) * (D + Dv) / 8);
  const std::int64_t rows_max = std::min(QB, std::max<std::int64_t>(Sq, 1));
  // per thread: scores [rows, KB], accumulator [rows, Dv], running max and sum [rows] each, and
  // with a reader the key and value tiles [KB, D] and [KB, Dv]
  const std::int64_t tile_floats = reader ? std::min(KB, std::max<std::int64_t>(Sk, 1)) * (D + Dv) : 0;
  const std::int64_t per_thread = rows_max * KB + rows_max * Dv + 2 * rows_max + tile_floats;
  workspace_ref scratch_ws(ws);
  const auto scope = scratch_ws->open();
  float* scratch = scratch_ws->take_raw<float>(static_cast<std::size_t>(threads * per_thread));
  parallel_for_slots(threads, items, [&](std::int64_t item, int slot) {
    const std::int64_t b = item / (Hq * q_blocks), h = (item / q_blocks) % Hq, qb = item % q_blocks;
    const std::int64_t kvh = h / group;
    const std::int64_t q0 = qb * QB, rows = std::min(QB, Sq - q0);
    const std::int64_t n_keys = mask.key_lengths.data() ? mask.key_lengths(b) : Sk;  // end position
    const std::int64_t first_key = mask.key_begin.data() ? mask.key_begin(b) : 0;
    const std::int64_t pos0 = (mask.query_start.data() ? mask.query_start(b) : mask.query_offset) + q0;

    // visible(q, k): causal (k <= q, or k inside the prefix) and within the window (|q - k| < window,
    // unless q or k is a global token). Keys >= n_keys (padding) are never visited.
    const std::int64_t G = mask.global_tokens, w = mask.window;
    auto visible = [&](std::int64_t qp, std::int64_t kp) {
      if (mask.causal && kp > qp && kp >= mask.prefix) return false;
      if (w > 0 && qp >= G && kp >= G && (qp - kp >= w || kp - qp >= w)) return false;
      return true;
    };
    // The block's queries are pos0 .. pos0 + rows - 1; keys outside [k_begin, k_end) are hidden from all.
    std::int64_t k_end = n_keys, k_begin = first_key;
    if (mask.causal) k_end = std::min(k_end, std::max(pos0 + rows, mask.prefix));
    if (w > 0 && G == 0) {
      k_begin = std::max<std::int64_t>(k_begin, pos0 - w + 1);
      if (mask.prefix == 0) k_end = std::min(k_end, pos0 + rows + w - 1);
    }
    // A tile needs per-element masking unless every key in it is visible to every query of the block.
    auto tile_needs_mask = [&](std::int64_t k0, std::int64_t cols) {
      if (!mask.causal && w == 0) return false;
      const bool causal_ok = !mask.causal || k0 + cols - 1 <= pos0 || k0 + cols <= mask.prefix;
      const bool window_ok = w == 0 || (pos0 + rows - 1 - k0 < w && k0 + cols - 1 - pos0 < w);
      return !(causal_ok && window_ok);
    };

    const strided Q(q.data() + b * q.stride(0) + q0 * q.stride(1) + h * q.stride(2), rows, D,
                    Eigen::OuterStride<>(q.stride(1)));
    float* mine = scratch + slot * per_thread;
    scratch_matrix S(mine, rows, KB);                   // scores of one key tile: [rows, key_block]
    scratch_matrix O(mine + rows * KB, rows, Dv);       // running output: [rows, Dv]
    float* m = mine + rows * KB + rows * Dv;            // running max [rows]
    float* l = m + rows;                                // running sum [rows]
    float* k_tile = l + rows;                           // with a reader: keys of one tile [KB, D]
    float* v_tile = k_tile + (reader ? std::min(KB, std::max<std::int64_t>(Sk, 1)) * D : 0);  // [KB, Dv]
    O.setZero();
    std::fill(m, m + rows, neg_inf);
    std::fill(l, l + rows, 0.0f);

    // key tiles by position: at most KB positions, never across the end of a ring
    for (std::int64_t k0 = k_begin, cols = 0; k0 < k_end; k0 += cols) {
      const std::int64_t slot0 = mask.ring > 0 ? k0 % mask.ring : k0;
      cols = std::min(KB, k_end - k0);
      if (mask.ring > 0) cols = std::min(cols, mask.ring - slot0);
      if (reader) {
        reader->read(true, b, kvh, slot0, cols, k_tile);
        reader->read(false, b, kvh, slot0, cols, v_tile);
      }
      const strided K(reader ? k_tile : k.data() + b * k.stride(0) + slot0 * k.stride(1) + kvh * k.stride(2), cols, D,
                      Eigen::OuterStride<>(reader ? D : k.stride(1)));
      const strided V(reader ? v_tile : v.data() + b * v.stride(0) + slot0 * v.stride(1) + kvh * v.stride(2), cols, Dv,
                      Eigen::OuterStride<>(reader ? Dv : v.stride(1)));
      auto St = S.leftCols(cols);
      St.noalias() = Q * K.transpose();  // into the scratch tile (a scaled product would need a temporary)
      St *= sc;
      const bool masked = tile_needs_mask(k0, cols);
      bool any = false;
      for (std::int64_t r = 0; r < rows; ++r) {
        float* s = St.row(r).data();
        const std::int64_t qp = pos0 + r;
        if constexpr (Bias::enabled) bias.add(b, h, qp, k0, cols, s);
        if (masked)
          for (std::int64_t c = 0; c < cols; ++c)
            if (!visible(qp, k0 + c)) s[c] = neg_inf;
        float tile_max = neg_inf;
        for (std::int64_t c = 0; c < cols; ++c) tile_max = std::max(tile_max, s[c]);
        const float m_new = std::max(m[r], tile_max);
        if (m_new == neg_inf) {  // nothing visible yet for this query: no contribution
          std::fill(s, s + cols, 0.0f);
          continue;
        }
        const float alpha = std::exp(m[r] - m_new);  // rescales what was accumulated (0 when m was -inf)
        l[r] = l[r] * alpha + detail::exp_shift_sum(s, cols, m_new);
        m[r] = m_new;
        if (alpha != 1.0f) O.row(r) *= alpha;
        any = true;
      }
      if (any) O.noalias() += St * V;
    }
    // out rows = O / l; a query that saw no key gets zeros
    float* dst = out.data() + b * out.stride(0) + q0 * out.stride(1) + h * out.stride(2);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float lr = l[r];
      const float inv = lr > 0.0f ? 1.0f / lr : 0.0f;
      for (std::int64_t c = 0; c < Dv; ++c) dst[r * out.stride(1) + c] = O(r, c) * inv;
    }
  });
}

}  // namespace tformer::ops
