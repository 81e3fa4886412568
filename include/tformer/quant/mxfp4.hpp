// quant::mxfp4: OCP Microscaling MXFP4 (MX v1.0: 32 E2M1 elements sharing one E8M0 scale) in the
// bytes of ggml's GGML_TYPE_MXFP4 (type 39, block_mxfp4), so GGUF tensors of that type load as they
// are. A row is cut into blocks of 32 weights; a block is 17 bytes, unaligned in memory:
//
//   offset 0   uint8 e          E8M0 scale X = 2^(e - 127) (e = 0xFF: NaN)
//   offset 1   uint8 qs[16]     weight j (j < 16)  = E2M1(qs[j] & 15) * X,
//                               weight j + 16      = E2M1(qs[j] >> 4) * X
//
// Dequantization is OCP's formula, one float product of two exact values (every result is exact,
// up to overflow to inf for e = 254). It equals ggml's dequantize_row_mxfp4 (doubled integer
// levels kvalues_mxfp4 times the "half" scale 2^(e - 128): the same real numbers) for every e but
// 0xFF, which OCP defines as NaN and ggml reads as 2^127 (ggml's validate_row_data rejects it), and
// up to the sign of zero: ggml's integer levels read code 8 as +0, OCP's E2M1 as -0.
//
// Quantization is ggml's quantize_row_mxfp4_ref, bit-exact: amax = the largest |x_t| (NaN never
// compares greater), e = amax > 0 ? floorf(log2f(amax)) - 2 + 127 : 0, d = 2^(e - 128) and each
// q_t = the first index i of kvalues_mxfp4 = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, ..., -12} with the
// smallest float |kvalues[i] * d - x_t| (so ties go to the smaller magnitude, not to even; exact
// products, one rounded subtraction each). log2f is taken correctly rounded, as the double log2
// rounded to float, which equals glibc's log2f on every positive float (checked exhaustively) and
// so ggml's e on Linux. Two deliberate differences where ggml's C is undefined: a block with an
// infinity or NaN gets e = 0xFF and qs = 0 (it dequantizes to NaN; ggml converts inf to uint8_t,
// undefined, and silently encodes a NaN as +0), and a block with 0 < amax < 2^-125, whose e would
// be negative (ggml's uint8_t conversion of a negative float, undefined, wraps on x86 to 232..255),
// gets e = 0, the smallest scale. 4.25 bits per weight.
//
// The float product (decode, ops::linear for up to 8 activation rows) decodes the codes through
// the 16 E2M1 floats and scales them by X in registers, exactly the weights dequantize_row makes,
// in lowfloat_dot.hpp's loops (AVX-512, AVX2 + F16C, and a scalar reference).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "lowfloat.hpp"
#include "lowfloat_dot.hpp"

namespace tformer::quant {

namespace detail::mxfp4_kernels {

inline constexpr std::int64_t block = 32;        // weights per block (OCP MX k = 32)
inline constexpr std::int64_t block_bytes = 17;  // E8M0 scale + 16 bytes of E2M1 nibbles

/// @brief ggml's kvalues_mxfp4: 2 * E2M1(i).
inline constexpr std::int8_t kvalues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/// @brief The scale code e of the block at p.
inline std::uint8_t scale_code(const std::byte* p) noexcept { return std::to_integer<std::uint8_t>(p[0]); }
/// @brief The 16 bytes of nibbles of the block at p.
inline const std::uint8_t* nibbles_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 1); }

/// @brief ggml's E8M0 code for a block whose largest magnitude is amax (finite, >= 0):
/// floorf(log2f(amax)) - 2 + 127, 0 for amax = 0 and below 2^-125 (see the top of the file).
inline std::uint8_t scale_code_for(float amax) noexcept {
  if (!(amax > 0.0f)) return 0;
  const float l = std::floor(static_cast<float>(std::log2(static_cast<double>(amax))));  // correctly rounded log2f
  const float e = l - 2.0f + 127.0f;
  return e < 0.0f ? 0 : static_cast<std::uint8_t>(e);  // amax <= FLT_MAX: e <= 253 (log2f(FLT_MAX) rounds to 128)
}

/// @brief ggml's best_index_mxfp4(x, d): the first index with the smallest |kvalues[i] * d - x|.
inline std::uint8_t best_index(float x, float d) noexcept {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(kvalues[0]) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kvalues[i]) * d - x);  // the product is exact: no fma can change it
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return static_cast<std::uint8_t>(best);
}

/// @brief One block of 32 floats -> the 17-byte block at blk (ggml's quantize_row_mxfp4_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 1);
  float amax = 0.0f;
  bool finite = true;
  for (std::int64_t t = 0; t < block; ++t) {
    finite = finite && std::isfinite(x[t]);
    if (amax < std::fabs(x[t])) amax = std::fabs(x[t]);
  }
  if (!finite) {  // NaN scale, zero codes: the block reads as NaN
    blk[0] = std::byte{0xFF};
    std::memset(qs, 0, block / 2);
    return;
  }
  const std::uint8_t e = scale_code_for(amax);
  blk[0] = static_cast<std::byte>(e);
  const float d = e8m0_values.v[e] * 0.5f;  // ggml's GGML_E8M0_TO_FP32_HALF(e), exact (e < 255)
  for (std::int64_t j = 0; j < block / 2; ++j)
    qs[j] = static_cast<std::uint8_t>(best_index(x[j], d) | best_index(x[j + block / 2], d) << 4);
}

/// @brief MXFP4 blocks in lowfloat_dot's float product (a lowfloat_dot::lowfloat_block).
struct blocks {
  static constexpr std::int64_t block = mxfp4_kernels::block;
  static constexpr std::int64_t bytes = block_bytes;
  /// @brief w [32] = E2M1(q_t) * 2^(e - 127).
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float s = e8m0_values.v[scale_code(blk)];
    const std::uint8_t* qs = nibbles_of(blk);
    for (std::int64_t j = 0; j < block / 2; ++j) {
      w[j] = e2m1_values[qs[j] & 15] * s;
      w[j + block / 2] = e2m1_values[qs[j] >> 4] * s;
    }
  }
#if defined(TFORMER_LOWFLOAT_AVX2)
  static void avx2(const std::byte* blk, int, __m256 (&w)[4]) noexcept {
    const __m256 s = _mm256_set1_ps(e8m0_values.v[scale_code(blk)]);
    const std::uint8_t* qs = nibbles_of(blk);
    const __m256i lo4 = _mm256_set1_epi32(15);
    for (int h = 0; h < 2; ++h) {  // bytes 8h .. 8h + 7: weights 8h .. (low nibbles), 16 + 8h .. (high)
      const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + 8 * h)));
      w[h] = _mm256_mul_ps(lowfloat_dot::e2m1x8(_mm256_and_si256(b, lo4)), s);
      w[2 + h] = _mm256_mul_ps(lowfloat_dot::e2m1x8(_mm256_srli_epi32(b, 4)), s);
    }
  }
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  static void avx512(const std::byte* blk, int, __m512 (&w)[2]) noexcept {
    const __m512 s = _mm512_set1_ps(e8m0_values.v[scale_code(blk)]);
    const __m512 table = _mm512_loadu_ps(e2m1_values);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles_of(blk))));
    w[0] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)), table), s);
    w[1] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table), s);
  }
#endif
};

}  // namespace detail::mxfp4_kernels

/// @brief OCP MXFP4 in ggml's block_mxfp4 bytes (GGML type 39): 32 E2M1 weights and one E8M0 scale
/// per 17-byte block, 4.25 bits per weight; see the top of mxfp4.hpp.
struct mxfp4 : detail::lowfloat_dot::format_base<detail::mxfp4_kernels::blocks> {
  using base = detail::lowfloat_dot::format_base<detail::mxfp4_kernels::blocks>;
  static constexpr const char* name = "mxfp4";
  static constexpr std::int64_t block_size = detail::mxfp4_kernels::block;
  static constexpr std::int64_t block_bytes = detail::mxfp4_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.25;
  static constexpr std::uint32_t ggml_type = 39;  // GGML_TYPE_MXFP4

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_mxfp4_ref); n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    check_row(name, n);
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::mxfp4_kernels::quantize_block(x + b * block_size, blocks + b * block_bytes);
  }
  /// @brief n / 32 blocks -> y [n]: y = E2M1(q) * 2^(e - 127) (OCP's formula; NaN for e = 0xFF).
  using base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n, float activations and
  /// the weights dequantized in registers (never written to memory); uses lowfloat_best_path.
  using base::float_product;
};

static_assert(float_product_format<mxfp4> && ggml_format<mxfp4>);

}  // namespace tformer::quant
