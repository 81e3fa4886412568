// The float-activation product of the 16-bit element formats (quant::bf16, quant::f16) for a few
// activation rows (decode): y[i, j] = sum_t x[i, t] w_j[t], each weight widened to float in
// registers (exact for both types) and never written to memory, so a decode step reads 2 bytes
// per weight instead of dequantizing rows into scratch and reading them again as floats.
//
// Paths: AVX-512 (16 weights a step; bf16 by a 16-bit shift, f16 by vcvtph2ps), AVX2 + F16C (8 a
// step), and a scalar loop, the reference. All compute the same products of the same widened
// weights; they differ only in the order of the float sums (each column's sums in a fixed order,
// independent of the thread count and of the columns computed beside it).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/half.hpp"
#include "ggml_dot.hpp"  // for_row_groups, hsum, the path macros

namespace tformer::quant::detail::element_dot {

#if defined(TFORMER_GGML_DOT_AVX2) && defined(__F16C__)
#define TFORMER_ELEMENT_DOT_AVX2 1
#endif
#if defined(TFORMER_GGML_DOT_AVX512F) && defined(__AVX512BW__) && defined(__AVX512VL__)  // masked 256-bit loads
#define TFORMER_ELEMENT_DOT_AVX512 1
#endif

/// @brief The loops of the product for element type E (tformer::bf16 or tformer::f16): w points
/// at n rows of k elements, row_bytes apart; x [m, k] floats (row stride ldx), m <= 8 at a time.
template <class E>
struct product {
  static_assert(std::is_same_v<E, tformer::bf16> || std::is_same_v<E, tformer::f16>, "16-bit element types only");

  /// @brief The reference: acc = fma(widened w_t, x_t, acc), t in order.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t t = 0; t < k; ++t) {
          E e;
          std::memcpy(&e, wr + t * 2, 2);
          const float wt = static_cast<float>(e);
          for (int r = 0; r < R; ++r) acc[r] = std::fma(wt, x[(i0 + r) * ldx + t], acc[r]);
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

  /// @brief Output columns computed together for R activation rows (as ggml_dot::float_loops).
  template <int R>
  static constexpr int columns = R <= 2 ? 4 : (R <= 4 ? 2 : 1);

#if defined(TFORMER_ELEMENT_DOT_AVX512)
  /// @brief 16 elements at p (fewer, zero-filled, under mask) widened to float.
  TFORMER_GGML_DOT_INLINE static __m512 widen16(const std::byte* p, __mmask16 mask) noexcept {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
    if constexpr (std::is_same_v<E, tformer::bf16>)
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else
      return _mm512_cvtph_ps(h);
  }
  template <int R, int J>
  TFORMER_GGML_DOT_INLINE static void avx512_columns(const float* x, std::int64_t ldx, std::int64_t k, const std::byte* w,
                                                     std::int64_t row_bytes, float* y, std::int64_t ldy) {
    __m512 acc[J][R];
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) acc[c][r] = _mm512_setzero_ps();
    for (std::int64_t t = 0; t < k; t += 16) {
      const __mmask16 mask = k - t >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (k - t)) - 1u);
      __m512 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(mask, x + r * ldx + t);
      for (int c = 0; c < J; ++c) {
        const __m512 wv = widen16(w + c * row_bytes + t * 2, mask);
        for (int r = 0; r < R; ++r) acc[c][r] = _mm512_fmadd_ps(wv, xv[r], acc[c][r]);
      }
    }
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) y[r * ldy + c] = _mm512_reduce_add_ps(acc[c][r]);
  }
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int J = columns<R>;
      std::int64_t j = 0;
      for (; j + J <= n; j += J) avx512_columns<R, J>(x + i0 * ldx, ldx, k, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
      for (; j < n; ++j) avx512_columns<R, 1>(x + i0 * ldx, ldx, k, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
    });
  }
#endif

#if defined(TFORMER_ELEMENT_DOT_AVX2)
  /// @brief 8 elements at p widened to float.
  TFORMER_GGML_DOT_INLINE static __m256 widen8(const std::byte* p) noexcept {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (std::is_same_v<E, tformer::bf16>)
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else
      return _mm256_cvtph_ps(h);
  }
  template <int R, int J>
  TFORMER_GGML_DOT_INLINE static void avx2_columns(const float* x, std::int64_t ldx, std::int64_t k, const std::byte* w,
                                                   std::int64_t row_bytes, float* y, std::int64_t ldy) {
    __m256 acc[J][R];
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) acc[c][r] = _mm256_setzero_ps();
    const std::int64_t k8 = k / 8 * 8;
    for (std::int64_t t = 0; t < k8; t += 8) {
      __m256 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(x + r * ldx + t);
      for (int c = 0; c < J; ++c) {
        const __m256 wv = widen8(w + c * row_bytes + t * 2);
        for (int r = 0; r < R; ++r) acc[c][r] = _mm256_fmadd_ps(wv, xv[r], acc[c][r]);
      }
    }
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) {
        float s = ggml_dot::hsum(acc[c][r]);
        for (std::int64_t t = k8; t < k; ++t) {
          E e;
          std::memcpy(&e, w + c * row_bytes + t * 2, 2);
          s = std::fma(static_cast<float>(e), x[r * ldx + t], s);
        }
        y[r * ldy + c] = s;
      }
  }
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    ggml_dot::for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int J = columns<R>;
      std::int64_t j = 0;
      for (; j + J <= n; j += J) avx2_columns<R, J>(x + i0 * ldx, ldx, k, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
      for (; j < n; ++j) avx2_columns<R, 1>(x + i0 * ldx, ldx, k, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
    });
  }
#endif

  /// @brief The best path compiled in.
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_ELEMENT_DOT_AVX512)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_ELEMENT_DOT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The name of the path product<E>::best uses in this build.
#if defined(TFORMER_ELEMENT_DOT_AVX512)
inline constexpr const char* best_path = "avx512";
#elif defined(TFORMER_ELEMENT_DOT_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

}  // namespace tformer::quant::detail::element_dot
