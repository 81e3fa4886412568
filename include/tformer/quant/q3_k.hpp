// quant::q3_k: ggml's Q3_K weights, bit-exact with ggml (GGML type 11): 3-bit signed codes with a
// 6-bit signed scale per sub-block of 16 under one binary16 scale per super-block of 256. A block
// is 110 bytes, unaligned in memory:
//
//   offset 0     uint8 hmask[32]    the codes' high bits: weight t's is bit t / 32 of hmask[t % 32]
//   offset 32    uint8 qs[64]       the low 2 bits: weight t's are (qs[32 (t / 128) + t % 32] >>
//                                   2 ((t % 128) / 32)) & 3
//   offset 96    uint8 scales[12]   the 16 6-bit scales: sub-block j (weights 16 j ..)'s low nibble
//                                   is scales[j] & 15 (j < 8) or scales[j - 8] >> 4 (j >= 8), its
//                                   high 2 bits (scales[8 + j % 4] >> 2 (j / 4)) & 3
//   offset 108   ggml_half d        IEEE binary16 super-block scale, little endian
//
//   sc_j = the 6 bits - 32 (-32 .. 31), dl_j = d * (float)sc_j (exact),
//   weight t = dl_j * (float)(low2 - (high bit ? 0 : 4))    (exact: codes -4 .. 3)
//
// Quantization is ggml's quantize_row_q3_K_ref, per super-block: each sub-block's scale s_j and
// codes from make_q3_quants(16, 4, x, L, do_rmse = true) (the codes nearest to iscale x with iscale
// = -4 / max, max the x of largest magnitude, then up to 5 passes that move one code at a time when
// that raises sumlx^2 / suml2 under the weights x^2; s = sumlx / suml2; a sub-block whose |max| <
// 1e-15 gets s = 0 and codes L = 0), max_scale = the s_j of largest magnitude (the first on ties);
// when max_scale != 0: iscale = -32 / max_scale, the 6-bit scales clamp(nearest_int(iscale s_j),
// -32, 31) + 32, d = 1 / iscale, else d = 0 and every scale byte 0; then every sub-block whose
// d16 * sc_j != 0 (d16 the stored d) gets new codes clamp(nearest_int(x / (d16 sc_j)), -4, 3) + 4,
// the others keep make_q3_quants's. nearest_int rounds halves to even (ggml_rounding.hpp). 3.4375
// bits per weight. "Bit-exact with ggml" means ggml's C evaluated as ISO C writes it, every
// product rounded to float before it is added or subtracted (ggml_rounding.hpp), as ggml's
// reference library built without FMA contraction computes it (tools/make_lowbit_fixtures.py
// checks that library's code and writes its output to the test fixture).
//
// Decode (up to 8 activation rows) runs float_product: the weights of each block made in
// registers as dequantize_row makes them, never written to memory; its loops are
// superblock_dot.hpp's (AVX-512, AVX2 + FMA, and a scalar reference that defines the result).
// int8_activations<q3_k> runs the fused product instead, as ggml does: activations quantized to
// ggml's Q8_K (q8_k.hpp), exact int32 sums per super-block (ggml's vec_dot_q3_K_q8_K's arithmetic),
// kquant_dot.hpp's loops (AVX-512 VNNI, AVX2, scalar; all three give the same bits).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "format.hpp"
#include "ggml_rounding.hpp"
#include "q8_activations.hpp"  // half_at, put_half
#include "kquant_dot.hpp"  // the fused int8 product's loops
#include "q8_k.hpp"         // its activations, ggml's Q8_K
#include "superblock_dot.hpp"

namespace tformer::quant {

namespace detail::q3_k_kernels {

using ggml_rounding::nearest_int;
using ggml_rounding::rounded;
using superblock_dot::block;                      // weights per super-block
inline constexpr std::int64_t block_bytes = 110;  // 32 + 64 + 12 bytes + fp16 d
inline constexpr std::int64_t sub = 16;           // weights per sub-block
inline constexpr std::int64_t qs_at = 32, scales_at = 96, d_at = 108;

/// @brief The 16 sub-block scales sc_j (-32 .. 31) of the block at p.
inline void sub_scales(const std::byte* p, int* sc) noexcept {
  const auto* s = reinterpret_cast<const std::uint8_t*>(p + scales_at);
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    sc[j] = (low | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
  }
}

/// @brief ggml's make_q3_quants(16, 4, x, L, true): the codes L [16] (0 .. 7) of a sub-block and
/// its float scale.
inline float make_q3_quants(const float* x, std::int8_t* L) noexcept {
  constexpr int nmax = 4;
  float max = 0.0f, amax = 0.0f;
  for (std::int64_t i = 0; i < sub; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // GROUP_MAX_EPS: all zero
    for (std::int64_t i = 0; i < sub; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (std::int64_t i = 0; i < sub; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    L[i] = static_cast<std::int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += rounded(w * x[i] * static_cast<float>(l));
    suml2 += rounded(w * static_cast<float>(l) * static_cast<float>(l));
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (std::int64_t i = 0; i < sub; ++i) {
      const float w = x[i] * x[i];
      const auto li = static_cast<float>(L[i]);
      float slx = sumlx - rounded(w * x[i] * li);
      if (slx > 0.0f) {
        float sl2 = suml2 - rounded(w * li * li);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = new_l < -nmax ? -nmax : new_l > nmax - 1 ? nmax - 1 : new_l;
        if (new_l != L[i]) {
          const auto nl = static_cast<float>(new_l);
          slx += rounded(w * x[i] * nl);
          sl2 += rounded(w * nl * nl);
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (std::int64_t i = 0; i < sub; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/// @brief One block of 256 floats -> the 110-byte block at blk (ggml's quantize_row_q3_K_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  std::int8_t L[block];  // codes 0 .. 7, weight order
  float scales[block / sub];
  float max_scale = 0.0f, amax = 0.0f;
  for (std::int64_t j = 0; j < block / sub; ++j) {
    scales[j] = make_q3_quants(x + sub * j, L + sub * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  auto* u = reinterpret_cast<std::uint8_t*>(blk);
  std::uint8_t* sc = u + scales_at;
  std::memset(sc, 0, 12);
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < 16; ++j) {
      int l = static_cast<std::int8_t>(nearest_int(iscale * scales[j]));  // ggml stores it in an int8_t
      l = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
      if (j < 8) sc[j] = static_cast<std::uint8_t>(l & 0xF);
      else sc[j - 8] = static_cast<std::uint8_t>(sc[j - 8] | (l & 0xF) << 4);
      l >>= 4;
      sc[j % 4 + 8] = static_cast<std::uint8_t>(sc[j % 4 + 8] | l << (2 * (j / 4)));
    }
    q8_activations::put_half(blk + d_at, 1.0f / iscale);
  } else {
    q8_activations::put_half(blk + d_at, 0.0f);
  }
  const float d16 = q8_activations::half_at(blk + d_at);
  int s[16];
  sub_scales(blk, s);
  for (std::int64_t j = 0; j < block / sub; ++j) {
    const float d = d16 * static_cast<float>(s[j]);
    if (d == 0.0f) continue;
    for (std::int64_t i = 0; i < sub; ++i) {
      int l = nearest_int(x[sub * j + i] / d);
      l = l < -4 ? -4 : l > 3 ? 3 : l;
      L[sub * j + i] = static_cast<std::int8_t>(l + 4);
    }
  }
  // the high bits: weight t's in bit t / 32 of hmask[t % 32]; the low 2 bits packed as Q2_K's
  std::memset(u, 0, 32);
  for (std::int64_t t = 0; t < block; ++t) {
    if (L[t] > 3) {
      u[t % 32] = static_cast<std::uint8_t>(u[t % 32] | 1u << (t / 32));
      L[t] = static_cast<std::int8_t>(L[t] - 4);
    }
  }
  for (std::int64_t n = 0; n < block; n += 128)
    for (std::int64_t l = 0; l < 32; ++l)
      u[qs_at + n / 4 + l] =
          static_cast<std::uint8_t>(L[n + l] | L[n + l + 32] << 2 | L[n + l + 64] << 4 | L[n + l + 96] << 6);
}

/// @brief Q3_K's blocks in superblock_dot's float product (a superblock_dot::block_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;

  /// @brief w [256]: dl_j * (float)code_t, ggml's dequantize_row_q3_K.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk + d_at);
    const auto* u = reinterpret_cast<const std::uint8_t*>(blk);
    int sc[16];
    sub_scales(blk, sc);
    for (std::int64_t t = 0; t < block; ++t) {
      const int low = (u[qs_at + 32 * (t / 128) + t % 32] >> (2 * ((t % 128) / 32))) & 3;
      const int high = (u[t % 32] >> (t / 32)) & 1;
      w[t] = d * static_cast<float>(sc[t / sub]) * static_cast<float>(low - (high ? 0 : 4));
    }
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief The 32 codes (int8, -4 .. 3) of weights 128 n + 32 j .. + 31: sub-blocks 8 n + 2 j and
  /// 8 n + 2 j + 1.
  TFORMER_GGML_DOT_INLINE static __m256i codes(__m256i qs, __m256i hmask, int n, int j) noexcept {
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * j), _mm256_set1_epi8(3));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * n + j), _mm256_set1_epi8(1));
    return _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 2)), _mm256_set1_epi8(4));
  }
  /// @brief fn(o, c, dl) for each sub-block: c the codes of weights o .. o + 15 (int8), dl its
  /// d * scale (an exact product, as dequantize's).
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void for_sub_blocks(const std::byte* blk, Fn&& fn) noexcept {
    const float d = q8_activations::half_at(blk + d_at);
    int sc[16];
    sub_scales(blk, sc);
    const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk));
    for (int n = 0; n < 2; ++n) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + qs_at + 32 * n));
      for (int j = 0; j < 4; ++j) {
        const __m256i v = codes(qs, hmask, n, j);
        const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
        for (int h = 0; h < 2; ++h)
          fn(128 * n + 32 * j + 16 * h, halves[h], d * static_cast<float>(sc[8 * n + 2 * j + h]));
      }
    }
  }
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    for_sub_blocks(blk, [&](int o, __m128i c, float dl) TFORMER_GGML_DOT_LAMBDA_INLINE {
      const __m256 dl8 = _mm256_set1_ps(dl);
      fn(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)), dl8));
      fn(o + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c, 8))), dl8));
    });
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512F)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    for_sub_blocks(blk, [&](int o, __m128i c, float dl) TFORMER_GGML_DOT_LAMBDA_INLINE {
      fn(o, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), _mm512_set1_ps(dl)));
    });
  }
#endif
};

/// @brief Q3_K's super-blocks in kquant_dot's fused int8 product (a kquant_dot::superblock_policy):
/// w_t = (d s_g) (q_t - 4), s_g = sc_g (signed), q_t = low 2 bits | high bit << 2, below 8.
struct fused_blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = false;
  static constexpr std::int32_t zero = 4;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p + d_at); }
  static void scales(const std::byte* p, std::int16_t (&s)[16], std::int16_t (&m)[16]) noexcept {
    int sc[16];
    sub_scales(p, sc);
    for (int g = 0; g < 16; ++g) {
      s[g] = static_cast<std::int16_t>(sc[g]);
      m[g] = 0;
    }
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* u = reinterpret_cast<const std::uint8_t*>(p);
    for (std::int64_t t = 0; t < block; ++t) {
      const int low = (u[qs_at + 32 * (t / 128) + t % 32] >> (2 * ((t % 128) / 32))) & 3;
      q[t] = static_cast<std::uint8_t>(low | ((u[t % 32] >> (t / 32)) & 1) << 2);
    }
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief q_t for t = 32 part .. 32 part + 31, as u8 (0 .. 7).
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + qs_at + 32 * (part / 4)));
    const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * (part % 4)), _mm256_set1_epi8(3));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hmask, part), _mm256_set1_epi8(1));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
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

}  // namespace detail::q3_k_kernels

/// @brief ggml's Q3_K: super-blocks of 256 3-bit codes with a 6-bit scale per 16 and one binary16
/// scale (110 bytes, 3.4375 bits per weight), bit-exact with ggml (see the top of q3_k.hpp).
struct q3_k : detail::q3_k_kernels::format_base, detail::q3_k_kernels::fused_base {
  static constexpr const char* name = "q3_k";
  static constexpr std::int64_t block_size = detail::q3_k_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q3_k_kernels::block_bytes;
  static constexpr double bits_per_weight = 3.4375;
  static constexpr std::uint32_t ggml_type = 11;  // GGML_TYPE_Q3_K
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 blocks (ggml's quantize_row_q3_K_ref); n % 256 == 0.
  using detail::q3_k_kernels::format_base::quantize_row;
  /// @brief n / 256 blocks -> y [n]: y[t] = (d * sc_j) * code_t (ggml's dequantize_row_q3_K; exact).
  using detail::q3_k_kernels::format_base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory); w points at n packed rows
  /// of row_bytes each, k % 256 == 0. Uses best_float_path.
  using detail::q3_k_kernels::format_base::float_product;

  /// @brief Scratch bytes for m rows of k activations (q8_k::activations).
  using detail::q3_k_kernels::fused_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K blocks (int8 per 256, float scale,
  /// group sums). k % 256 == 0.
  using detail::q3_k_kernels::fused_base::prepare_activations;
  /// @brief The fused int8 product (int8_activations<q3_k>): y[i * ldy + j] = sum_b d_w d_x sum_g
  /// s_g (sum_t q_t qx_t - 4 bsums_g) for i < m, j < n, exact int32 sums; every path gives the
  /// same bits (kquant_dot.hpp).
  using detail::q3_k_kernels::fused_base::fused_product;
};

static_assert(fused_format<q3_k>);

}  // namespace tformer::quant
