// quant::nvfp4: NVIDIA's NVFP4, two-level scaled FP4: E2M1 elements in sub-blocks of 16 sharing an
// E4M3 scale, times an FP32 scale per row (NVIDIA's per-tensor scale, taken per row here so that
// rows stay independent). A weight format only sees rows of fixed blocks, so the row's FP32 scale
// travels in every block: a row is cut into blocks of 64 weights (4 sub-blocks), a block is 40
// bytes, unaligned in memory:
//
//   offset 0   float32 s        the row's scale, little endian (the same in every block of a row)
//   offset 4   uint8 d[4]       E4M3 scale of sub-block i (weights 16 i .. 16 i + 15)
//   offset 8   uint8 qs[32]     sub-block i in qs[8 i .. 8 i + 7]: weight 16 i + j = E2M1(qs[8 i + j] & 15),
//                               weight 16 i + j + 8 = E2M1(qs[8 i + j] >> 4), times c_i
//   c_i = (float)E4M3(d[i]) * s (one float product),  weight = E2M1(q) * c_i (another)
//
// Bytes 4 .. 39 have the layout of ggml's block_nvfp4 (GGML type 40; ggml has no FP32 scale and
// reads its scale codes as an unsigned E4M3 with 0x7F as 0), which is not registered. 5 bits per
// weight (NVIDIA's 4.5 plus the repeated row scale).
//
// Dequantization is ModelOpt's NVFP4QTensor.dequantize: the per-block scale E4M3 * s first, then
// times the element. Quantization is NVIDIA's recipe as ModelOpt's NVFP4QTensor.quantize writes it,
// bit-exact (float32 arithmetic): amax = max |x| over the row, s = amax / (6 * 448); per sub-block,
// b = amax_sub / (6 * s), d = E4M3(b) rounded to nearest even (b = 0 becomes 1.0, code 0x38, as
// ModelOpt sets zero scales to 1); q = E2M1(x / (E4M3(d) * s)) rounded to nearest even with
// saturation at 6 (ml_dtypes' float4_e2m1fn cast; ModelOpt's _cast_fp4 is the same but for -0.0,
// to which it gives +0). quantize_row_with_scale takes s from the caller instead (a tensor-wide
// scale, NVIDIA's per-tensor form). Special rows: all zero (amax = 0) stores s = 0, d = 0x38 and
// q = 0, so the row dequantizes to zeros; a row with an infinity or NaN stores s = NaN (its
// weights are NaN), d = 0x38 and q = 0. A sub-block whose E4M3(b) rounds to 0 (amax_sub below
// about 2.2e-6 of the row's) gets d = 0 and q = 0 (ModelOpt divides by that zero and stores
// saturated codes, which dequantize to the same zeros). Dequantization of stored bytes is well
// defined for every pattern: an E4M3 NaN code (0x7F, 0xFF) or a NaN s gives NaN, s = 0 zeros.
// Fixtures: tools/make_lowfloat_fixtures.py (numpy float32 and ml_dtypes' E4M3 / E2M1 casts).
//
// The float product (decode, ops::linear for up to 8 activation rows) makes the same c_i and the
// same weights in registers, in lowfloat_dot.hpp's loops (AVX-512, AVX2 + F16C, and a scalar
// reference).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "lowfloat.hpp"
#include "lowfloat_dot.hpp"

namespace tformer::quant {

namespace detail::nvfp4_kernels {

inline constexpr std::int64_t block = 64;        // weights per block: 4 sub-blocks
inline constexpr std::int64_t sub = 16;          // weights per E4M3 scale
inline constexpr std::int64_t block_bytes = 40;  // float32 row scale + 4 E4M3 scales + 32 bytes of nibbles
inline constexpr std::uint8_t unit_scale = 0x38;  // E4M3 1.0: ModelOpt's scale of an all-zero sub-block

/// @brief The E4M3 scale codes d[4] of the block at p.
inline const std::uint8_t* scales_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 4); }
/// @brief The 32 bytes of nibbles of the block at p.
inline const std::uint8_t* nibbles_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 8); }
/// @brief c_i = E4M3(d[i]) * s of sub-block i of the block at p.
inline float sub_scale(const std::byte* p, int i) noexcept { return from_e4m3(scales_of(p)[i]) * lowfloat_dot::f32_at(p); }

/// @brief The row's scale s = amax / (6 * 448) of x [n] (NaN when one value is not finite).
inline float row_scale(const float* x, std::int64_t n) noexcept {
  float amax = 0.0f;
  for (std::int64_t t = 0; t < n; ++t) {
    if (!std::isfinite(x[t])) return std::numeric_limits<float>::quiet_NaN();
    amax = std::fmax(amax, std::fabs(x[t]));
  }
  return amax / 2688.0f;
}

/// @brief One block of 64 floats with the row scale s -> the 40-byte block at blk (the recipe at
/// the top of the file).
inline void quantize_block(const float* x, float s, std::byte* blk) noexcept {
  lowfloat_dot::put_f32(blk, s);
  auto* d = reinterpret_cast<std::uint8_t*>(blk + 4);
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 8);
  std::memset(qs, 0, block / 2);
  const float six_s = 6.0f * s;
  for (int i = 0; i < block / sub; ++i) {
    const float* xs = x + i * sub;
    d[i] = unit_scale;
    if (!(s > 0.0f)) continue;  // zero or NaN row: zero codes
    float amax = 0.0f;
    for (std::int64_t j = 0; j < sub; ++j) amax = std::fmax(amax, std::fabs(xs[j]));
    const float b = amax / six_s;
    if (b != 0.0f) d[i] = to_e4m3(b, overflow::saturate);  // with the row's own s, b > 448 only by rounding
    const float c = from_e4m3(d[i]) * s;
    if (c == 0.0f) continue;
    for (std::int64_t j = 0; j < sub / 2; ++j)
      qs[i * 8 + j] = static_cast<std::uint8_t>(to_e2m1(xs[j] / c) | to_e2m1(xs[j + 8] / c) << 4);
  }
}

/// @brief NVFP4 blocks in lowfloat_dot's float product (a lowfloat_dot::lowfloat_block).
struct blocks {
  static constexpr std::int64_t block = nvfp4_kernels::block;
  static constexpr std::int64_t bytes = block_bytes;
  /// @brief w [64] = E2M1(q) * (E4M3(d_i) * s).
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const std::uint8_t* qs = nibbles_of(blk);
    for (int i = 0; i < block / sub; ++i) {
      const float c = sub_scale(blk, i);
      for (std::int64_t j = 0; j < sub / 2; ++j) {
        w[i * sub + j] = e2m1_values[qs[i * 8 + j] & 15] * c;
        w[i * sub + j + 8] = e2m1_values[qs[i * 8 + j] >> 4] * c;
      }
    }
  }
#if defined(TFORMER_LOWFLOAT_AVX2)
  /// @brief Chunk ch: sub-blocks 2 ch and 2 ch + 1, 8 weights per register.
  static void avx2(const std::byte* blk, int ch, __m256 (&w)[4]) noexcept {
    for (int h = 0; h < 2; ++h) {
      const int i = 2 * ch + h;
      const __m256 c = _mm256_set1_ps(sub_scale(blk, i));
      const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(nibbles_of(blk) + 8 * i)));
      w[2 * h] = _mm256_mul_ps(lowfloat_dot::e2m1x8(_mm256_and_si256(b, _mm256_set1_epi32(15))), c);
      w[2 * h + 1] = _mm256_mul_ps(lowfloat_dot::e2m1x8(_mm256_srli_epi32(b, 4)), c);
    }
  }
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  /// @brief Chunk ch: sub-blocks 2 ch and 2 ch + 1, one register each.
  static void avx512(const std::byte* blk, int ch, __m512 (&w)[2]) noexcept {
    const __m512 table = _mm512_loadu_ps(e2m1_values);
    // lanes 0..7: the bytes of sub-block 2 ch, lanes 8..15: those of sub-block 2 ch + 1
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles_of(blk) + 16 * ch)));
    const __m512i lo = _mm512_and_si512(b, _mm512_set1_epi32(15)), hi = _mm512_srli_epi32(b, 4);
    const __m512i first = _mm512_shuffle_i32x4(lo, hi, 0x44);   // lo lanes 0..7, hi lanes 0..7
    const __m512i second = _mm512_shuffle_i32x4(lo, hi, 0xEE);  // lo lanes 8..15, hi lanes 8..15
    w[0] = _mm512_mul_ps(_mm512_permutexvar_ps(first, table), _mm512_set1_ps(sub_scale(blk, 2 * ch)));
    w[1] = _mm512_mul_ps(_mm512_permutexvar_ps(second, table), _mm512_set1_ps(sub_scale(blk, 2 * ch + 1)));
  }
#endif
};

}  // namespace detail::nvfp4_kernels

/// @brief NVIDIA's NVFP4: E2M1 weights, an E4M3 scale per 16 and an FP32 scale per row, in 40-byte
/// blocks of 64 weights (5 bits per weight); see the top of nvfp4.hpp.
struct nvfp4 : detail::lowfloat_dot::format_base<detail::nvfp4_kernels::blocks> {
  using base = detail::lowfloat_dot::format_base<detail::nvfp4_kernels::blocks>;
  static constexpr const char* name = "nvfp4";
  static constexpr std::int64_t block_size = detail::nvfp4_kernels::block;
  static constexpr std::int64_t block_bytes = detail::nvfp4_kernels::block_bytes;
  static constexpr double bits_per_weight = 5.0;

  /// @brief x [n] -> n / 64 blocks, the row's scale s from the whole row (NVIDIA's recipe); n % 64 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    check_row(name, n);
    quantize_row_with_scale(x, detail::nvfp4_kernels::row_scale(x, n), blocks, n);
  }
  /// @brief x [n] -> n / 64 blocks with a given second-level scale s (a checkpoint's per-tensor
  /// weight_scale_2, or amax_tensor / 2688 for a whole tensor); the recipe with that s.
  static void quantize_row_with_scale(const float* x, float s, std::byte* blocks, std::int64_t n) {
    check_row(name, n);
    if (std::isinf(s) || s < 0.0f)
      throw value_error("tformer::quant::nvfp4: the row scale must be finite and >= 0 (or NaN), got " + std::to_string(s));
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::nvfp4_kernels::quantize_block(x + b * block_size, s, blocks + b * block_bytes);
  }
  /// @brief n / 64 blocks -> y [n]: y = E2M1(q) * (E4M3(d) * s).
  using base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n, float activations and
  /// the weights dequantized in registers (never written to memory); uses lowfloat_best_path.
  using base::float_product;
};

static_assert(float_product_format<nvfp4>);

}  // namespace tformer::quant
