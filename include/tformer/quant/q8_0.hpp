// quant::q8_0: ggml's Q8_0 weights, bit-exact with ggml (GGUF type 8). A row is cut into blocks of
// 32 weights; a block is 34 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   int8 qs[32]       weight j = (float)qs[j] * (float)d
//
// Quantization is ggml's quantize_row_q8_0_ref: amax = max |x_j|, d = amax / 127 (float),
// id = d != 0 ? 1 / d : 0 (from the float d, before d is rounded to binary16), qs[j] = roundf(x_j * id)
// (half away from zero), and d is stored rounded to nearest even. 8.5 bits per weight.
//
// The fused product (decode, up to 8 activation rows) quantizes the activations the same way, per
// block of 32, keeping each scale in float, and multiplies int8 by int8 with exact int32 sums per
// block; the blocks' float sums accumulate with fma: y[i, j] = sum_b (d_w[j,b] * d_x[i,b]) * sum_t
// qw[j,b,t] * qx[i,b,t], as ggml's ggml_vec_dot_q8_0_q8_0. Three compiled paths, chosen at compile
// time like the rest of the library: AVX-512 VNNI, AVX2 + FMA, and a scalar reference that defines
// the result. No path writes dequantized weights to memory.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "format.hpp"
#include "q8_activations.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define TFORMER_Q8_0_AVX512VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q8_0_AVX2 1
#endif
#if defined(TFORMER_Q8_0_AVX512VNNI) || defined(TFORMER_Q8_0_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::q8_0_kernels {

// The activations (int8 per block of 32 with float scales, in the scratch layout of
// q8_activations::activations) and the helpers shared with q4_0 / q4_1 live in q8_activations.hpp.
using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::for_row_groups;
using q8_activations::lanes;
using q8_activations::max_rows;
using q8_activations::prepare;
using q8_activations::prepare_block_scalar;
using q8_activations::quantize_block;
using q8_activations::round_half_away;
#if defined(TFORMER_Q8_0_AVX2)
using q8_activations::hsum;
using q8_activations::prepare_block_avx2;
#endif

inline constexpr std::int64_t block_bytes = 34;  // 2-byte fp16 scale + 32 int8

/// @brief The binary16 bits of the scale of the block at p (blocks are unaligned; stored little endian).
inline std::uint16_t scale_bits(const std::byte* p) noexcept { return q8_activations::half_bits(p); }
/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }

/// @brief The 32 int8 weights of the block at p.
inline const std::int8_t* quants_of(const std::byte* p) noexcept { return reinterpret_cast<const std::int8_t*>(p + 2); }

// Every path below: acts from prepare (m rows of k activations), w -> n packed weight rows of
// row_bytes each, y[i * ldy + j] for i < m, j < n. The loops run weight row j outermost and, for
// each block of it, every activation row of the group: a weight block is loaded once (from L1 at
// worst) for up to 8 rows, while the activations (3k bytes a row) stay in L1 / L2.

/// @brief The scalar reference, which defines the product: per block an exact int32 sum of int8 x
/// int8 (every weight byte, -128 included; activations are in [-127, 127]), then
/// acc = fma(d_w * d_x, (float)sum, acc) block after block. The SIMD paths compute the same exact
/// integer sums and the same float scales d_w * d_x, and differ only in the order of the float sums.
inline void dot_scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                       std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      float acc[R] = {};
      for (std::int64_t b = 0; b < nb; ++b) {
        const float dw = scale_of(wr + b * block_bytes);
        const std::int8_t* qw = quants_of(wr + b * block_bytes);
        for (int r = 0; r < R; ++r) {
          const std::int8_t* qx = activations::q(acts, k, i0 + r) + b * block;
          std::int32_t sum = 0;  // |sum| <= 32 * 128 * 127 < 2^24: exact as a float too
          for (std::int64_t t = 0; t < block; ++t) sum += static_cast<std::int32_t>(qw[t]) * qx[t];
          const float dx = activations::scale(acts, k, i0 + r)[b * lanes];
          acc[r] = std::fma(dw * dx, static_cast<float>(sum), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
    }
  });
}

#if defined(TFORMER_Q8_0_AVX2)
/// @brief AVX2 + FMA, one 32-byte block per register, ggml's sign trick: maddubs multiplies u8 by
/// s8, so the weights go in as |w| (u8) and their sign moves onto the activations, sign(x, w).
/// -128: |w| of the byte -128 is 0x80 = 128 read as u8, so -128 weights are exact (ggml's
/// orientation gives the same); the trick would break only for an activation of -128 under a
/// negative weight (sign_epi8 wraps -(-128) to -128), and activations are in [-127, 127].
/// Pairs in maddubs stay below int16 saturation: 2 * 128 * 127 = 32512 < 32767.
inline void dot_avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m256i ones = _mm256_set1_epi16(1);
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m256 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::byte* blk = wr + b * block_bytes;
        const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk)));
        const __m256i aw = _mm256_abs_epi8(qw);  // |w| as u8 (-128 -> 128)
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block));
          const __m256i sxw = _mm256_sign_epi8(x, qw);  // x * sign(w) (0 where w = 0)
          // 32 products -> 16 int16 pair sums -> 8 int32 lanes of 4 products each (exact)
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sxw), ones);
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = hsum(acc[r]);
    }
  });
}
#endif

#if defined(TFORMER_Q8_0_AVX512VNNI)
/// @brief [d_a x 8, d_b x 8]: the scales of two blocks, one per int32 lane of their products.
inline __m512 scale_pair(const std::byte* a, const std::byte* b) noexcept { return q8_activations::half_pair(a, b); }

/// @brief AVX-512 VNNI: two blocks per 512-bit register, vpdpbusd (u8 x s8, 4 products summed per
/// int32 lane, no saturation) with the +128 shift on the weights rather than the sign trick:
///   sum_t (w_t + 128) x_t - 128 sum_t x_t = sum_t w_t x_t,
/// where w + 128 is w ^ 0x80 read as u8, formed once per weight block for all the activation rows,
/// and -128 * sum x comes per lane from the scratch (corr) as dpbusd's starting accumulator. Why:
/// AVX-512 has no vpsignb, so the sign trick would cost a mask and a masked subtract per activation
/// row and block, while the shift costs one xor per weight block and nothing per row (the
/// correction is a load); and it is exact for every int8 byte on either side, -128 included.
/// The usual form shifts the activations and subtracts 128 * the weights' sums, precomputed at
/// packing; ggml's blocks carry no such sums, so here the weights are shifted and the sums are
/// the activations', made once in prepare.
/// A row with an odd number of blocks ends with one block in the lower half of a register.
inline void dot_avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                           std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    const std::int32_t* cx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
      cx[r] = activations::corr(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        // blocks b, b + 1: 64 weights (two unaligned 32-byte loads), shifted to u8
        const std::byte* blk = wr + b * block_bytes;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk)));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk + block_bytes)));
        const __m512i wu = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
        const __m512 dw = scale_pair(blk, blk + block_bytes);
        for (int r = 0; r < R; ++r) {
          // 16 lanes of 4 exact products each: corr + sum (w + 128) x = sum w x
          __m512i p = _mm512_loadu_si512(cx[r] + b * lanes);
          p = _mm512_dpbusd_epi32(p, wu, _mm512_loadu_si512(qx[r] + b * block));
          const __m512 s = _mm512_mul_ps(dw, _mm512_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc[r]);
        }
      }
      if (b < nb) {
        // the last, odd block: 8 lanes in 256 bits (AVX512VL), added into the lower half of acc
        const std::byte* blk = wr + b * block_bytes;
        const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk))),
                                            _mm512_castsi512_si256(flip));
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cx[r] + b * lanes));
          p = _mm256_dpbusd_epi32(p, wu, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block)));
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));
          // lanes 0..7: s * p + acc; lanes 8..15 keep acc (the undefined upper halves are masked off)
          acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(s), _mm512_castps256_ps512(_mm256_cvtepi32_ps(p)),
                                         acc[r], 0x00FF);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
    }
  });
}
#endif

/// @brief The name of the path fused_product uses in this build.
#if defined(TFORMER_Q8_0_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_Q8_0_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

}  // namespace detail::q8_0_kernels

/// @brief ggml's Q8_0: blocks of 32 int8 weights with one binary16 scale each (34 bytes, 8.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q8_0.hpp).
struct q8_0 {
  static constexpr const char* name = "q8_0";
  static constexpr std::uint32_t ggml_type = 8;  // GGML_TYPE_Q8_0
  static constexpr std::int64_t block_size = detail::q8_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q8_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 8.5;
  static constexpr std::int64_t max_fused_rows = detail::q8_0_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q8_0_ref); n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      std::byte* blk = blocks + b * block_bytes;
      std::int8_t q[block_size];
      const float d = detail::q8_0_kernels::quantize_block(x + b * block_size, q);
      detail::q8_activations::put_half(blk, d);  // round to nearest even (ggml's GGML_FP32_TO_FP16)
      std::memcpy(blk + 2, q, sizeof q);
    }
  }
  /// @brief n / 32 blocks -> y [n]: y[j] = (float)qs[j] * d, a float multiply (ggml's dequantize_row_q8_0).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q8_0_kernels::scale_of(blk);
      const std::int8_t* q = detail::q8_0_kernels::quants_of(blk);
      for (std::int64_t j = 0; j < block_size; ++j) y[b * block_size + j] = static_cast<float>(q[j]) * d;
    }
  }

  /// @brief Scratch bytes for m rows of k activations (3k a row, rounded up to 64; layout in
  /// detail::q8_0_kernels::activations).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return detail::q8_activations::bytes(m, k);
  }
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32, float scale amax / 127 per
  /// block (ggml's rounding), and the per-lane sums the VNNI path needs. k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::q8_0_kernels::prepare(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t qw[j,b,t] qx[i,b,t] for i < m, j < n; w points
  /// at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_Q8_0_AVX512VNNI)
    detail::q8_0_kernels::dot_avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_Q8_0_AVX2)
    detail::q8_0_kernels::dot_avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    detail::q8_0_kernels::dot_scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

static_assert(fused_format<q8_0>);

}  // namespace tformer::quant
