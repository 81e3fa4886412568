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

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "requantize.hpp"
#include "ggml_dot.hpp"      // float_loops
#include "int8_channel.hpp"  // the path macros
#include "q4_1.hpp"          // q4_1_kernels::quantize_group (ggml's Q4_1 quantizer)
#include "q8_activations.hpp"  // binary16 fields (half_at, put_half)

namespace tformer::quant {

namespace detail::int4_group_kernels {

/// @brief The fields of groups of G weights, and their decoding for ggml_dot::float_loops.
template <std::int64_t G>
struct group_blocks {
  static constexpr std::int64_t bytes = 4 + G / 2;

  /// @brief x [G] -> the group at blk (ggml's Q4_1 quantizer on G values).
  static void quantize(const float* x, std::byte* blk) noexcept { q4_1_kernels::quantize_group<G>(x, blk); }

  /// @brief The group at blk -> w [G]: w_t = fma(q_t, d, m) (= q_t * d + m, q_t * d exact).
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk), m = q8_activations::half_at(blk + 2);
    const auto* qs = reinterpret_cast<const std::uint8_t*>(blk + 4);
    for (std::int64_t j = 0; j < G / 2; ++j) {
      w[j] = std::fma(static_cast<float>(qs[j] & 15), d, m);
      w[j + G / 2] = std::fma(static_cast<float>(qs[j] >> 4), d, m);
    }
  }

#if defined(TFORMER_CHANNEL_DOT_AVX2)
  /// @brief Per 8 bytes of nibbles, the 8 low (weights 8h ..) and 8 high (G/2 + 8h ..) widened to
  /// float and dequantized with one fma each: fn(o, v) for weights o .. o + 7.
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m256 d = _mm256_set1_ps(q8_activations::half_at(blk)), mn = _mm256_set1_ps(q8_activations::half_at(blk + 2));
    for (int h = 0; h < G / 16; ++h) {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 4 + 8 * h));
      fn(8 * h, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(b, low4))), d, mn));
      fn(static_cast<int>(G / 2) + 8 * h,
         _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), low4))), d, mn));
    }
  }
#endif

#if defined(TFORMER_CHANNEL_DOT_AVX512F)
  /// @brief As decode_avx2, 16 low and 16 high nibbles per 16 bytes.
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m512 d = _mm512_set1_ps(q8_activations::half_at(blk)), mn = _mm512_set1_ps(q8_activations::half_at(blk + 2));
    for (int h = 0; h < G / 32; ++h) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4 + 16 * h));
      fn(16 * h, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(b, low4))), d, mn));
      fn(static_cast<int>(G / 2) + 16 * h,
         _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), low4))), d, mn));
    }
  }
#endif
};

/// @brief The fields and kernels of groups of G weights: group_blocks' and the float product's
/// paths (ggml_dot::float_loops: scalar, the reference, avx2, avx512 where compiled, and best,
/// named by channel_kernels::best_float_path).
template <std::int64_t G>
struct groups : group_blocks<G>, ggml_dot::float_loops<G, group_blocks<G>> {};

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
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level q in
  /// [0, 15] of its group's d and m nearest x; returns q * d + m.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    return detail::requantize::offset_nibble<G>(row + i / G * block_bytes, i % G, x);
  }
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t], weights dequantized in registers.
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    kernels::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

static_assert(float_product_format<int4_group<32>> && float_product_format<int4_group<128>>);

}  // namespace tformer::quant
