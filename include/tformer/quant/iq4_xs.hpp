// quant::iq4_xs: ggml's IQ4_XS weights, bit-exact with ggml (GGML type 23): IQ4_NL's 4-bit indices
// into 16 non-linear int8 levels (iq4_nl.hpp's kvalues), with a 6-bit scale per sub-block of 32
// under one binary16 scale per super-block of 256. A block is 136 bytes, unaligned in memory:
//
//   offset 0    ggml_half d         IEEE binary16 super-block scale, little endian
//   offset 2    uint16 scales_h     bits 2 ib, 2 ib + 1: the high 2 bits of sub-block ib's scale
//   offset 4    uint8 scales_l[4]   the low 4 bits: sub-block ib in scales_l[ib / 2] >> 4 (ib % 2)
//   offset 8    uint8 qs[128]       sub-block ib (weights 32 ib ..): qs[16 ib + j] holds index j
//                                   (low nibble) and j + 16 (high nibble), j < 16
//
//   ls_ib = scales_l bits | scales_h bits << 4 (0 .. 63), dl_ib = d * (float)(ls_ib - 32) (exact),
//   weight 32 ib + t = dl_ib * (float)kvalues[index]       (one rounding)
//
// Quantization is ggml's quantize_row_iq4_xs_ref (quantize_iq4_xs without importance weights:
// quantize_row_iq4_nl_impl(256, 32, ..., ntry = 7)), per super-block:
//  - per sub-block of 32, with weights w_j = x_j * x_j and max = the x_j of largest magnitude (the
//    first on ties): when |max| < 1e-15 (GROUP_MAX_EPS) its scale s_ib = 0; otherwise d = -max /
//    -127, id = 1 / d, l_j = best_index(id * x_j) (iq4_nl.hpp: the nearest level, the upper on a
//    tie), s = sumqx / sumq2 (0 unless sumq2 > 0) with sumqx = sum_j (w_j q_j) x_j, sumq2 = sum_j
//    (w_j q_j) q_j in float, j in order, best = s * sumqx; then for itry = -7 .. 7, id = (itry -
//    127) / max and the same sums: when sumq2 > 0 and sumqx^2 > best * sumq2, s = sumqx / sumq2
//    and best = s * sumqx. max_scale = the s_ib of largest magnitude (the first on ties).
//  - d = -max_scale / 32 (float; stored rounded to nearest even, the float used below), id = d != 0
//    ? 1 / d : 0, per sub-block l = clamp(nearest_int(id * s_ib), -32, 31) (halves to even), dl =
//    d * l, idl = dl != 0 ? 1 / dl : 0, index_j = best_index(idl * x_j), and ls = l + 32.
// 4.25 bits per weight. "Bit-exact with ggml" means ggml's C evaluated as ISO C writes it, every
// product rounded to float before it is added (ggml_rounding.hpp), as ggml's reference library
// built without FMA contraction computes it (tools/make_lowbit_fixtures.py checks that library's
// code and writes its output to the test fixture).
//
// Decode (up to 8 activation rows) runs float_product: the weights of each block made in
// registers as dequantize_row makes them (the levels from a byte shuffle of the indices), never
// written to memory; its loops are superblock_dot.hpp's (AVX-512, AVX2 + FMA, scalar reference).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "format.hpp"
#include "ggml_rounding.hpp"
#include "iq4_nl.hpp"  // kvalues, best_index, level_table
#include "q8_activations.hpp"
#include "superblock_dot.hpp"

namespace tformer::quant {

namespace detail::iq4_xs_kernels {

using ggml_rounding::nearest_int;
using ggml_rounding::rounded;
using iq4_nl_kernels::best_index;
using iq4_nl_kernels::kvalues;
using superblock_dot::block;                      // weights per super-block
inline constexpr std::int64_t block_bytes = 136;  // fp16 d + 2 + 4 bytes of scales + 128 bytes of indices
inline constexpr std::int64_t sub = 32;           // weights per sub-block
inline constexpr std::int64_t qs_at = 8;          // byte offset of qs

/// @brief The 6-bit scale ls (0 .. 63) of sub-block ib of the block at p.
inline int sub_scale(const std::byte* p, int ib) noexcept {
  const auto* u = reinterpret_cast<const std::uint8_t*>(p);
  const unsigned scales_h = unsigned{u[2]} | unsigned{u[3]} << 8;
  return static_cast<int>(((u[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4));
}

/// @brief The sums of ggml's scale search over one sub-block: indices l_j = best_index(id * x_j)
/// (stored in l when given), sumqx = sum (w_j q_j) x_j and sumq2 = sum (w_j q_j) q_j.
inline void trial(const float* x, const float* w, float id, std::uint8_t* l, float& sumqx, float& sumq2) noexcept {
  sumqx = 0.0f;
  sumq2 = 0.0f;
  for (std::int64_t j = 0; j < sub; ++j) {
    const int li = best_index(rounded(id * x[j]));
    if (l != nullptr) l[j] = static_cast<std::uint8_t>(li);
    const float q = kvalues[li];
    const float wq = w[j] * q;
    sumqx += rounded(wq * x[j]);
    sumq2 += rounded(wq * q);
  }
}

/// @brief One block of 256 floats -> the 136-byte block at blk (ggml's quantize_row_iq4_xs_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float scales[block / sub];  // the sub-blocks' float scales s_ib
  float max_scale = 0.0f, amax_scale = 0.0f;
  for (std::int64_t ib = 0; ib < block / sub; ++ib) {
    const float* xb = x + ib * sub;
    float w[sub];  // ggml's weight[j] = x_j * x_j
    float amax = 0.0f, max = 0.0f;
    for (std::int64_t j = 0; j < sub; ++j) {
      w[j] = xb[j] * xb[j];
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {  // strictly: the first of equal magnitudes wins
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < 1e-15f) {  // GROUP_MAX_EPS
      scales[ib] = 0.0f;
      continue;
    }
    float sumqx, sumq2;
    trial(xb, w, 1.0f / (-max / static_cast<float>(kvalues[0])), nullptr, sumqx, sumq2);
    float d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; ++itry) {
      trial(xb, w, static_cast<float>(itry + kvalues[0]) / max, nullptr, sumqx, sumq2);
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }

  const float d = -max_scale / 32.0f;
  q8_activations::put_half(blk, d);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  auto* u = reinterpret_cast<std::uint8_t*>(blk);
  unsigned scales_h = 0;
  std::uint8_t l[block];  // the indices, weight order
  for (std::int64_t ib = 0; ib < block / sub; ++ib) {
    int ls = nearest_int(id * scales[ib]);
    ls = ls < -32 ? -32 : ls > 31 ? 31 : ls;
    const float dl = d * static_cast<float>(ls);
    const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
    for (std::int64_t j = 0; j < sub; ++j) l[ib * sub + j] = static_cast<std::uint8_t>(best_index(rounded(idl * x[ib * sub + j])));
    ls += 32;
    if (ib % 2 == 0) u[4 + ib / 2] = static_cast<std::uint8_t>(ls & 0xF);
    else u[4 + ib / 2] = static_cast<std::uint8_t>(u[4 + ib / 2] | (ls & 0xF) << 4);
    scales_h |= static_cast<unsigned>(ls >> 4) << (2 * ib);
  }
  u[2] = static_cast<std::uint8_t>(scales_h & 0xFF);
  u[3] = static_cast<std::uint8_t>(scales_h >> 8);
  for (std::int64_t ib = 0; ib < block / sub; ++ib)
    for (std::int64_t j = 0; j < 16; ++j)
      u[qs_at + 16 * ib + j] = static_cast<std::uint8_t>(l[ib * sub + j] | l[ib * sub + 16 + j] << 4);
}

/// @brief IQ4_XS's blocks in superblock_dot's float product (a superblock_dot::block_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;

  /// @brief w [256]: dl_ib * (float)kvalues[index], ggml's dequantize_row_iq4_xs.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk);
    const auto* qs = reinterpret_cast<const std::uint8_t*>(blk + qs_at);
    for (int ib = 0; ib < block / sub; ++ib) {
      const float dl = d * static_cast<float>(sub_scale(blk, ib) - 32);
      for (std::int64_t j = 0; j < 16; ++j) {
        w[ib * sub + j] = dl * static_cast<float>(kvalues[qs[16 * ib + j] & 0xF]);
        w[ib * sub + 16 + j] = dl * static_cast<float>(kvalues[qs[16 * ib + j] >> 4]);
      }
    }
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief The 32 levels of sub-block ib as int8, in weight order: [low nibbles, high nibbles].
  TFORMER_GGML_DOT_INLINE static __m256i levels(const std::byte* blk, int ib) noexcept {
    return _mm256_shuffle_epi8(iq4_nl_kernels::level_table(0),
                               q4_0_kernels::unpack_avx2(reinterpret_cast<const std::uint8_t*>(blk + qs_at + 16 * ib)));
  }
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    const float d = q8_activations::half_at(blk);
    for (int ib = 0; ib < block / sub; ++ib) {
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(sub_scale(blk, ib) - 32));
      const __m256i v = levels(blk, ib);
      const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
      for (int p = 0; p < 4; ++p) {
        const __m128i b = (p & 1) ? _mm_srli_si128(halves[p >> 1], 8) : halves[p >> 1];
        fn(32 * ib + 8 * p, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), dl));
      }
    }
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512F)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    const float d = q8_activations::half_at(blk);
    for (int ib = 0; ib < block / sub; ++ib) {
      const __m512 dl = _mm512_set1_ps(d * static_cast<float>(sub_scale(blk, ib) - 32));
      const __m256i v = levels(blk, ib);
      fn(32 * ib, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v))), dl));
      fn(32 * ib + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1))), dl));
    }
  }
#endif
};

/// @brief The float-activation product's paths: float_dot::scalar (the reference), ::avx2,
/// ::avx512 where compiled, ::best (the one float_product uses, named by best_float_path).
using float_dot = superblock_dot::float_dot<blocks>;
using superblock_dot::best_float_path;

using format_base = superblock_dot::format_base<blocks, &quantize_block>;

}  // namespace detail::iq4_xs_kernels

/// @brief ggml's IQ4_XS: super-blocks of 256 4-bit indices into IQ4_NL's 16 non-linear levels, a
/// 6-bit scale per 32 and one binary16 scale (136 bytes, 4.25 bits per weight), bit-exact with
/// ggml (see the top of iq4_xs.hpp).
struct iq4_xs : detail::iq4_xs_kernels::format_base {
  static constexpr const char* name = "iq4_xs";
  static constexpr std::int64_t block_size = detail::iq4_xs_kernels::block;
  static constexpr std::int64_t block_bytes = detail::iq4_xs_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.25;
  static constexpr std::uint32_t ggml_type = 23;  // GGML_TYPE_IQ4_XS

  /// @brief x [n] -> n / 256 blocks (ggml's quantize_row_iq4_xs_ref); n % 256 == 0.
  using detail::iq4_xs_kernels::format_base::quantize_row;
  /// @brief n / 256 blocks -> y [n]: y[t] = dl_ib * (float)kvalues[index_t] (ggml's
  /// dequantize_row_iq4_xs: dl_ib exact, one rounding per weight).
  using detail::iq4_xs_kernels::format_base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory); w points at n packed rows
  /// of row_bytes each, k % 256 == 0. Uses best_float_path.
  using detail::iq4_xs_kernels::format_base::float_product;
};

static_assert(float_product_format<iq4_xs>);

}  // namespace tformer::quant
