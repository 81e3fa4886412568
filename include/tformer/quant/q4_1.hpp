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
// the float terms accumulated with fma. Three compiled paths, chosen at compile time: AVX-512 VNNI,
// AVX2 + FMA, and a scalar reference that defines the result. No path writes dequantized weights.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "q4_0.hpp"  // the nibble layout (unpack) and ggml's rounding to a nibble (nibble_of)
#include "q8_activations.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define TFORMER_Q4_1_AVX512VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q4_1_AVX2 1
#endif
#if defined(TFORMER_Q4_1_AVX512VNNI) || defined(TFORMER_Q4_1_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::q4_1_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::for_row_groups;
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

/// @brief One block of 32 floats -> the 20-byte block at blk (ggml's quantize_row_q4_1_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();  // FLT_MAX, -FLT_MAX
  for (std::int64_t j = 0; j < block; ++j) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk, d);
  q8_activations::put_half(blk + 2, min);
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 4);
  for (std::int64_t j = 0; j < block / 2; ++j) {
    // x - min and its product with id are float operations as in ggml; nibble_of adds 0.5
    const std::uint8_t lo = nibble_of((x[j] - min) * id, 0.5), hi = nibble_of((x[j + block / 2] - min) * id, 0.5);
    qs[j] = static_cast<std::uint8_t>(lo | hi << 4);
  }
}

// The activation scratch: q8_activations' m rows (int8, scales, lane sums; see there), then the
// blocks' sums of every row, float sum[m][k / 4], laid out as the scales are: sum[i][8b .. 8b+7] =
// s_b = fl(d_x * sum_t qx_t) for block b (the int sum is exact: the lane sums corr / -128 give it),
// one per int32 lane of the block's products, so the SIMD paths add the offset's terms with one
// vector fma per block and row (and 1/8 of m_w per lane: see dot_avx2). k bytes a row.
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

// Every path below: acts from prepare (m rows of k activations), w -> n packed weight rows of
// row_bytes each, y[i * ldy + j] for i < m, j < n; the loop order of q8_0.

/// @brief The scalar reference, which defines the product: per block the exact int32 sum I =
/// sum_t q_t qx_t (q in [0, 15]), then acc = fma(d_w * d_x, (float)I, acc) and acc = fma(m_w, s,
/// acc), block after block. The SIMD paths compute the same integer sums and float scales and take
/// the same s; they differ only in the order of the float sums.
inline void dot_scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                       std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      float acc[R] = {};
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::byte* blk = wr + b * block_bytes;
        const float dw = scale_of(blk), mw = offset_of(blk);
        std::uint8_t qw[block];
        unpack(nibbles_of(blk), qw);
        for (int r = 0; r < R; ++r) {
          const std::int8_t* qx = activations::q(acts, k, i0 + r) + b * block;
          std::int32_t dot = 0;  // |dot| <= 32 * 15 * 127
          for (std::int64_t t = 0; t < block; ++t) dot += static_cast<std::int32_t>(qw[t]) * qx[t];
          const float dx = activations::scale(acts, k, i0 + r)[b * lanes];
          acc[r] = std::fma(dw * dx, static_cast<float>(dot), acc[r]);
          acc[r] = std::fma(mw, activation_sums::row(acts, m, k, i0 + r)[b * lanes], acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
    }
  });
}

#if defined(TFORMER_Q4_1_AVX2)
/// @brief AVX2 + FMA, one block per register: the nibbles are u8 already, so maddubs takes them
/// against the int8 activations directly (pairs at most 2 * 15 * 127 = 3810, far from int16
/// saturation). The offset's term m_w s of a block is spread over its 8 lanes: (m_w / 8) s each,
/// with m_w / 8 exact (a binary16 over 8 is a normal float), so the lanes add up to m_w s and the
/// paths differ from the scalar one only in the order of the float sums.
inline void dot_avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m256i ones = _mm256_set1_epi16(1);
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    const float* bs[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
      bs[r] = activation_sums::row(acts, m, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m256 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::byte* blk = wr + b * block_bytes;
        const __m256i qw = q4_0_kernels::unpack_avx2(nibbles_of(blk));  // q, u8 in [0, 15]
        const __m256 dw = _mm256_set1_ps(scale_of(blk)), mw8 = _mm256_set1_ps(offset_of(blk) * 0.125f);
        for (int r = 0; r < R; ++r) {
          const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block));
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, x), ones);  // I per lane
          acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes)), _mm256_cvtepi32_ps(p), acc[r]);
          acc[r] = _mm256_fmadd_ps(mw8, _mm256_loadu_ps(bs[r] + b * lanes), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = q8_activations::hsum(acc[r]);
    }
  });
}
#endif

#if defined(TFORMER_Q4_1_AVX512VNNI)
/// @brief AVX-512 VNNI: two blocks per 512-bit register, vpdpbusd with the nibbles as the u8
/// operand as they are (Q4_1's weights are unsigned: no shift, no correction in the integer sum);
/// the offset's terms as in dot_avx2.
inline void dot_avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                           std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    const float* bs[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
      bs[r] = activation_sums::row(acts, m, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
      const __m512 eighth = _mm512_set1_ps(0.125f);
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        const std::byte* blk = wr + b * block_bytes;
        const __m512i qw = q4_0_kernels::unpack_pair_avx512(nibbles_of(blk), nibbles_of(blk + block_bytes));
        const __m512 dw = q8_activations::half_pair(blk, blk + block_bytes);
        const __m512 mw8 = _mm512_mul_ps(q8_activations::half_pair(blk + 2, blk + block_bytes + 2), eighth);  // exact
        for (int r = 0; r < R; ++r) {
          const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qw, _mm512_loadu_si512(qx[r] + b * block));
          acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(sx[r] + b * lanes)), _mm512_cvtepi32_ps(p), acc[r]);
          acc[r] = _mm512_fmadd_ps(mw8, _mm512_loadu_ps(bs[r] + b * lanes), acc[r]);
        }
      }
      if (b < nb) {
        // the last, odd block: 8 lanes in 256 bits (AVX512VL), added into the lower half of acc
        const std::byte* blk = wr + b * block_bytes;
        const __m256i qw = q4_0_kernels::unpack_avx2(nibbles_of(blk));
        const __m256 dw = _mm256_set1_ps(scale_of(blk)), mw8 = _mm256_set1_ps(offset_of(blk) * 0.125f);
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qw,
                                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block)));
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));
          // lanes 0..7: s * p + acc, then + (m_w / 8) s_b; lanes 8..15 keep acc (the undefined upper
          // halves are masked off)
          acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(s), _mm512_castps256_ps512(_mm256_cvtepi32_ps(p)),
                                         acc[r], 0x00FF);
          acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(mw8), _mm512_castps256_ps512(_mm256_loadu_ps(bs[r] + b * lanes)),
                                         acc[r], 0x00FF);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
    }
  });
}
#endif

/// @brief The name of the path fused_product uses in this build.
#if defined(TFORMER_Q4_1_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_Q4_1_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

}  // namespace detail::q4_1_kernels

/// @brief ggml's Q4_1: blocks of 32 4-bit weights with a binary16 scale and offset each (20 bytes,
/// 5 bits per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of
/// q4_1.hpp).
struct q4_1 {
  static constexpr const char* name = "q4_1";
  static constexpr std::int64_t block_size = detail::q4_1_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q4_1_kernels::block_bytes;
  static constexpr double bits_per_weight = 5.0;
  static constexpr std::uint32_t ggml_type = 3;  // GGML_TYPE_Q4_1
  static constexpr std::int64_t max_fused_rows = detail::q4_1_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q4_1_ref); n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::q4_1_kernels::quantize_block(x + b * block_size, blocks + b * block_bytes);
  }
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
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_Q4_1_AVX512VNNI)
    detail::q4_1_kernels::dot_avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_Q4_1_AVX2)
    detail::q4_1_kernels::dot_avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    detail::q4_1_kernels::dot_scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

static_assert(fused_format<q4_1>);

}  // namespace tformer::quant
