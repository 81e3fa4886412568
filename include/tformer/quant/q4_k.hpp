// quant::q4_k: ggml's Q4_K weights (the bulk of llama.cpp's Q4_K_M files), bit-exact with ggml
// (GGML type 12). A row is cut into super-blocks of 256 weights; a super-block is ggml's
// block_q4_K, 144 bytes, unaligned in memory:
//
//   offset 0    ggml_half d          binary16 scale of the sub-block scales, little endian
//   offset 2    ggml_half dmin       binary16 scale of the sub-block mins, little endian
//   offset 4    uint8 scales[12]     6-bit scale sc_j and min m_j of the 8 sub-blocks of 32
//                                    (kquant::get_scale_min_k4)
//   offset 16   uint8 qs[128]        4-bit q: weights 64 c + l (l < 32) in the low nibbles of
//                                    qs[32 c + l], weights 64 c + 32 + l in the high nibbles
//
//   weight t = (d * sc_j) * q_t - dmin * m_j,  j = t / 32, in float (ggml's dequantize_row_q4_K:
//   both products exact, so the one rounding is the subtraction's, fused or not)
//
// Quantization is ggml's quantize_row_q4_K_ref (kquant::quantize_scales_mins with nmax 15,
// rmin -1, 20 steps of 0.1: per sub-block make_qkx2_quants weighted by av_x + |x|, the 8 scales
// and mins to 6 bits against d = max scale / 63, dmin = max min / 63, then q = nearest_int((x +
// dmin m_j) / (d sc_j)) clamped to [0, 15]), evaluated as ISO C (see kquant.hpp). 4.5 bits per
// weight.
//
// The fused product (decode, up to 8 activation rows) pairs Q4_K with ggml's Q8_K activations
// (q8_k.hpp), as ggml does: per super-block, exact int32 sums sumi = sum_j sc_j sum_t q_t qx_t and
// summ = sum_j m_j (bsums_2j + bsums_2j+1), y += (d d_x) sumi - (dmin d_x) summ by two fmas
// (kquant_dot.hpp: AVX-512 VNNI, AVX2 and the scalar reference, bit-identical). The float product
// dequantizes in registers. Neither writes dequantized weights to memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "format.hpp"
#include "kquant.hpp"
#include "kquant_dot.hpp"
#include "q8_activations.hpp"
#include "q8_k.hpp"

namespace tformer::quant {

namespace detail::q4_k_kernels {

inline constexpr std::int64_t block = kquant::super_block;  // weights per super-block
inline constexpr std::int64_t block_bytes = 144;            // d, dmin, 12 bytes of scales, 128 of nibbles

/// @brief The 6-bit scales and mins of the 8 sub-blocks of Q4_K or Q5_K (12 bytes at q) as the
/// loops' 16 groups of 16: s[2 j] = s[2 j + 1] = sc_j, mn likewise with m_j. get_scale_min_k4 for
/// all j at once, on the little-endian words of the field (ggml's kmask trick): the low 6 bits of
/// bytes 0 .. 3 are sc_0..3, of bytes 4 .. 7 m_0..3; sc_4..7 and m_4..7 take the nibbles of bytes
/// 8 .. 11 and the top 2 bits of bytes 0 .. 3 and 4 .. 7.
inline void scales_mins_of(const std::uint8_t* q, std::int16_t (&s)[16], std::int16_t (&mn)[16]) noexcept {
  std::uint32_t u[3];
  for (int i = 0; i < 3; ++i)
    u[i] = std::uint32_t{q[4 * i]} | std::uint32_t{q[4 * i + 1]} << 8 | std::uint32_t{q[4 * i + 2]} << 16 |
           std::uint32_t{q[4 * i + 3]} << 24;
  const std::uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
  const std::uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  const std::uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  // bytes sc_0..7, m_0..7, each doubled, widened to int16
  const __m128i v = _mm_set_epi32(static_cast<int>(m_hi), static_cast<int>(m_lo), static_cast<int>(sc_hi), static_cast<int>(sc_lo));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(s), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(mn), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v)));
#else
  for (int j = 0; j < 4; ++j) {
    s[2 * j] = s[2 * j + 1] = static_cast<std::int16_t>((sc_lo >> (8 * j)) & 0xFF);
    s[2 * j + 8] = s[2 * j + 9] = static_cast<std::int16_t>((sc_hi >> (8 * j)) & 0xFF);
    mn[2 * j] = mn[2 * j + 1] = static_cast<std::int16_t>((m_lo >> (8 * j)) & 0xFF);
    mn[2 * j + 8] = mn[2 * j + 9] = static_cast<std::int16_t>((m_hi >> (8 * j)) & 0xFF);
  }
#endif
}

/// @brief One super-block of 256 floats -> the 144-byte block at blk (ggml's quantize_row_q4_K_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  std::uint8_t L[block];
  kquant::quantize_scales_mins(x, 15, -1.0f, 20, blk, L);
  auto* q = reinterpret_cast<std::uint8_t*>(blk + 16);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) q[32 * c + l] = static_cast<std::uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

/// @brief Q4_K's super-blocks in kquant_dot's loops (a kquant_dot::superblock_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = true;
  static constexpr std::int32_t zero = 0;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p); }
  static float dmin(const std::byte* p) noexcept { return q8_activations::half_at(p + 2); }
  static void scales(const std::byte* p, std::int16_t (&s)[16], std::int16_t (&mn)[16]) noexcept {
    scales_mins_of(reinterpret_cast<const std::uint8_t*>(p + 4), s, mn);
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* qs = reinterpret_cast<const std::uint8_t*>(p + 16);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = qs[32 * c + l] & 15;
        q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
      }
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief Weights 32 p .. 32 p + 31: the low (p even) or high (p odd) nibbles of qs[32 (p / 2) ..].
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16 + 32 * (part >> 1)));
    const __m256i lo = _mm256_set1_epi8(0x0F);
    return (part & 1) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), lo) : _mm256_and_si256(v, lo);
  }
#endif
};

/// @brief The fused product's paths: fused::scalar (the reference), ::avx2, ::avx512vnni where
/// compiled, ::best (named by best_path); all give the same bits.
using fused = kquant_dot::fused<blocks>;
/// @brief The float-activation product's paths: float_dot::scalar (the reference), ::avx2,
/// ::avx512 where compiled, ::best (named by best_float_path).
using float_dot = kquant_dot::float_dot<blocks>;
using kquant_dot::best_float_path;
using kquant_dot::best_path;

using format_base = kquant_dot::format_base<blocks, &quantize_block>;

}  // namespace detail::q4_k_kernels

/// @brief ggml's Q4_K: super-blocks of 256 4-bit weights in 8 sub-blocks with 6-bit scales and
/// mins (144 bytes, 4.5 bits per weight), bit-exact with ggml, with float and fused int8 (Q8_K)
/// products for decode (see the top of q4_k.hpp).
struct q4_k : detail::q4_k_kernels::format_base {
  static constexpr const char* name = "q4_k";
  static constexpr std::int64_t block_size = detail::q4_k_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q4_k_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.5;
  static constexpr std::uint32_t ggml_type = 12;  // GGML_TYPE_Q4_K
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 super-blocks (ggml's quantize_row_q4_K_ref); n % 256 == 0.
  using detail::q4_k_kernels::format_base::quantize_row;
  /// @brief n / 256 super-blocks -> y [n] (ggml's dequantize_row_q4_K, bit for bit).
  using detail::q4_k_kernels::format_base::dequantize_row;
  /// @brief Scratch bytes for m rows of k activations (Q8_K blocks).
  using detail::q4_k_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K. k % 256 == 0.
  using detail::q4_k_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b (d d_x) sumi - (dmin d_x) summ for i < m, j < n (the top of the
  /// file); w points at n packed rows of row_bytes each. Uses best_path.
  using detail::q4_k_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] with float activations and the weights
  /// dequantized in registers. Uses best_float_path.
  using detail::q4_k_kernels::format_base::float_product;
};

static_assert(fused_format<q4_k>);
static_assert(float_product_format<q4_k>);

}  // namespace tformer::quant
