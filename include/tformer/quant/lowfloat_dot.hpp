// The float-activation product of the low-float weight formats (fp8_e4m3, fp8_e5m2, mxfp4, nvfp4),
// written once: y[i, j] = sum_t x[i, t] w[j, t] with w the weights exactly as the format's
// dequantize_row makes them, decoded block by block in registers and never written to memory, for
// up to 8 activation rows at a time (ggml_dot's row groups). What differs per format is a block
// policy (lowfloat_block below): how a block's weights become floats. The loops are
// ggml_dot::float_loops' three paths (AVX-512, AVX2 + FMA + F16C here, and a scalar reference that
// defines the result); they compute the same weights and products and differ only in the order of
// the float sums. format_base holds the members the formats share. Internal: include a format
// header (fp8.hpp, mxfp4.hpp, nvfp4.hpp).
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "../config.hpp"
#include "../core/error.hpp"
#include "ggml_dot.hpp"  // float_loops
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

/// @brief The blocks B as ggml_dot::float_loops decodes them: B's chunks of 32 weights, register
/// by register, in weight order.
template <lowfloat_block B>
struct float_blocks {
  static constexpr std::int64_t bytes = B::bytes;
  static void dequantize(const std::byte* blk, float* w) noexcept { B::dequantize(blk, w); }
#if defined(TFORMER_LOWFLOAT_AVX2)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    for (int c = 0; c < B::block / chunk; ++c) {
      __m256 wv[4];  // weights chunk * c + 8 q .. + 7
      B::avx2(blk, c, wv);
      for (int q = 0; q < 4; ++q) fn(static_cast<int>(c * chunk + 8 * q), wv[q]);
    }
  }
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    for (int c = 0; c < B::block / chunk; ++c) {
      __m512 wv[2];  // weights chunk * c + 16 q .. + 15
      B::avx512(blk, c, wv);
      fn(static_cast<int>(c * chunk), wv[0]);
      fn(static_cast<int>(c * chunk + 16), wv[1]);
    }
  }
#endif
};

/// @brief The product over blocks B: x [m, k] floats (row stride ldx), k % B::block == 0; w -> n
/// packed weight rows of row_bytes each; y[i * ldy + j] for i < m, j < n. The paths are
/// ggml_dot::float_loops'; best picks by this header's own path macros (AVX2 here needs F16C too).
template <lowfloat_block B>
struct float_dot : ggml_dot::float_loops<B::block, float_blocks<B>> {
  using loops = ggml_dot::float_loops<B::block, float_blocks<B>>;
  /// @brief The best path compiled in (lowfloat_best_path).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_LOWFLOAT_AVX512)
    loops::avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_LOWFLOAT_AVX2)
    loops::avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    loops::scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The members every low-float format (fp8_format<E>, mxfp4, nvfp4) shares, from its
/// blocks B: the float product's paths, dequantize_row, float_product and the row check its
/// quantizers make. Each format's struct derives from it and names (and documents) what it takes.
template <lowfloat_block B>
struct format_base {
  /// @brief float_dot::scalar (the reference), ::avx2, ::avx512 where compiled, ::best (the one
  /// float_product uses, named by lowfloat_best_path).
  using float_dot = lowfloat_dot::float_dot<B>;

  /// @brief n / B::block blocks -> y [n], each as B::dequantize makes it; n % B::block == 0.
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % B::block == 0);
    for (std::int64_t b = 0; b < n / B::block; ++b) B::dequantize(blocks + b * B::bytes, y + b * B::block);
  }
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n, float activations and
  /// the weights dequantized in registers (never written to memory); uses lowfloat_best_path.
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    float_dot::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }

 protected:
  /// @brief Throws shape_error, naming the format, unless a row of n weights is whole blocks.
  static void check_row(const char* name, std::int64_t n) {
    if (n % B::block != 0)
      throw shape_error(std::string("tformer::quant::") + name + ": a row of " + std::to_string(n) +
                        " weights is not a whole number of blocks of " + std::to_string(B::block));
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
