// quant::fp8_e4m3 and quant::fp8_e5m2: FP8 weights (OCP OFP8 v1.0 elements, see lowfloat.hpp) with
// one float scale per block of 128 weights along a row. A block is 132 bytes, unaligned in memory:
//
//   offset 0   float32 s        the block's scale, little endian
//   offset 4   uint8 c[128]     FP8 codes (E4M3 or E5M2); weight t = (float)fp8(c[t]) * s
//
// Dequantization is that one float product per weight (fp8(c) is exact), so it equals
// transformers' / DeepSeek-V3's "fine-grained FP8" dequantization, weight_fp8.float() * scale.
// Quantization per block (the same recipe): amax = max |x_t|, s = amax / max (float division;
// max = 448 for E4M3, 57344 for E5M2), c_t = fp8(x_t / s) rounded to nearest even with saturation
// (as torch's (x / s).clamp(-max, max).to(float8)). Special blocks: all zero (or amax / max
// underflowing to 0): s = 0 and every c = 0, so the block dequantizes to +0; any NaN or infinity
// in the block: s = NaN and every c = 0, so the whole block dequantizes to NaN (a non-finite weight
// never becomes a finite one). Dequantization of stored bytes is well defined for every pattern:
// s = 0 gives zeros (NaN for NaN codes and for E5M2's infinities, 0 * inf), s = NaN gives NaN.
// Bit-exact with ml_dtypes' float8 casts applied by this recipe in numpy float32
// (tools/make_lowfloat_fixtures.py -> tests/data/lowfloat_quants.safetensors).
//
// Block size and other scalings: 128 along a row is DeepSeek-V3's block width, so its [128, 128]
// tiles (one scale per tile) load exactly, each tile scale repeated into the 128 rows' blocks; a
// per-channel (per-row) FP8 checkpoint loads exactly too, its row scale repeated into each block
// of the row (pack_row below), and quantize_row_per_channel quantizes with one scale per row.
// 8.25 bits per weight.
//
// The float product (decode, ops::linear for up to 8 activation rows) decodes codes and scales in
// registers, exactly the weights dequantize_row makes, in lowfloat_dot.hpp's loops (AVX-512, AVX2 +
// F16C, and a scalar reference).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "lowfloat.hpp"
#include "lowfloat_dot.hpp"

namespace tformer::quant {

namespace detail::fp8_kernels {

inline constexpr std::int64_t block = 128;       // weights per block
inline constexpr std::int64_t block_bytes = 132;  // float32 scale + 128 codes

/// @brief The codes of the block at p.
inline const std::uint8_t* codes_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 4); }

/// @brief One block of 128 floats quantized with the scale s: c_t = fp8(x_t / s), saturating,
/// for a finite s > 0; any other s (0, NaN) is stored with zero codes (the block reads as 0 or NaN).
template <class E>
inline void quantize_with_scale(const float* x, float s, std::byte* blk) noexcept {
  lowfloat_dot::put_f32(blk, s);
  auto* c = reinterpret_cast<std::uint8_t*>(blk + 4);
  if (!(s > 0.0f) || std::isinf(s)) {
    std::memset(c, 0, block);
    return;
  }
  for (std::int64_t t = 0; t < block; ++t) c[t] = to_fp8<E>(x[t] / s, overflow::saturate);
}

/// @brief The scale amax / max of n floats (0 for zeros; NaN when one is not finite).
template <class E>
inline float scale_for(const float* x, std::int64_t n) noexcept {
  float amax = 0.0f;
  for (std::int64_t t = 0; t < n; ++t) {
    if (!std::isfinite(x[t])) return std::numeric_limits<float>::quiet_NaN();
    amax = std::fmax(amax, std::fabs(x[t]));
  }
  return amax / E::max;
}

/// @brief One block of 128 floats -> the 132-byte block at blk (the recipe at the top of the file).
template <class E>
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  quantize_with_scale<E>(x, scale_for<E>(x, block), blk);
}

/// @brief FP8 blocks in lowfloat_dot's float product (a lowfloat_dot::lowfloat_block).
template <class E>
struct blocks {
  static constexpr std::int64_t block = fp8_kernels::block;
  static constexpr std::int64_t bytes = block_bytes;
  /// @brief w [128] = fp8(c_t) * s.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    fp8_to_float<E>(codes_of(blk), w, block);
    const float s = lowfloat_dot::f32_at(blk);
    for (std::int64_t t = 0; t < block; ++t) w[t] *= s;
  }
#if defined(TFORMER_LOWFLOAT_AVX2)
  static void avx2(const std::byte* blk, int c, __m256 (&w)[4]) noexcept {
    const __m256 s = _mm256_set1_ps(lowfloat_dot::f32_at(blk));
    const std::uint8_t* codes = codes_of(blk) + c * lowfloat_dot::chunk;
    for (int q = 0; q < 4; ++q) w[q] = _mm256_mul_ps(detail::lowfloat::load_fp8x8<E>(codes + 8 * q), s);
  }
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  static void avx512(const std::byte* blk, int c, __m512 (&w)[2]) noexcept {
    const __m512 s = _mm512_set1_ps(lowfloat_dot::f32_at(blk));
    const std::uint8_t* codes = codes_of(blk) + c * lowfloat_dot::chunk;
    w[0] = _mm512_mul_ps(detail::lowfloat::load_fp8x16<E>(codes), s);
    w[1] = _mm512_mul_ps(detail::lowfloat::load_fp8x16<E>(codes + 16), s);
  }
#endif
};

}  // namespace detail::fp8_kernels

/// @brief FP8 weights of element E (e4m3 or e5m2) with a float scale per block of 128 (132 bytes,
/// 8.25 bits per weight); see the top of fp8.hpp.
template <class E>
  requires std::is_same_v<E, e4m3> || std::is_same_v<E, e5m2>
struct fp8_format : detail::lowfloat_dot::format_base<detail::fp8_kernels::blocks<E>> {
  using base = detail::lowfloat_dot::format_base<detail::fp8_kernels::blocks<E>>;
  using element_type = E;
  static constexpr const char* name = std::is_same_v<E, e4m3> ? "fp8_e4m3" : "fp8_e5m2";
  static constexpr std::int64_t block_size = detail::fp8_kernels::block;
  static constexpr std::int64_t block_bytes = detail::fp8_kernels::block_bytes;
  static constexpr double bits_per_weight = 8.25;

  /// @brief The float product's paths (lowfloat_dot::format_base::float_dot).
  using float_dot = typename base::float_dot;

  /// @brief x [n] -> n / 128 blocks, a scale per block (the recipe at the top of fp8.hpp); n % 128 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    base::check_row(name, n);
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::fp8_kernels::quantize_block<E>(x + b * block_size, blocks + b * block_bytes);
  }
  /// @brief x [n] -> n / 128 blocks with one scale for the row (per-channel FP8): s = amax_row /
  /// max, each block as quantize_row makes it with that s (NaN when the row holds a non-finite value).
  static void quantize_row_per_channel(const float* x, std::byte* blocks, std::int64_t n) {
    base::check_row(name, n);
    const float s = detail::fp8_kernels::scale_for<E>(x, n);
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::fp8_kernels::quantize_with_scale<E>(x + b * block_size, s, blocks + b * block_bytes);
  }
  /// @brief Packs a checkpoint's row as it is: codes [n] FP8 codes of E, scales [n / 128] one float
  /// per block (a DeepSeek-V3 tile scale, or a per-channel scale repeated) -> n / 128 blocks.
  static void pack_row(const std::uint8_t* codes, const float* scales, std::byte* blocks, std::int64_t n) {
    base::check_row(name, n);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      detail::lowfloat_dot::put_f32(blocks + b * block_bytes, scales[b]);
      std::memcpy(blocks + b * block_bytes + 4, codes + b * block_size, block_size);
    }
  }
  /// @brief n / 128 blocks -> y [n]: y[t] = (float)fp8(c_t) * s (exact decode, one rounding).
  using base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n, float activations and
  /// the weights dequantized in registers (never written to memory); uses lowfloat_best_path.
  using base::float_product;
};

/// @brief FP8 E4M3 weights with a float scale per block of 128 (fp8.hpp).
using fp8_e4m3 = fp8_format<e4m3>;
/// @brief FP8 E5M2 weights with a float scale per block of 128 (fp8.hpp).
using fp8_e5m2 = fp8_format<e5m2>;

static_assert(float_product_format<fp8_e4m3> && float_product_format<fp8_e5m2>);

}  // namespace tformer::quant
