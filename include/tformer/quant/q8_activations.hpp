// The int8 activations of the ggml-style fused products (q8_0, q4_0, q4_1): for decode, a few rows
// of float activations are quantized per block of 32 to int8 with one float scale per block, the
// way ggml quantizes them to Q8_0 (for Q8_0 and Q4_0 weights) or Q8_1 (for Q4_1 weights: the same
// int8 values; Q8_1 adds the block's sum, which the scratch below carries per lane). Each weight
// format then multiplies its own blocks by these with exact int32 sums per block, in the loops of
// ggml_dot.hpp. The fp16 fields of unaligned blocks are read and written here too. Internal:
// include a format header (q8_0.hpp, q4_0.hpp, ...).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q8_ACTIVATIONS_AVX2 1
#endif
#if defined(TFORMER_Q8_ACTIVATIONS_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant::detail::q8_activations {

inline constexpr std::int64_t block = 32;         // activations (and weights) per block
inline constexpr std::int64_t max_rows = 8;       // activation rows that share one read of a weight row
inline constexpr std::int64_t lanes = block / 4;  // int32 lanes of one block's products (4 bytes each)

/// @brief The binary16 bits at p (a field of an unaligned block, stored little endian).
inline std::uint16_t half_bits(const std::byte* p) noexcept {
  std::uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native == std::endian::big) bits = static_cast<std::uint16_t>((bits >> 8) | (bits << 8));
  return bits;
}
/// @brief The binary16 value at p, as float (exact).
inline float half_at(const std::byte* p) noexcept { return static_cast<float>(tformer::f16::from_bits(half_bits(p))); }
/// @brief Stores v at p as binary16 (round to nearest even, ggml's GGML_FP32_TO_FP16), little endian.
inline void put_half(std::byte* p, float v) noexcept {
  std::uint16_t bits = tformer::f16(v).bits;
  if constexpr (std::endian::native == std::endian::big) bits = static_cast<std::uint16_t>((bits >> 8) | (bits << 8));
  std::memcpy(p, &bits, sizeof bits);
}

/// @brief roundf(v): nearest integer, halves away from zero (sign of zero kept), for |v| < 2^23
/// (q8_0 sees |v| <= 127). t + 0.5 is exact there, so the comparison decides exactly (the tempting
/// trunc(v + 0.5) rounds 0.49999997 up), and nothing is subtracted from v, so a compiler that
/// contracts x * id - t into an fma (GCC's default -ffp-contract=fast) cannot change the result.
/// test_q8_0 checks it against std::round on the 129 floats around every half-integer up to 300.
inline float round_half_away(float v) noexcept {
  const float a = std::fabs(v), t = std::trunc(a);
  return std::copysign(a >= t + 0.5f ? t + 1.0f : t, v);
}

/// @brief One block of 32 floats -> q [32] int8 in [-127, 127]; returns the float scale amax / 127.
/// ggml's quantize_row_q8_0_ref step by step. Inputs must be finite (as in ggml: an infinity gives
/// id = 0 and a NaN product, which has no int8 value).
inline float quantize_block(const float* x, std::int8_t* q) noexcept {
  float amax = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    const float v = std::fabs(x[j]);
    amax = amax > v ? amax : v;  // ggml: MAX(amax, fabsf(v))
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;  // all-zero block: d = 0, every q = 0
  for (std::int64_t j = 0; j < block; ++j) q[j] = static_cast<std::int8_t>(round_half_away(x[j] * id));
  return d;
}

// The activation scratch: m rows of stride(k) bytes each (a multiple of 64), row i at acts + i *
// stride(k). A row of k activations (k a multiple of 32, nb = k / 32 blocks) holds three arrays
// of k bytes each, every one indexed so that the int32 lanes of a block's 32-byte product line up:
//
//   [0, k)     int8  q[k]              activations quantized per block, in [-127, 127]
//   [k, 2k)    float scale[k / 4]      d_x of block b repeated in scale[8b .. 8b+7] (one per lane)
//   [2k, 3k)   int32 corr[k / 4]       -128 * (q[4l] + q[4l+1] + q[4l+2] + q[4l+3]) for lane l
//
// scale and corr have one entry per group of 4 activations, the group a dot-product instruction
// sums into one int32 lane, so the SIMD paths load them as vectors with no broadcast or shuffle.
// corr serves the VNNI paths' +128 shift of signed weights (see ggml_dot.hpp, dot::avx512vnni), and
// gives the lane sums of q (corr / -128, exact) that Q4_1's offsets multiply. Offsets k and 2k are
// multiples of 32, so with the workspace's 64-byte aligned base every 32-byte load is aligned.
struct activations {
  static constexpr std::int64_t stride(std::int64_t k) noexcept { return (3 * k + 63) / 64 * 64; }
  static const std::int8_t* q(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    return reinterpret_cast<const std::int8_t*>(acts + i * stride(k));
  }
  static const float* scale(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    return reinterpret_cast<const float*>(acts + i * stride(k) + k);
  }
  static const std::int32_t* corr(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    return reinterpret_cast<const std::int32_t*>(acts + i * stride(k) + 2 * k);
  }
};

/// @brief Scratch bytes for m rows of k activations.
inline std::size_t bytes(std::int64_t m, std::int64_t k) noexcept {
  return static_cast<std::size_t>(m * activations::stride(k));
}

/// @brief One block of activations x [32] -> q [32], scale [8], corr [8] (the layout above).
inline void prepare_block_scalar(const float* x, std::int8_t* q, float* scale, std::int32_t* corr) noexcept {
  const float d = quantize_block(x, q);
  for (std::int64_t l = 0; l < lanes; ++l) {
    const std::int8_t* g = q + 4 * l;  // the 4 activations of lane l
    scale[l] = d;
    corr[l] = -128 * (g[0] + g[1] + g[2] + g[3]);
  }
}

#if defined(TFORMER_Q8_ACTIVATIONS_AVX2)
/// @brief prepare_block_scalar in AVX2, with identical results for finite x: the max of |x| is
/// exact in any order, d and id are the same scalar divisions, x * id the same float products, and
/// the rounding is round_half_away lane by lane. (The compiler does not vectorize the scalar one:
/// ggml's MAX reduction is not a max it may reorder.) Used by every path: all see the same bytes.
inline void prepare_block_avx2(const float* x, std::int8_t* q, float* scale, std::int32_t* corr) noexcept {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  for (int c = 0; c < 4; ++c) v[c] = _mm256_loadu_ps(x + 8 * c);
  // amax = max |x_j|
  const __m256 m8 = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                  _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float d = _mm_cvtss_f32(m4) / 127.0f;
  const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  // q = round_half_away(x * id), as int32 in [-127, 127]
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  __m256i qi[4];
  for (int c = 0; c < 4; ++c) {
    const __m256 p = _mm256_mul_ps(v[c], id);
    const __m256 a = _mm256_andnot_ps(sign, p);
    const __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_blendv_ps(t, _mm256_add_ps(t, one), _mm256_cmp_ps(a, _mm256_add_ps(t, half), _CMP_GE_OQ));
    qi[c] = _mm256_cvttps_epi32(_mm256_or_ps(r, _mm256_and_ps(p, sign)));  // copysign; -0 -> 0
  }
  // int32 -> int8 (the packs work per 128-bit half; the permute puts the 8 groups back in order)
  const __m256i q16a = _mm256_packs_epi32(qi[0], qi[1]), q16b = _mm256_packs_epi32(qi[2], qi[3]);
  const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), q8);
  _mm256_storeu_ps(scale, _mm256_set1_ps(d));
  // corr: -128 * (sum of each 4 consecutive q): 1 x q summed in pairs (int16), then pairs of those
  const __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(corr), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 7)));
}
#endif

/// @brief x [m, k] (row stride ldx) -> acts in the layout above. k % 32 == 0; acts 4-byte aligned.
inline void prepare(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
  TFORMER_ASSERT(k % block == 0);
  TFORMER_ASSERT(reinterpret_cast<std::uintptr_t>(acts) % alignof(float) == 0);
  for (std::int64_t i = 0; i < m; ++i) {
    std::byte* row = acts + i * activations::stride(k);
    auto* q = reinterpret_cast<std::int8_t*>(row);
    auto* scale = reinterpret_cast<float*>(row + k);
    auto* corr = reinterpret_cast<std::int32_t*>(row + 2 * k);
    for (std::int64_t b = 0; b < k / block; ++b) {
#if defined(TFORMER_Q8_ACTIVATIONS_AVX2)
      prepare_block_avx2(x + i * ldx + b * block, q + b * block, scale + b * lanes, corr + b * lanes);
#else
      prepare_block_scalar(x + i * ldx + b * block, q + b * block, scale + b * lanes, corr + b * lanes);
#endif
    }
  }
}

}  // namespace tformer::quant::detail::q8_activations
