// The loops of the float-activation products of ggml's super-block formats (tq2_0, iq4_xs, q2_k,
// q3_k: 256 weights a block), written once: y[i, j] = sum_t x[i, t] w[j, t] for up to 8 activation
// rows at a time, the weights of each super-block dequantized in registers exactly as the
// format's dequantize_row makes them and never written to memory. What differs per format is a
// block policy (see `block_policy` below) that decodes one super-block, 8 or 16 weights at a time.
// Three compiled paths, chosen at compile time like ggml_dot.hpp's: AVX-512, AVX2 + FMA, and a
// scalar reference that defines the result. Internal: include a format header (tq2_0.hpp, ...).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "ggml_dot.hpp"  // for_row_groups, hsum, the path macros and names

// The per-register callbacks of the decoders run 16 or 32 times per super-block: always inlined.
#if defined(__GNUC__) || defined(__clang__)
#define TFORMER_SUPERBLOCK_LAMBDA_INLINE __attribute__((always_inline))
#else
#define TFORMER_SUPERBLOCK_LAMBDA_INLINE
#endif

namespace tformer::quant::detail::superblock_dot {

inline constexpr std::int64_t block = 256;  // weights per super-block
using ggml_dot::best_float_path;
using ggml_dot::for_row_groups;

/// @brief A super-block of a ggml format, as the float product sees it:
/// - bytes: the size of a block (blocks are unaligned in memory).
/// - dequantize(blk, w): w [256] = the block's weights as the format's dequantize_row makes them.
/// - decode_avx2(blk, fn): calls fn(o, v) with v (__m256) the weights o .. o + 7, for every o in
///   0, 8, .., 248 (in any order), each lane bit-identical to dequantize's.
/// - decode_avx512(blk, fn): the same with v (__m512) the weights o .. o + 15, o in 0, 16, .., 240.
template <class B>
concept block_policy = requires(const std::byte* p, float* w) {
  { B::bytes } -> std::convertible_to<std::int64_t>;
  B::dequantize(p, w);
};

/// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n: x [m, k] floats (row
/// stride ldx), k % 256 == 0; w -> n packed rows of row_bytes each. Every path computes the same
/// products of the same dequantized weights and activations; they differ only in the order of
/// the float sums.
template <block_policy B>
struct float_dot {
  /// @brief The reference: a super-block's weights dequantized (to the stack), then acc = fma(w_t,
  /// x_t, acc), t in order, block after block.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          float wd[block];  // the super-block's weights
          B::dequantize(wr + b * B::bytes, wd);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + (i0 + r) * ldx + b * block;
            for (std::int64_t t = 0; t < block; ++t) acc[r] = std::fma(wd[t], xr[t], acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief AVX2 + FMA: 8 weights per register, one 8-lane accumulator per activation row.
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m256 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const float* xb = x + i0 * ldx + b * block;
          B::decode_avx2(wr + b * B::bytes, [&](int o, __m256 v) TFORMER_SUPERBLOCK_LAMBDA_INLINE {
            for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xb + r * ldx + o), acc[r]);
          });
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = ggml_dot::hsum(acc[r]);
      }
    });
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512F)
  /// @brief AVX-512: as avx2, 16 weights per register.
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const float* xb = x + i0 * ldx + b * block;
          B::decode_avx512(wr + b * B::bytes, [&](int o, __m512 v) TFORMER_SUPERBLOCK_LAMBDA_INLINE {
            for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + r * ldx + o), acc[r]);
          });
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
      }
    });
  }
#endif

  /// @brief The best path compiled in (best_float_path).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_GGML_DOT_AVX512F)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_GGML_DOT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

}  // namespace tformer::quant::detail::superblock_dot
