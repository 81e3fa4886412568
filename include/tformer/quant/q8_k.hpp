// ggml's Q8_K: the int8 activations that ggml multiplies its K-quant weights by (Q2_K .. Q6_K,
// IQ4_XS, TQ2_0), one block per 256 activations, bit-exact with ggml's quantize_row_q8_K_ref. A
// block is ggml's block_q8_K, 292 bytes, native byte order (the scratch of a product, never a file):
//
//   offset 0     float d            the scale: 1 / iscale
//   offset 4     int8 qs[256]       q_j = MIN(127, nearest_int(iscale * x_j)), in [-127, 127]
//   offset 260   int16 bsums[16]    bsums[g] = sum of q_j over the group j / 16 = g
//
// with max = the x_j of largest magnitude (the first on ties) and iscale = -127 / max; an all-zero
// block gets d = 0, qs = 0 (and bsums = 0: ggml leaves its bsums unwritten there). iscale * x_j is
// rounded to float before nearest_int adds 1.5 * 2^23 (ISO C evaluation; see kquant.hpp), so q_j is
// x_j * iscale rounded to nearest, ties to even. For a NaN or an infinity (no int8 value) ggml's
// bit trick gives what it gives, and so does this code, on every path.
//
// The activation scratch of a product: m rows of activations::stride(k) bytes (a multiple of 64),
// row i at acts + i * stride(k) holding the k / 256 blocks of that row back to back.
// quantize_block (the path prepare uses) is the AVX2 one where compiled, which equals
// quantize_block_ref for every input (test_q8_k checks both against ggml's bytes).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "kquant.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q8_K_AVX2 1
#include <immintrin.h>
#endif

namespace tformer::quant::detail::q8_k {

inline constexpr std::int64_t block = kquant::super_block;  // activations per block (QK_K = 256)
inline constexpr std::int64_t block_bytes = 292;            // float d + 256 int8 + 16 int16
inline constexpr std::int64_t max_rows = 8;                 // activation rows that share one read of a weight row
inline constexpr std::int64_t qs_at = 4;                    // byte offset of qs in a block
inline constexpr std::int64_t bsums_at = 260;               // byte offset of bsums in a block

/// @brief The scale d of the block at blk.
inline float scale_of(const std::byte* blk) noexcept {
  float d;
  std::memcpy(&d, blk, sizeof d);
  return d;
}
/// @brief The 256 int8 activations of the block at blk.
inline const std::int8_t* q_of(const std::byte* blk) noexcept { return reinterpret_cast<const std::int8_t*>(blk + qs_at); }
/// @brief bsums[g] (g < 16) of the block at blk: the sum of its activations 16 g .. 16 g + 15.
inline std::int16_t bsum_of(const std::byte* blk, int g) noexcept {
  std::int16_t s;
  std::memcpy(&s, blk + bsums_at + 2 * g, sizeof s);
  return s;
}

/// @brief Writes d, zero qs and bsums from q (qs already at blk + 4).
inline void finish_block(std::byte* blk, float d) noexcept {
  std::memcpy(blk, &d, sizeof d);
  const std::int8_t* q = q_of(blk);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int t = 0; t < 16; ++t) sum += q[16 * g + t];
    const auto s = static_cast<std::int16_t>(sum);  // |sum| <= 16 * 127
    std::memcpy(blk + bsums_at + 2 * g, &s, sizeof s);
  }
}

/// @brief One block of 256 floats x -> the 292-byte block at blk: ggml's quantize_row_q8_K_ref
/// step by step (the reference every other path equals).
inline void quantize_block_ref(const float* x, std::byte* blk) noexcept {
  float max = 0, amax = 0;
  for (std::int64_t j = 0; j < block; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  auto* q = reinterpret_cast<std::int8_t*>(blk + qs_at);
  if (amax == 0.0f) {
    std::memset(q, 0, block);
    finish_block(blk, 0.0f);
    return;
  }
  const float iscale = -127.f / max;
  for (std::int64_t j = 0; j < block; ++j) {
    const int v = kquant::nearest_int(kquant::mul(iscale, x[j]));
    q[j] = static_cast<std::int8_t>(v < 127 ? v : 127);
  }
  finish_block(blk, 1 / iscale);
}

#if defined(TFORMER_Q8_K_AVX2)
/// @brief quantize_block_ref in AVX2, with identical bytes for every input: amax is a max (exact
/// in any order), max the first x_j of that magnitude, iscale and d the same scalar divisions,
/// iscale * x_j the same float products, and rounding to nearest even (vroundps) is nearest_int
/// for |iscale * x_j| <= 127 (1 + 2^-23). A block with a NaN or an infinity, or whose 127 / amax
/// overflows (amax < 3.8e-37), goes to quantize_block_ref (nearest_int's bit trick on non-finite
/// products, which vroundps does not reproduce).
inline void quantize_block_avx2(const float* x, std::byte* blk) noexcept {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m8 = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
  for (std::int64_t j = 0; j < block; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    m8 = _mm256_max_ps(m8, _mm256_andnot_ps(sign, v));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  if (_mm256_movemask_ps(nan) != 0 || !(amax <= 3.4028234663852886e38f) || (amax != 0.0f && amax < 3.8e-37f)) {
    quantize_block_ref(x, blk);  // a NaN, an infinity, or 127 / amax overflowing: ggml's bit tricks
    return;
  }
  auto* q = reinterpret_cast<std::int8_t*>(blk + qs_at);
  if (amax == 0.0f) {
    std::memset(q, 0, block);
    finish_block(blk, 0.0f);
    return;
  }
  float max = amax;
  const __m256 a8 = _mm256_set1_ps(amax);
  for (std::int64_t j = 0; j < block; j += 8) {  // the first x_j with |x_j| = amax
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), a8, _CMP_EQ_OQ));
    if (hit != 0) {
      max = x[j + __builtin_ctz(static_cast<unsigned>(hit))];
      break;
    }
  }
  const float iscale = -127.f / max;
  const __m256 is8 = _mm256_set1_ps(iscale);
  for (std::int64_t j = 0; j < block; j += 32) {
    __m256i v[4];
    for (int c = 0; c < 4; ++c) {
      const __m256 p = _mm256_mul_ps(is8, _mm256_loadu_ps(x + j + 8 * c));
      v[c] = _mm256_cvtps_epi32(_mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // int32 in [-127, 127] -> int8 (the packs work per 128-bit half; the permute restores the order)
    const __m256i p16a = _mm256_packs_epi32(v[0], v[1]), p16b = _mm256_packs_epi32(v[2], v[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j), p8);
  }
  finish_block(blk, 1 / iscale);
}
#endif

/// @brief The path prepare uses: quantize_block_avx2 where compiled, else quantize_block_ref.
inline void quantize_block(const float* x, std::byte* blk) noexcept {
#if defined(TFORMER_Q8_K_AVX2)
  quantize_block_avx2(x, blk);
#else
  quantize_block_ref(x, blk);
#endif
}

/// @brief x [k] -> k / 256 blocks at blocks (ggml's quantize_row_q8_K_ref); k % 256 == 0.
inline void quantize_row(const float* x, std::byte* blocks, std::int64_t k) noexcept {
  TFORMER_ASSERT(k % block == 0);
  for (std::int64_t b = 0; b < k / block; ++b) quantize_block(x + b * block, blocks + b * block_bytes);
}

/// @brief The activation scratch: row i of m at acts + i * stride(k), its k / 256 blocks back to back.
struct activations {
  static constexpr std::int64_t stride(std::int64_t k) noexcept { return (k / block * block_bytes + 63) / 64 * 64; }
  /// @brief Block b of activation row i.
  static const std::byte* block_at(const std::byte* acts, std::int64_t k, std::int64_t i, std::int64_t b) noexcept {
    return acts + i * stride(k) + b * block_bytes;
  }
};

/// @brief Scratch bytes for m rows of k activations.
inline std::size_t bytes(std::int64_t m, std::int64_t k) noexcept { return static_cast<std::size_t>(m * activations::stride(k)); }

/// @brief x [m, k] (row stride ldx) -> acts, Q8_K blocks row by row. k % 256 == 0.
inline void prepare(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) noexcept {
  TFORMER_ASSERT(k % block == 0);
  for (std::int64_t i = 0; i < m; ++i) quantize_row(x + i * ldx, acts + i * activations::stride(k), k);
}

}  // namespace tformer::quant::detail::q8_k
