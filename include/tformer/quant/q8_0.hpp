// quant::q8_0: ggml's Q8_0 weights, bit-exact with ggml (GGUF type 8). A row is cut into blocks of
// 32 weights; a block is 34 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   int8 qs[32]       weight j = (float)qs[j] * (float)d
//
// Quantization is ggml's quantize_row_q8_0_ref: amax = max |x_j|, d = amax / 127 (float),
// id = d != 0 ? 1 / d : 0 (from the float d, before d is rounded to binary16), qs[j] = roundf(x_j * id)
// (half away from zero), and d is stored rounded to nearest even. 8.5 bits per weight.
//
// The fused product (decode, up to 8 activation rows) quantizes the activations the same way, per
// block of 32, keeping each scale in float, and multiplies int8 by int8 with exact int32 sums per
// block; the blocks' float sums accumulate with fma: y[i, j] = sum_b (d_w[j,b] * d_x[i,b]) * sum_t
// qw[j,b,t] * qx[i,b,t], as ggml's ggml_vec_dot_q8_0_q8_0. Three compiled paths, chosen at compile
// time like the rest of the library: AVX-512 VNNI, AVX2 + FMA, and a scalar reference that defines
// the result. No path writes dequantized weights to memory.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "format.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define TFORMER_Q8_0_AVX512VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q8_0_AVX2 1
#endif
#if defined(TFORMER_Q8_0_AVX512VNNI) || defined(TFORMER_Q8_0_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::q8_0_kernels {

inline constexpr std::int64_t block = 32;        // weights (and activations) per block
inline constexpr std::int64_t block_bytes = 34;  // 2-byte fp16 scale + 32 int8
inline constexpr std::int64_t max_rows = 8;      // activation rows that share one read of a weight row
inline constexpr std::int64_t lanes = block / 4;  // int32 lanes of one block's products (4 bytes each)

/// @brief The binary16 bits of the scale of the block at p (blocks are unaligned; stored little endian).
inline std::uint16_t scale_bits(const std::byte* p) noexcept {
  std::uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native == std::endian::big) bits = static_cast<std::uint16_t>((bits >> 8) | (bits << 8));
  return bits;
}
/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return static_cast<float>(tformer::f16::from_bits(scale_bits(p))); }

/// @brief The 32 int8 weights of the block at p.
inline const std::int8_t* quants_of(const std::byte* p) noexcept { return reinterpret_cast<const std::int8_t*>(p + 2); }

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
// corr serves the VNNI path's +128 shift (see dot_avx512vnni). Offsets k and 2k are multiples of
// 32, so with the workspace's 64-byte aligned base every vector load of 32 bytes is aligned.
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

/// @brief One block of activations x [32] -> q [32], scale [8], corr [8] (the layout above).
inline void prepare_block_scalar(const float* x, std::int8_t* q, float* scale, std::int32_t* corr) noexcept {
  const float d = quantize_block(x, q);
  for (std::int64_t l = 0; l < lanes; ++l) {
    const std::int8_t* g = q + 4 * l;  // the 4 activations of lane l
    scale[l] = d;
    corr[l] = -128 * (g[0] + g[1] + g[2] + g[3]);
  }
}

#if defined(TFORMER_Q8_0_AVX2)
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
#if defined(TFORMER_Q8_0_AVX2)
      prepare_block_avx2(x + i * ldx + b * block, q + b * block, scale + b * lanes, corr + b * lanes);
#else
      prepare_block_scalar(x + i * ldx + b * block, q + b * block, scale + b * lanes, corr + b * lanes);
#endif
    }
  }
}

/// @brief Calls fn.template operator()<R>(i0) for each group of R <= max_rows activation rows
/// starting at i0, with R a compile-time constant (the SIMD paths keep R accumulators in registers).
template <class Fn>
void for_row_groups(std::int64_t m, Fn&& fn) {
  for (std::int64_t i0 = 0; i0 < m; i0 += max_rows) {
    switch (std::min(max_rows, m - i0)) {
      case 1: fn.template operator()<1>(i0); break;
      case 2: fn.template operator()<2>(i0); break;
      case 3: fn.template operator()<3>(i0); break;
      case 4: fn.template operator()<4>(i0); break;
      case 5: fn.template operator()<5>(i0); break;
      case 6: fn.template operator()<6>(i0); break;
      case 7: fn.template operator()<7>(i0); break;
      default: fn.template operator()<8>(i0); break;
    }
  }
}

// Every path below: acts from prepare (m rows of k activations), w -> n packed weight rows of
// row_bytes each, y[i * ldy + j] for i < m, j < n. The loops run weight row j outermost and, for
// each block of it, every activation row of the group: a weight block is loaded once (from L1 at
// worst) for up to 8 rows, while the activations (3k bytes a row) stay in L1 / L2.

/// @brief The scalar reference, which defines the product: per block an exact int32 sum of int8 x
/// int8 (every weight byte, -128 included; activations are in [-127, 127]), then
/// acc = fma(d_w * d_x, (float)sum, acc) block after block. The SIMD paths compute the same exact
/// integer sums and the same float scales d_w * d_x, and differ only in the order of the float sums.
inline void dot_scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                       std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      float acc[R] = {};
      for (std::int64_t b = 0; b < nb; ++b) {
        const float dw = scale_of(wr + b * block_bytes);
        const std::int8_t* qw = quants_of(wr + b * block_bytes);
        for (int r = 0; r < R; ++r) {
          const std::int8_t* qx = activations::q(acts, k, i0 + r) + b * block;
          std::int32_t sum = 0;  // |sum| <= 32 * 128 * 127 < 2^24: exact as a float too
          for (std::int64_t t = 0; t < block; ++t) sum += static_cast<std::int32_t>(qw[t]) * qx[t];
          const float dx = activations::scale(acts, k, i0 + r)[b * lanes];
          acc[r] = std::fma(dw * dx, static_cast<float>(sum), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
    }
  });
}

#if defined(TFORMER_Q8_0_AVX2)
/// @brief The 8 lanes of v, summed (a fixed order: halves, then pairs).
inline float hsum(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// @brief AVX2 + FMA, one 32-byte block per register, ggml's sign trick: maddubs multiplies u8 by
/// s8, so the weights go in as |w| (u8) and their sign moves onto the activations, sign(x, w).
/// -128: |w| of the byte -128 is 0x80 = 128 read as u8, so -128 weights are exact (ggml's
/// orientation gives the same); the trick would break only for an activation of -128 under a
/// negative weight (sign_epi8 wraps -(-128) to -128), and activations are in [-127, 127].
/// Pairs in maddubs stay below int16 saturation: 2 * 128 * 127 = 32512 < 32767.
inline void dot_avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m256i ones = _mm256_set1_epi16(1);
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m256 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::byte* blk = wr + b * block_bytes;
        const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk)));
        const __m256i aw = _mm256_abs_epi8(qw);  // |w| as u8 (-128 -> 128)
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block));
          const __m256i sxw = _mm256_sign_epi8(x, qw);  // x * sign(w) (0 where w = 0)
          // 32 products -> 16 int16 pair sums -> 8 int32 lanes of 4 products each (exact)
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sxw), ones);
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = hsum(acc[r]);
    }
  });
}
#endif

#if defined(TFORMER_Q8_0_AVX512VNNI)
/// @brief [d_a x 8, d_b x 8]: the scales of two blocks, one per int32 lane of their products.
inline __m512 scale_pair(const std::byte* a, const std::byte* b) noexcept {
  const __m128i ha = _mm_set1_epi16(static_cast<short>(scale_bits(a)));
  const __m128i hb = _mm_set1_epi16(static_cast<short>(scale_bits(b)));
  return _mm512_cvtph_ps(_mm256_set_m128i(hb, ha));  // exact, subnormals included
}

/// @brief AVX-512 VNNI: two blocks per 512-bit register, vpdpbusd (u8 x s8, 4 products summed per
/// int32 lane, no saturation) with the +128 shift on the weights rather than the sign trick:
///   sum_t (w_t + 128) x_t - 128 sum_t x_t = sum_t w_t x_t,
/// where w + 128 is w ^ 0x80 read as u8, formed once per weight block for all the activation rows,
/// and -128 * sum x comes per lane from the scratch (corr) as dpbusd's starting accumulator. Why:
/// AVX-512 has no vpsignb, so the sign trick would cost a mask and a masked subtract per activation
/// row and block, while the shift costs one xor per weight block and nothing per row (the
/// correction is a load); and it is exact for every int8 byte on either side, -128 included.
/// The usual form shifts the activations and subtracts 128 * the weights' sums, precomputed at
/// packing; ggml's blocks carry no such sums, so here the weights are shifted and the sums are
/// the activations', made once in prepare.
/// A row with an odd number of blocks ends with one block in the lower half of a register.
inline void dot_avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                           std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    const std::int32_t* cx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
      cx[r] = activations::corr(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        // blocks b, b + 1: 64 weights (two unaligned 32-byte loads), shifted to u8
        const std::byte* blk = wr + b * block_bytes;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk)));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk + block_bytes)));
        const __m512i wu = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
        const __m512 dw = scale_pair(blk, blk + block_bytes);
        for (int r = 0; r < R; ++r) {
          // 16 lanes of 4 exact products each: corr + sum (w + 128) x = sum w x
          __m512i p = _mm512_loadu_si512(cx[r] + b * lanes);
          p = _mm512_dpbusd_epi32(p, wu, _mm512_loadu_si512(qx[r] + b * block));
          const __m512 s = _mm512_mul_ps(dw, _mm512_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc[r]);
        }
      }
      if (b < nb) {
        // the last, odd block: 8 lanes in 256 bits (AVX512VL), added into the lower half of acc
        const std::byte* blk = wr + b * block_bytes;
        const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(blk))),
                                            _mm512_castsi512_si256(flip));
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cx[r] + b * lanes));
          p = _mm256_dpbusd_epi32(p, wu, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block)));
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));
          // lanes 0..7: s * p + acc; lanes 8..15 keep acc (the undefined upper halves are masked off)
          acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(s), _mm512_castps256_ps512(_mm256_cvtepi32_ps(p)),
                                         acc[r], 0x00FF);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
    }
  });
}
#endif

/// @brief The name of the path fused_product uses in this build.
#if defined(TFORMER_Q8_0_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_Q8_0_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

}  // namespace detail::q8_0_kernels

/// @brief ggml's Q8_0: blocks of 32 int8 weights with one binary16 scale each (34 bytes, 8.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q8_0.hpp).
struct q8_0 {
  static constexpr const char* name = "q8_0";
  static constexpr std::int64_t block_size = detail::q8_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q8_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 8.5;
  static constexpr std::int64_t max_fused_rows = detail::q8_0_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q8_0_ref); n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      std::byte* blk = blocks + b * block_bytes;
      std::int8_t q[block_size];
      const float d = detail::q8_0_kernels::quantize_block(x + b * block_size, q);
      std::uint16_t bits = tformer::f16(d).bits;  // round to nearest even (ggml's GGML_FP32_TO_FP16)
      if constexpr (std::endian::native == std::endian::big) bits = static_cast<std::uint16_t>((bits >> 8) | (bits << 8));
      std::memcpy(blk, &bits, sizeof bits);
      std::memcpy(blk + 2, q, sizeof q);
    }
  }
  /// @brief n / 32 blocks -> y [n]: y[j] = (float)qs[j] * d, a float multiply (ggml's dequantize_row_q8_0).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q8_0_kernels::scale_of(blk);
      const std::int8_t* q = detail::q8_0_kernels::quants_of(blk);
      for (std::int64_t j = 0; j < block_size; ++j) y[b * block_size + j] = static_cast<float>(q[j]) * d;
    }
  }

  /// @brief Scratch bytes for m rows of k activations (3k a row, rounded up to 64; layout in
  /// detail::q8_0_kernels::activations).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return static_cast<std::size_t>(m * detail::q8_0_kernels::activations::stride(k));
  }
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32, float scale amax / 127 per
  /// block (ggml's rounding), and the per-lane sums the VNNI path needs. k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::q8_0_kernels::prepare(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t qw[j,b,t] qx[i,b,t] for i < m, j < n; w points
  /// at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_Q8_0_AVX512VNNI)
    detail::q8_0_kernels::dot_avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_Q8_0_AVX2)
    detail::q8_0_kernels::dot_avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    detail::q8_0_kernels::dot_scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

static_assert(fused_format<q8_0>);

}  // namespace tformer::quant
