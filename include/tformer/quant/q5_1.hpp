// quant::q5_1: ggml's Q5_1 weights, bit-exact with ggml (GGML type 7). A row is cut into blocks of
// 32 weights; a block is 24 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   ggml_half m       IEEE binary16 offset (the block's min), little endian
//   offset 4   uint8 qh[4]       the fifth bits: bit t of the little-endian uint32 qh is bit 4 of q_t
//   offset 8   uint8 qs[16]      the low nibbles: q_j & 15 = qs[j] & 15, q_{j+16} & 15 = qs[j] >> 4
//
//   weight t = (float)q_t * (float)d + (float)m, q_t in [0, 31]
//
// Dequantization is ggml's dequantize_row_q5_1, q*d + m in float. q * d is exact in float (5 by 11
// significant bits), so the one rounding is that of the sum whether or not a compiler contracts it
// into an fma: the result does not depend on -ffp-contract, here or in ggml.
// Quantization is ggml's quantize_row_q5_1_ref: min and max of the block, d = (max - min) / 31
// (float), id = d != 0 ? 1 / d : 0 (from the float d), q_j = (uint8_t)((x_j - min) * id + 0.5f),
// d and m = min stored rounded to nearest even. 6 bits per weight. As for Q4_0 and Q5_0,
// "bit-exact" means ISO C evaluation: (x_j - min) * id rounded to float, + 0.5f rounded to float,
// truncated (q5_0's quant_of, which no compiler setting can contract).
//
// The fused product (decode, up to 8 activation rows) quantizes the activations as ggml's Q8_1,
// which Q5_1 pairs with, exactly as q4_1 does (its scratch and prepare): per block with I = sum_t
// q_t qx_t an exact int32 sum, y[i, j] = sum_b (d_w d_x) I + m_w s, s = d_x * sum_t qx_t, the float
// terms accumulated with fma. Its loops are ggml_dot.hpp's (AVX-512 VNNI, AVX2 + FMA, and the
// scalar reference that defines the result); the block's part of them is q5_1_kernels::blocks. No
// path writes dequantized weights.
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
#include "q4_1.hpp"  // Q8_1 activations (activation_sums, prepare)
#include "q5_0.hpp"  // the 5-bit layout (unpack5, pack5) and ggml's rounding (quant_of)
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::q5_1_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;
using q4_1_kernels::activation_sums;

inline constexpr std::int64_t block_bytes = 24;  // fp16 scale + fp16 min + 4 bytes of fifth bits + 16 of nibbles

/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }
/// @brief The offset m of the block at p, as float (exact).
inline float offset_of(const std::byte* p) noexcept { return q8_activations::half_at(p + 2); }

/// @brief One block of 32 floats -> the 24-byte block at blk (ggml's quantize_row_q5_1_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();  // FLT_MAX, -FLT_MAX
  for (std::int64_t j = 0; j < block; ++j) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const float d = (max - min) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk, d);
  q8_activations::put_half(blk + 2, min);
  std::uint8_t q[block];
  // x - min and its product with id are float operations as in ggml; quant_of adds 0.5
  for (std::int64_t j = 0; j < block; ++j) q[j] = q5_0_kernels::quant_of((x[j] - min) * id, 0.5);
  q5_0_kernels::pack5(q, blk + 4);
}

/// @brief Q5_1's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// q in [0, 31], unsigned, the u8 operand of maddubs and vpdpbusd as they are (maddubs pairs at
/// most 2 * 31 * 127 = 7874, far from int16 saturation), and the offset m_w (at byte 2) adds
/// m_w * s per block, s from q4_1's activation_sums.
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = false;
  static constexpr bool has_offset = true;
  static constexpr std::int64_t offset_at = 2;  // where offset_of reads m_w
  using int_type = std::uint8_t;
  static constexpr std::int32_t zero = 0;
  TFORMER_GGML_DOT_INLINE static const std::uint8_t* ints(const std::byte* p, std::uint8_t (&buf)[block]) noexcept {
    q5_0_kernels::unpack5(reinterpret_cast<const std::uint8_t*>(p + 8), q5_0_kernels::high_bits_at(p + 4), buf);
    return buf;
  }
  TFORMER_GGML_DOT_INLINE static const float* sums(const std::byte* acts, std::int64_t m, std::int64_t k,
                                                   std::int64_t i) noexcept {
    return q4_1_kernels::activation_sums::row(acts, m, k, i);
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return q5_0_kernels::unpack5_avx2(p + 4);  // q, u8 in [0, 31]
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept { return q5_0_kernels::unpack5_avx2(a + 4); }
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    return _mm512_inserti64x4(_mm512_castsi256_si512(vnni_one(a)), vnni_one(b), 1);
  }
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

}  // namespace detail::q5_1_kernels

/// @brief ggml's Q5_1: blocks of 32 5-bit weights with a binary16 scale and offset each (24 bytes,
/// 6 bits per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of
/// q5_1.hpp).
struct q5_1 : detail::q5_1_kernels::format_base {
  static constexpr const char* name = "q5_1";
  static constexpr std::int64_t block_size = detail::q5_1_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q5_1_kernels::block_bytes;
  static constexpr double bits_per_weight = 6.0;
  static constexpr std::uint32_t ggml_type = 7;  // GGML_TYPE_Q5_1
  static constexpr std::int64_t max_fused_rows = detail::q5_1_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q5_1_ref); n % 32 == 0.
  using detail::q5_1_kernels::format_base::quantize_row;
  /// @brief n / 32 blocks -> y [n]: y[t] = (float)q_t * d + m in float (ggml's dequantize_row_q5_1;
  /// the product is exact, so fused or not the sum is rounded once).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q5_1_kernels::scale_of(blk), m = detail::q5_1_kernels::offset_of(blk);
      std::uint8_t buf[block_size];
      const std::uint8_t* q = detail::q5_1_kernels::blocks::ints(blk, buf);
      float* out = y + b * block_size;
      for (std::int64_t t = 0; t < block_size; ++t) out[t] = static_cast<float>(q[t]) * d + m;
    }
  }
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level q in
  /// [0, 31] of its block's d and m nearest x; returns (float)q * d + m.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    std::byte* blk = row + i / block_size * block_bytes;
    const float d = detail::q5_1_kernels::scale_of(blk), m = detail::q5_1_kernels::offset_of(blk);
    const int q = detail::requantize::nearest_level(x, d, m, 0, 31);
    detail::requantize::set_code5(blk + 4, i % block_size, q);
    return static_cast<float>(q) * d + m;
  }

  /// @brief Scratch bytes for m rows of k activations (as q4_1: q8_activations, then the block sums).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return detail::q4_1_kernels::activation_sums::bytes(m, k);
  }
  /// @brief x [m, k] (row stride ldx) -> acts: as ggml's Q8_1 (q4_1's prepare). k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::q4_1_kernels::prepare(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t qw[j,b,t] qx[i,b,t] + m_w[j,b] s[i,b], s[i,b] =
  /// d_x[i,b] sum_t qx[i,b,t], for i < m, j < n. Uses the best path compiled in (best_path).
  using detail::q5_1_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory). Uses best_float_path.
  using detail::q5_1_kernels::format_base::float_product;
};

static_assert(fused_format<q5_1>);

}  // namespace tformer::quant
