// quant::int4_group<G>: asymmetric 4-bit weights in groups of G = 32, 64 or 128 along a row, each
// group with a binary16 scale and a binary16 min (the layout of AWQ / GPTQ-style group-wise int4
// with a float min instead of an integer zero point). A group is 4 + G / 2 bytes, unaligned:
//
//   offset 0   binary16 d         the scale, little endian
//   offset 2   binary16 m         the group's min, little endian
//   offset 4   uint8 qs[G / 2]    q_j = qs[j] & 15, q_{j + G/2} = qs[j] >> 4   (j < G / 2)
//
//   weight t = (float)q_t * (float)d + (float)m, q_t in [0, 15]
//
// (q * d is exact in float, 4 by 11 significant bits, so the one rounding is the sum's, fused or
// not.) The quantizer is ggml's Q4_1 quantizer (quantize_row_q4_1_ref) applied to groups of G:
// min and max of the group (min starts at FLT_MAX, max at -FLT_MAX), d = (max - min) / 15 in float,
// id = d != 0 ? 1 / d : 0, q_j = MIN(15, (int8_t)((x_j - min) * id + 0.5f)) with ISO C evaluation
// ((x_j - min) * id rounded to float, + 0.5f rounded to float, truncated: q4_0_kernels::nibble_of,
// which no compiler setting can contract), d and m = min stored rounded to nearest even. So
// int4_group<32>'s bytes are exactly ggml's Q4_1 blocks, and every G is bit-exact with gguf-py's
// Q4_1 numpy quantizer run on blocks of G (tools/make_onnx_quant_fixtures.py writes those bytes).
// An all-equal group (all-zero included) gets d = 0, q = 0 and m = the value (rounded to binary16).
// Note the quantizer's known bias, kept for exactness with the reference: q is computed from the
// float min, the weights from its binary16 rounding. Bits per weight: 5 (G 32), 4.5 (64), 4.25 (128).
//
// float_product (decode, up to 8 activation rows; AVX-512, AVX2 + FMA and the scalar reference,
// chosen at compile time): a group's nibbles are widened and dequantized in registers, w_t =
// fma(q_t, d, m) (equal to dequantize_row's weights), then acc = fma(w_t, x_t, acc). The paths
// differ only in the order of the float sums. No path writes dequantized weights to memory.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "int8_channel.hpp"  // channel_kernels::for_row_groups, the path macros
#include "q4_0.hpp"          // q4_0_kernels::nibble_of (ggml's rounding to a nibble)
#include "q8_activations.hpp"  // binary16 fields (half_at, put_half)

namespace tformer::quant {

namespace detail::int4_group_kernels {

using channel_kernels::for_row_groups;

/// @brief The fields and kernels of groups of G weights.
template <std::int64_t G>
struct groups {
  static constexpr std::int64_t bytes = 4 + G / 2;

  /// @brief x [G] -> the group at blk (ggml's Q4_1 quantizer on G values).
  static void quantize(const float* x, std::byte* blk) noexcept {
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
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
      // x - min and its product with id are float operations; nibble_of adds 0.5 and truncates
      const std::uint8_t lo = q4_0_kernels::nibble_of((x[j] - min) * id, 0.5);
      const std::uint8_t hi = q4_0_kernels::nibble_of((x[j + G / 2] - min) * id, 0.5);
      qs[j] = static_cast<std::uint8_t>(lo | hi << 4);
    }
  }

  /// @brief The group at blk -> w [G]: w_t = fma(q_t, d, m) (= q_t * d + m, q_t * d exact).
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk), m = q8_activations::half_at(blk + 2);
    const auto* qs = reinterpret_cast<const std::uint8_t*>(blk + 4);
    for (std::int64_t j = 0; j < G / 2; ++j) {
      w[j] = std::fma(static_cast<float>(qs[j] & 15), d, m);
      w[j + G / 2] = std::fma(static_cast<float>(qs[j] >> 4), d, m);
    }
  }

  /// @brief The reference product: each group dequantized, acc = fma(w_t, x_t, acc), t in order.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % G == 0);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t g = 0; g < k / G; ++g) {
          float wd[G];
          dequantize(row + g * bytes, wd);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + (i0 + r) * ldx + g * G;
            for (std::int64_t t = 0; t < G; ++t) acc[r] = std::fma(wd[t], xr[t], acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

#if defined(TFORMER_CHANNEL_DOT_AVX2)
  /// @brief AVX2 + FMA: per 8 bytes of nibbles, the 8 low (weights 8h ..) and 8 high (G/2 + 8h ..)
  /// widened to float and dequantized with one fma each.
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % G == 0);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        __m256 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
        for (std::int64_t g = 0; g < k / G; ++g) {
          const std::byte* blk = row + g * bytes;
          const __m256 d = _mm256_set1_ps(q8_activations::half_at(blk)), mn = _mm256_set1_ps(q8_activations::half_at(blk + 2));
          for (std::int64_t h = 0; h < G / 16; ++h) {
            const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 4 + 8 * h));
            const __m256 lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(b, low4))), d, mn);
            const __m256 hi =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), low4))), d, mn);
            for (int r = 0; r < R; ++r) {
              const float* xr = x + (i0 + r) * ldx + g * G;
              acc[r] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(xr + 8 * h), acc[r]);
              acc[r] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(xr + G / 2 + 8 * h), acc[r]);
            }
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = channel_kernels::hsum(acc[r]);
      }
    });
  }
#endif

#if defined(TFORMER_CHANNEL_DOT_AVX512F)
  /// @brief AVX-512: as avx2, 16 low and 16 high nibbles per 16 bytes.
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % G == 0);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        for (std::int64_t g = 0; g < k / G; ++g) {
          const std::byte* blk = row + g * bytes;
          const __m512 d = _mm512_set1_ps(q8_activations::half_at(blk)), mn = _mm512_set1_ps(q8_activations::half_at(blk + 2));
          for (std::int64_t h = 0; h < G / 32; ++h) {
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4 + 16 * h));
            const __m512 lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(b, low4))), d, mn);
            const __m512 hi =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), low4))), d, mn);
            for (int r = 0; r < R; ++r) {
              const float* xr = x + (i0 + r) * ldx + g * G;
              acc[r] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xr + 16 * h), acc[r]);
              acc[r] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xr + G / 2 + 16 * h), acc[r]);
            }
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
      }
    });
  }
#endif

  /// @brief The best path compiled in (channel_kernels::best_float_path names it).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_CHANNEL_DOT_AVX512F)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_CHANNEL_DOT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The format's name for group size G.
template <std::int64_t G>
inline constexpr const char* name_of = G == 32 ? "int4_g32" : G == 64 ? "int4_g64" : "int4_g128";

}  // namespace detail::int4_group_kernels

/// @brief Group-wise asymmetric int4: groups of G weights with a binary16 scale and min each (see
/// the top of int4_group.hpp). @tparam G the group size: 32, 64 or 128.
template <std::int64_t G>
  requires(G == 32 || G == 64 || G == 128)
struct int4_group {
  using kernels = detail::int4_group_kernels::groups<G>;
  static constexpr const char* name = detail::int4_group_kernels::name_of<G>;
  static constexpr std::int64_t group_size = G;
  static constexpr std::int64_t block_size = G;
  static constexpr std::int64_t block_bytes = kernels::bytes;
  static constexpr double bits_per_weight = 8.0 * static_cast<double>(block_bytes) / static_cast<double>(G);

  /// @brief x [n] -> n / G groups; n % G == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % G == 0);
    for (std::int64_t g = 0; g < n / G; ++g) kernels::quantize(x + g * G, blocks + g * block_bytes);
  }
  /// @brief n / G groups -> y [n]: y_t = q_t * d + m.
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % G == 0);
    for (std::int64_t g = 0; g < n / G; ++g) kernels::dequantize(blocks + g * block_bytes, y + g * G);
  }
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t], weights dequantized in registers.
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    kernels::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

static_assert(float_product_format<int4_group<32>> && float_product_format<int4_group<128>>);

}  // namespace tformer::quant
