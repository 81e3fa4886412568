// quant::q4_1: ggml's Q4_1 weights, bit-exact with ggml (GGML type 3). A row is cut into blocks of
// 32 weights; a block is 20 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   ggml_half m       IEEE binary16 offset (the block's min), little endian
//   offset 4   uint8 qs[16]      weight j (j < 16) = (float)(qs[j] & 15) * (float)d + (float)m,
//                                weight j + 16     = (float)(qs[j] >> 4) * (float)d + (float)m
//
// Dequantization is ggml's dequantize_row_q4_1, x0*d + m in float. q * d is exact in float (4 by
// 11 significant bits), so the one rounding is that of the sum whether or not a compiler contracts
// it into an fma: the result does not depend on -ffp-contract, here or in ggml.
// Quantization is ggml's quantize_row_q4_1_ref: min and max of the block, d = (max - min) / 15
// (float), id = d != 0 ? 1 / d : 0 (from the float d), q_j = MIN(15, (int8_t)((x_j - min) * id +
// 0.5f)), d and m = min stored rounded to nearest even. 5 bits per weight. As for Q4_0, "bit-exact"
// means ISO C evaluation: (x_j - min) * id rounded to float, + 0.5f rounded to float, truncated
// (the rounding to a nibble is q4_0's nibble_of, which no compiler setting can contract).
//
// The fused product (decode, up to 8 activation rows) quantizes the activations as ggml's Q8_1,
// which Q4_1 pairs with: per block of 32, int8 with a float scale d_x exactly as q8_0 does, plus the
// block's s = d_x * sum_t qx_t (ggml's y.s, kept in float here as d_x is), which stands for sum_t x_t
// in the offset's term. Per block, with I = sum_t q_t qx_t an exact int32 sum:
//   y[i, j] = sum_b (d_w d_x) I + m_w s,
// the float terms accumulated with fma. Its loops are ggml_dot.hpp's, as for q8_0 and q4_0 (three
// compiled paths, chosen at compile time: AVX-512 VNNI, AVX2 + FMA, and a scalar reference that
// defines the result); the block's part of them is q4_1_kernels::blocks. No path writes dequantized
// weights.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "requantize.hpp"
#include "ggml_block_format.hpp"
#include "ggml_dot.hpp"
#include "q4_0.hpp"  // the nibble layout (unpack) and ggml's rounding to a nibble (nibble_of)
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::q4_1_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;
using q4_0_kernels::nibble_of;
using q4_0_kernels::unpack;

inline constexpr std::int64_t block_bytes = 20;  // fp16 scale + fp16 min + 16 bytes of nibbles

/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }
/// @brief The offset m of the block at p, as float (exact).
inline float offset_of(const std::byte* p) noexcept { return q8_activations::half_at(p + 2); }
/// @brief The 16 bytes of nibbles of the block at p.
inline const std::uint8_t* nibbles_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 4); }

/// @brief G floats -> the 4 + G / 2 bytes at blk: ggml's quantize_row_q4_1_ref on a block of G
/// (binary16 d = (max - min) / 15, binary16 min, then the nibbles; int4_group's groups too).
template <std::int64_t G>
inline void quantize_group(const float* x, std::byte* blk) noexcept {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();  // FLT_MAX, -FLT_MAX
  for (std::int64_t j = 0; j < G; ++j) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk, d);
  q8_activations::put_half(blk + 2, min);
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 4);
  for (std::int64_t j = 0; j < G / 2; ++j) {
    // x - min and its product with id are float operations as in ggml; nibble_of adds 0.5
    const std::uint8_t lo = nibble_of((x[j] - min) * id, 0.5), hi = nibble_of((x[j + G / 2] - min) * id, 0.5);
    qs[j] = static_cast<std::uint8_t>(lo | hi << 4);
  }
}
/// @brief One block of 32 floats -> the 20-byte block at blk (ggml's quantize_row_q4_1_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept { quantize_group<block>(x, blk); }

// The activation scratch: q8_activations' m rows (int8, scales, lane sums; see there), then the
// blocks' sums of every row, float sum[m][k / 4], laid out as the scales are: sum[i][8b .. 8b+7] =
// s_b = fl(d_x * sum_t qx_t) for block b (the int sum is exact: the lane sums corr / -128 give it),
// one per int32 lane of the block's products, so the SIMD paths add the offset's terms with one
// vector fma per block and row (and 1/8 of m_w per lane: see ggml_dot's dot::avx2). k bytes a row.
struct activation_sums {
  static std::size_t bytes(std::int64_t m, std::int64_t k) noexcept {
    return q8_activations::bytes(m, k) + static_cast<std::size_t>(m * k);
  }
  static const float* row(const std::byte* acts, std::int64_t m, std::int64_t k, std::int64_t i) noexcept {
    return reinterpret_cast<const float*>(acts + q8_activations::bytes(m, k) + i * k);
  }
};

/// @brief x [m, k] (row stride ldx) -> acts: q8_activations::prepare, then the block sums.
inline void prepare(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
  q8_activations::prepare(x, ldx, m, k, acts);
  for (std::int64_t i = 0; i < m; ++i) {
    auto* sums = reinterpret_cast<float*>(acts + q8_activations::bytes(m, k) + i * k);
    for (std::int64_t b = 0; b < k / block; ++b) {
      const std::int32_t* corr = activations::corr(acts, k, i) + b * lanes;
      std::int32_t c = 0;  // -128 sum_t qx_t
      for (std::int64_t l = 0; l < lanes; ++l) c += corr[l];
      const float s = activations::scale(acts, k, i)[b * lanes] * static_cast<float>(c / -128);  // |sum| <= 32 * 127
      for (std::int64_t l = 0; l < lanes; ++l) sums[b * lanes + l] = s;
    }
  }
}

/// @brief Q4_1's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// the nibbles q in [0, 15], unsigned, so they are the u8 operand of maddubs and vpdpbusd as they
/// are (no sign trick, no shift, no correction in the integer sum; maddubs pairs at most
/// 2 * 15 * 127 = 3810, far from int16 saturation), and the offset m_w (at byte 2) adds m_w * s
/// per block, s from activation_sums.
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = false;
  static constexpr bool has_offset = true;
  static constexpr std::int64_t offset_at = 2;  // where offset_of reads m_w
  using int_type = std::uint8_t;
  static constexpr std::int32_t zero = 0;
  TFORMER_GGML_DOT_INLINE static const std::uint8_t* ints(const std::byte* p, std::uint8_t (&buf)[block]) noexcept {
    unpack(nibbles_of(p), buf);
    return buf;
  }
  TFORMER_GGML_DOT_INLINE static const float* sums(const std::byte* acts, std::int64_t m, std::int64_t k,
                                                   std::int64_t i) noexcept {
    return activation_sums::row(acts, m, k, i);
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return q4_0_kernels::unpack_avx2(nibbles_of(p));  // q, u8 in [0, 15]
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    return q4_0_kernels::unpack_pair_avx512(nibbles_of(a), nibbles_of(b));
  }
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept { return ints_avx2(a); }
#endif
};

/// @brief The fused product's paths: dot::scalar (the reference), dot::avx2, dot::avx512vnni
/// where compiled, dot::best (the one fused_product uses, named by best_path).
using dot = ggml_dot::dot<blocks>;
/// @brief The float-activation product's paths: float_dot::scalar (the reference), ::avx2,
/// ::avx512 where compiled, ::best (the one float_product uses, named by best_float_path).
using float_dot = ggml_dot::float_dot<blocks>;
using ggml_dot::best_float_path;
using ggml_dot::best_path;

/// @brief The format struct's shared members (ggml_block_format.hpp).
using format_base = ggml_block_format<block_bytes, &quantize_block, dot, float_dot>;

}  // namespace detail::q4_1_kernels

/// @brief ggml's Q4_1: blocks of 32 4-bit weights with a binary16 scale and offset each (20 bytes,
/// 5 bits per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of
/// q4_1.hpp).
struct q4_1 : detail::q4_1_kernels::format_base {
  static constexpr const char* name = "q4_1";
  static constexpr std::int64_t block_size = detail::q4_1_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q4_1_kernels::block_bytes;
  static constexpr double bits_per_weight = 5.0;
  static constexpr std::uint32_t ggml_type = 3;  // GGML_TYPE_Q4_1
  static constexpr std::int64_t max_fused_rows = detail::q4_1_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q4_1_ref); n % 32 == 0.
  using detail::q4_1_kernels::format_base::quantize_row;
  /// @brief n / 32 blocks -> y [n]: y[j] = (float)q_j * d + m in float (ggml's dequantize_row_q4_1;
  /// the product is exact, so fused or not the sum is rounded once).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q4_1_kernels::scale_of(blk), m = detail::q4_1_kernels::offset_of(blk);
      const std::uint8_t* qs = detail::q4_1_kernels::nibbles_of(blk);
      float* out = y + b * block_size;
      for (std::int64_t j = 0; j < block_size / 2; ++j) {
        out[j] = static_cast<float>(qs[j] & 15) * d + m;
        out[j + block_size / 2] = static_cast<float>(qs[j] >> 4) * d + m;
      }
    }
  }
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level q in
  /// [0, 15] of its block's d and m nearest x; returns (float)q * d + m.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    return detail::requantize::offset_nibble<block_size>(row + i / block_size * block_bytes, i % block_size, x);
  }

  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations: 3k a row,
  /// rounded up to 64; then k more a row for the block sums: detail::q4_1_kernels::activation_sums).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return detail::q4_1_kernels::activation_sums::bytes(m, k);
  }
  /// @brief x [m, k] (row stride ldx) -> acts: as ggml's Q8_1, int8 per block of 32 (as q8_0),
  /// float scales d_x, and the blocks' d_x * sum qx. k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::q4_1_kernels::prepare(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t qw[j,b,t] qx[i,b,t] + m_w[j,b] s[i,b], s[i,b] =
  /// d_x[i,b] sum_t qx[i,b,t], for i < m, j < n; w points at n packed rows of row_bytes each. Uses
  /// the best path compiled in (best_path).
  using detail::q4_1_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// x [m, k] and the weights dequantized in registers (never written to memory); w points at n
  /// packed rows of row_bytes each. ops::linear's product for up to 8 activation rows. Uses the
  /// best path compiled in (best_float_path).
  using detail::q4_1_kernels::format_base::float_product;
};

static_assert(fused_format<q4_1>);

}  // namespace tformer::quant
