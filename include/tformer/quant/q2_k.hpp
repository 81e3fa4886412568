// quant::q2_k: ggml's Q2_K weights, bit-exact with ggml (GGML type 10): 2-bit codes with a 4-bit
// scale and a 4-bit min per sub-block of 16 under two binary16 scales per super-block of 256. A
// block is 84 bytes, unaligned in memory:
//
//   offset 0    uint8 scales[16]   sub-block j (weights 16 j ..): scale scales[j] & 15, min scales[j] >> 4
//   offset 16   uint8 qs[64]       weight t's code: (qs[32 (t / 128) + t % 32] >> 2 ((t % 128) / 32)) & 3
//   offset 80   ggml_half d        IEEE binary16 scale of the sub-block scales, little endian
//   offset 82   ggml_half dmin     IEEE binary16 scale of the sub-block mins
//
//   dl_j = d * (float)(scales[j] & 15), ml_j = dmin * (float)(scales[j] >> 4)   (both exact)
//   weight t = dl_j * (float)q_t - ml_j           (dl_j q_t exact: one rounding, fused or not)
//
// Quantization is ggml's quantize_row_q2_K_ref, per super-block: each sub-block's scale s_j and
// min m_j from make_qkx2_quants(16, 3, x, |x|, L, &m_j, Laux, -0.5, 0.1, 15, use_mad = true) (an
// asymmetric grid min + s q, min <= 0, searched over 16 trial scales (rmin + rdelta is + 3) /
// (max - min), is = 0 .. 15, each fitted by weighted least squares, the one with the least
// weighted absolute error kept); max_scale, max_min = the largest s_j, m_j; when max_scale > 0 the
// 4-bit scales are nearest_int(15 / max_scale * s_j) and d = max_scale / 15, else 0; the same for
// the mins and dmin; then every sub-block whose d16 (scales[j] & 15) != 0 gets new codes
// clamp(nearest_int((x + dmin16 (scales[j] >> 4)) / (d16 (scales[j] & 15))), 0, 3), the others
// keep make_qkx2_quants's. nearest_int rounds halves to even (ggml_rounding.hpp). 2.625 bits per
// weight. "Bit-exact with ggml" means ggml's C evaluated as ISO C writes it, every product
// rounded to float before it is added or subtracted (ggml_rounding.hpp), as ggml's reference
// library built without FMA contraction computes it (tools/make_lowbit_fixtures.py checks that
// library's code and writes its output to the test fixture).
//
// Decode (up to 8 activation rows) runs float_product: the weights of each block made in
// registers as dequantize_row makes them, never written to memory; its loops are
// superblock_dot.hpp's (AVX-512, AVX2 + FMA, and a scalar reference that defines the result).
// int8_activations<q2_k> runs the fused product instead, as ggml does: activations quantized to
// ggml's Q8_K (q8_k.hpp), exact int32 sums per super-block, kquant_dot.hpp's loops (AVX-512 VNNI,
// AVX2, scalar; all three give the same bits).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "format.hpp"
#include "ggml_rounding.hpp"
#include "kquant_dot.hpp"  // the fused int8 product's loops
#include "q8_k.hpp"         // its activations, ggml's Q8_K
#include "q8_activations.hpp"  // half_at, put_half
#include "superblock_dot.hpp"

namespace tformer::quant {

namespace detail::q2_k_kernels {

using ggml_rounding::nearest_int;
using ggml_rounding::rounded;
using superblock_dot::block;                     // weights per super-block
inline constexpr std::int64_t block_bytes = 84;  // 16 bytes of scales + 64 of codes + fp16 d, dmin
inline constexpr std::int64_t sub = 16;          // weights per sub-block
inline constexpr std::int64_t qs_at = 16, d_at = 80, dmin_at = 82;

/// @brief ggml's make_qkx2_quants(16, 3, x, weights, L, &the_min, Laux, -0.5f, 0.1f, 15, true):
/// the codes L [16] (0 .. 3) of a sub-block, its float scale (returned) and its min (the_min >= 0,
/// the grid's offset negated).
inline float make_qkx2_quants(const float* x, const float* weights, std::uint8_t* L, float* the_min) noexcept {
  constexpr int nmax = 3, nstep = 15;
  constexpr float rmin = -0.5f, rdelta = 0.1f;
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = rounded(sum_w * x[0]);  // (else the first += below may absorb the product into an fma)
  for (std::int64_t i = 1; i < sub; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += rounded(w * x[i]);
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    for (std::int64_t i = 0; i < sub; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (std::int64_t i = 0; i < sub; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(l < 0 ? 0 : l > nmax ? nmax : l);
    const float diff = std::fabs(rounded(scale * static_cast<float>(L[i])) + min - x[i]);  // use_mad
    best_error += rounded(weights[i] * diff);
  }
  std::uint8_t Laux[sub];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rounded(rdelta * static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (std::int64_t i = 0; i < sub; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i], fl = static_cast<float>(l);
      sum_l += rounded(w * fl);
      sum_l2 += rounded(w * fl * fl);
      sum_xl += rounded(w * fl * x[i]);
    }
    const float D = rounded(sum_w * sum_l2) - rounded(sum_l * sum_l);
    if (D > 0.0f) {
      float this_scale = (rounded(sum_w * sum_xl) - rounded(sum_x * sum_l)) / D;
      float this_min = (rounded(sum_l2 * sum_x) - rounded(sum_l * sum_xl)) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (std::int64_t i = 0; i < sub; ++i) {
        const float diff = std::fabs(rounded(this_scale * static_cast<float>(Laux[i])) + this_min - x[i]);
        cur_error += rounded(weights[i] * diff);
      }
      if (cur_error < best_error) {
        for (std::int64_t i = 0; i < sub; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// @brief One block of 256 floats -> the 84-byte block at blk (ggml's quantize_row_q2_K_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  constexpr float q4scale = 15.0f;
  std::uint8_t L[block];  // codes 0 .. 3, weight order
  float mins[block / sub], scales[block / sub];
  float max_scale = 0.0f, max_min = 0.0f;
  for (std::int64_t j = 0; j < block / sub; ++j) {
    float weights[sub];  // ggml's weights: |x|
    for (std::int64_t l = 0; l < sub; ++l) weights[l] = std::fabs(x[sub * j + l]);
    scales[j] = make_qkx2_quants(x + sub * j, weights, L + sub * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  auto* sc = reinterpret_cast<std::uint8_t*>(blk);
  if (max_scale > 0.0f) {
    const float iscale = q4scale / max_scale;
    for (std::int64_t j = 0; j < block / sub; ++j) sc[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
    q8_activations::put_half(blk + d_at, max_scale / q4scale);
  } else {
    for (std::int64_t j = 0; j < block / sub; ++j) sc[j] = 0;
    q8_activations::put_half(blk + d_at, 0.0f);
  }
  if (max_min > 0.0f) {
    const float iscale = q4scale / max_min;
    for (std::int64_t j = 0; j < block / sub; ++j)
      sc[j] = static_cast<std::uint8_t>(sc[j] | nearest_int(iscale * mins[j]) << 4);
    q8_activations::put_half(blk + dmin_at, max_min / q4scale);
  } else {
    q8_activations::put_half(blk + dmin_at, 0.0f);
  }
  const float d16 = q8_activations::half_at(blk + d_at), dmin16 = q8_activations::half_at(blk + dmin_at);
  for (std::int64_t j = 0; j < block / sub; ++j) {
    const float d = d16 * static_cast<float>(sc[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = dmin16 * static_cast<float>(sc[j] >> 4);
    for (std::int64_t i = 0; i < sub; ++i) {
      const int l = nearest_int((x[sub * j + i] + dm) / d);
      L[sub * j + i] = static_cast<std::uint8_t>(l < 0 ? 0 : l > 3 ? 3 : l);
    }
  }
  auto* u = reinterpret_cast<std::uint8_t*>(blk);
  for (std::int64_t n = 0; n < block; n += 128)
    for (std::int64_t l = 0; l < 32; ++l)
      u[qs_at + n / 4 + l] = static_cast<std::uint8_t>(L[n + l] | L[n + l + 32] << 2 | L[n + l + 64] << 4 | L[n + l + 96] << 6);
}

/// @brief Q2_K's blocks in superblock_dot's float product (a superblock_dot::block_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;

  /// @brief w [256]: dl_j * q_t - ml_j, ggml's dequantize_row_q2_K.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk + d_at), dmin = q8_activations::half_at(blk + dmin_at);
    const auto* u = reinterpret_cast<const std::uint8_t*>(blk);
    for (std::int64_t j = 0; j < block / sub; ++j) {
      const float dl = d * static_cast<float>(u[j] & 0xF), ml = dmin * static_cast<float>(u[j] >> 4);
      for (std::int64_t i = 0; i < sub; ++i) {
        const std::int64_t t = sub * j + i;
        const int q = (u[qs_at + 32 * (t / 128) + t % 32] >> (2 * ((t % 128) / 32))) & 3;
        w[t] = dl * static_cast<float>(q) - ml;
      }
    }
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief The 32 codes (0 .. 3) of weights 128 n + 32 j .. + 31: sub-blocks 8 n + 2 j, + 1.
  TFORMER_GGML_DOT_INLINE static __m256i codes(__m256i qs, int j) noexcept {
    return _mm256_and_si256(_mm256_srli_epi16(qs, 2 * j), _mm256_set1_epi8(3));
  }
  /// @brief fn(o, c, dl, ml) for each sub-block: c the codes of weights o .. o + 15 (u8), dl and ml
  /// its d * scale and dmin * min (exact products, as dequantize's).
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void for_sub_blocks(const std::byte* blk, Fn&& fn) noexcept {
    const float d = q8_activations::half_at(blk + d_at), dmin = q8_activations::half_at(blk + dmin_at);
    const auto* u = reinterpret_cast<const std::uint8_t*>(blk);
    for (int n = 0; n < 2; ++n) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + qs_at + 32 * n));
      for (int j = 0; j < 4; ++j) {
        const __m256i v = codes(qs, j);
        const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
        for (int h = 0; h < 2; ++h) {
          const std::uint8_t s = u[8 * n + 2 * j + h];
          fn(128 * n + 32 * j + 16 * h, halves[h], d * static_cast<float>(s & 0xF), dmin * static_cast<float>(s >> 4));
        }
      }
    }
  }
  // dl q - ml below: dl q is exact, so the fused form rounds once, as dequantize's
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    for_sub_blocks(blk, [&](int o, __m128i c, float dl, float ml) TFORMER_GGML_DOT_LAMBDA_INLINE {
      const __m256 dl8 = _mm256_set1_ps(dl), ml8 = _mm256_set1_ps(ml);
      fn(o, _mm256_fmsub_ps(dl8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c)), ml8));
      fn(o + 8, _mm256_fmsub_ps(dl8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c, 8))), ml8));
    });
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512F)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    for_sub_blocks(blk, [&](int o, __m128i c, float dl, float ml) TFORMER_GGML_DOT_LAMBDA_INLINE {
      fn(o, _mm512_fmsub_ps(_mm512_set1_ps(dl), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c)), _mm512_set1_ps(ml)));
    });
  }
#endif
};

/// @brief Q2_K's super-blocks in kquant_dot's fused int8 product (a kquant_dot::superblock_policy):
/// w_t = (d s_g) q_t - dmin m_g, s_g and m_g the 4-bit scale and min of group g = t / 16, q_t < 4.
struct fused_blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = true;
  static constexpr std::int32_t zero = 0;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p + d_at); }
  static float dmin(const std::byte* p) noexcept { return q8_activations::half_at(p + dmin_at); }
  static void scales(const std::byte* p, std::int16_t (&s)[16], std::int16_t (&m)[16]) noexcept {
    const auto* u = reinterpret_cast<const std::uint8_t*>(p);
    for (int g = 0; g < 16; ++g) {
      s[g] = static_cast<std::int16_t>(u[g] & 0xF);
      m[g] = static_cast<std::int16_t>(u[g] >> 4);
    }
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* u = reinterpret_cast<const std::uint8_t*>(p + qs_at);
    for (std::int64_t t = 0; t < block; ++t) q[t] = static_cast<std::uint8_t>((u[32 * (t / 128) + t % 32] >> (2 * ((t % 128) / 32))) & 3);
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief q_t for t = 32 part .. 32 part + 31, as u8.
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + qs_at + 32 * (part / 4)));
    return _mm256_and_si256(_mm256_srli_epi16(qs, 2 * (part % 4)), _mm256_set1_epi8(3));
  }
#endif
};

/// @brief The fused product's paths: fused_dot::scalar (the reference), ::avx2, ::avx512vnni where
/// compiled, ::best (the one fused_product uses, named by kquant_dot::best_path).
using fused_dot = kquant_dot::fused<fused_blocks>;

/// @brief The float-activation product's paths: float_dot::scalar (the reference), ::avx2,
/// ::avx512 where compiled, ::best (the one float_product uses, named by best_float_path).
using float_dot = superblock_dot::float_dot<blocks>;
using superblock_dot::best_float_path;

using format_base = superblock_dot::format_base<blocks, &quantize_block>;
using fused_base = kquant_dot::fused_base<fused_blocks>;

}  // namespace detail::q2_k_kernels

/// @brief ggml's Q2_K: super-blocks of 256 2-bit codes with a 4-bit scale and min per 16 and two
/// binary16 scales (84 bytes, 2.625 bits per weight), bit-exact with ggml (see the top of q2_k.hpp).
struct q2_k : detail::q2_k_kernels::format_base, detail::q2_k_kernels::fused_base {
  static constexpr const char* name = "q2_k";
  static constexpr std::int64_t block_size = detail::q2_k_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q2_k_kernels::block_bytes;
  static constexpr double bits_per_weight = 2.625;
  static constexpr std::uint32_t ggml_type = 10;  // GGML_TYPE_Q2_K
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 blocks (ggml's quantize_row_q2_K_ref); n % 256 == 0.
  using detail::q2_k_kernels::format_base::quantize_row;
  /// @brief n / 256 blocks -> y [n]: y[t] = dl_j * q_t - ml_j (ggml's dequantize_row_q2_K; one
  /// rounding, the same fused or not).
  using detail::q2_k_kernels::format_base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory); w points at n packed rows
  /// of row_bytes each, k % 256 == 0. Uses best_float_path.
  using detail::q2_k_kernels::format_base::float_product;

  /// @brief Scratch bytes for m rows of k activations (q8_k::activations).
  using detail::q2_k_kernels::fused_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K blocks (int8 per 256, float scale,
  /// group sums). k % 256 == 0.
  using detail::q2_k_kernels::fused_base::prepare_activations;
  /// @brief The fused int8 product (int8_activations<q2_k>): y[i * ldy + j] = sum_b [d_w d_x
  /// sum_g s_g sum_t q_t qx_t - dmin_w d_x sum_g m_g bsums_g] for i < m, j < n, exact int32 sums
  /// (ggml's vec_dot_q2_K_q8_K's arithmetic); every path gives the same bits (kquant_dot.hpp).
  using detail::q2_k_kernels::fused_base::fused_product;
};

static_assert(fused_format<q2_k>);

}  // namespace tformer::quant
