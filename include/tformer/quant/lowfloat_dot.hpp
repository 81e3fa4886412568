// The float-activation product of the low-float weight formats (fp8_e4m3, fp8_e5m2, mxfp4, nvfp4),
// written once: y[i, j] = sum_t x[i, t] w[j, t] with w the weights exactly as the format's
// dequantize_row makes them, decoded block by block in registers and never written to memory, for
// up to 8 activation rows at a time (ggml_dot's row groups). What differs per format is a block
// policy (lowfloat_block below): how a block's weights become floats. Three compiled paths, chosen at
// compile time like the rest of the library: AVX-512, AVX2 + FMA + F16C, and a scalar reference that
// defines the result; the paths compute the same weights and products and differ only in the order
// of the float sums. Internal: include a format header (fp8.hpp, mxfp4.hpp, nvfp4.hpp).
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "ggml_dot.hpp"  // for_row_groups, hsum, the row-group size
#include "lowfloat.hpp"

namespace tformer::quant::detail::lowfloat_dot {

/// @brief Weights decoded per chunk: 4 AVX2 or 2 AVX-512 registers.
inline constexpr std::int64_t chunk = 32;

/// @brief A block of a low-float format, as the paths see it:
/// - block, bytes: weights per block (a multiple of chunk) and bytes per block (unaligned in memory)
/// - dequantize(blk, w): the block's weights w [block] as dequantize_row makes them (the reference)
/// - avx2(blk, c, w) / avx512(blk, c, w): weights chunk * c .. chunk * (c + 1) - 1 of the block, the
///   same floats, in 4 (8 lanes) or 2 (16 lanes) registers, where compiled
template <class B>
concept lowfloat_block = requires(const std::byte* p, float* w) {
  { B::block } -> std::convertible_to<std::int64_t>;
  { B::bytes } -> std::convertible_to<std::int64_t>;
  B::dequantize(p, w);
} && B::block % chunk == 0;

/// @brief The product over blocks B: x [m, k] floats (row stride ldx), k % B::block == 0; w -> n
/// packed weight rows of row_bytes each; y[i * ldy + j] for i < m, j < n.
template <lowfloat_block B>
struct float_dot {
  /// @brief The reference: each block's weights dequantized, then acc = fma(w_t, x_t, acc), t in
  /// order, block after block.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % B::block == 0);
    const std::int64_t nb = k / B::block;
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          float wd[B::block];  // the block's weights: [block]
          B::dequantize(wr + b * B::bytes, wd);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + (i0 + r) * ldx + b * B::block;
            for (std::int64_t t = 0; t < B::block; ++t) acc[r] = std::fma(wd[t], xr[t], acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

#if defined(TFORMER_LOWFLOAT_AVX2)
  /// @brief AVX2 + FMA: a chunk of 32 weights in 4 registers, multiplied into one 8-lane
  /// accumulator per activation row of the group.
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % B::block == 0);
    const std::int64_t nb = k / B::block;
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m256 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = wr + b * B::bytes;
          for (int c = 0; c < B::block / chunk; ++c) {
            __m256 wv[4];  // weights chunk * c + 8 q .. + 7
            B::avx2(blk, c, wv);
            for (int r = 0; r < R; ++r) {
              const float* xr = x + (i0 + r) * ldx + b * B::block + c * chunk;
              for (int q = 0; q < 4; ++q) acc[r] = _mm256_fmadd_ps(wv[q], _mm256_loadu_ps(xr + 8 * q), acc[r]);
            }
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = ggml_dot::hsum(acc[r]);
      }
    });
  }
#endif

#if defined(TFORMER_LOWFLOAT_AVX512)
  /// @brief AVX-512: as avx2, 16 weights per register.
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % B::block == 0);
    const std::int64_t nb = k / B::block;
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = wr + b * B::bytes;
          for (int c = 0; c < B::block / chunk; ++c) {
            __m512 wv[2];  // weights chunk * c + 16 q .. + 15
            B::avx512(blk, c, wv);
            for (int r = 0; r < R; ++r) {
              const float* xr = x + (i0 + r) * ldx + b * B::block + c * chunk;
              acc[r] = _mm512_fmadd_ps(wv[0], _mm512_loadu_ps(xr), acc[r]);
              acc[r] = _mm512_fmadd_ps(wv[1], _mm512_loadu_ps(xr + 16), acc[r]);
            }
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
      }
    });
  }
#endif

  /// @brief The best path compiled in (lowfloat_best_path).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_LOWFLOAT_AVX512)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_LOWFLOAT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The float at p (4 bytes, little endian, unaligned).
inline float f32_at(const std::byte* p) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native == std::endian::big)
    bits = (bits >> 24) | ((bits >> 8) & 0xFF00u) | ((bits << 8) & 0xFF0000u) | (bits << 24);
  return std::bit_cast<float>(bits);
}
/// @brief Stores v at p as 4 little-endian bytes.
inline void put_f32(std::byte* p, float v) noexcept {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
  if constexpr (std::endian::native == std::endian::big)
    bits = (bits >> 24) | ((bits >> 8) & 0xFF00u) | ((bits << 8) & 0xFF0000u) | (bits << 24);
  std::memcpy(p, &bits, sizeof bits);
}

#if defined(TFORMER_LOWFLOAT_AVX2)
/// @brief E2M1 codes (int32 lanes, < 16) -> their floats: the magnitude from the 8 positive values
/// (permutevar reads q & 7), the sign bit (q & 8) OR'ed in. Exact.
inline __m256 e2m1x8(__m256i q) noexcept {
  const __m256 mag = _mm256_permutevar8x32_ps(_mm256_loadu_ps(e2m1_values), q);
  return _mm256_or_ps(mag, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(8)), 28)));
}
#endif

}  // namespace tformer::quant::detail::lowfloat_dot
