// quant::q5_k: ggml's Q5_K weights (the bulk of llama.cpp's Q5_K_M files), bit-exact with ggml
// (GGML type 13). A row is cut into super-blocks of 256 weights; a super-block is ggml's
// block_q5_K, 176 bytes, unaligned in memory:
//
//   offset 0    ggml_half d          binary16 scale of the sub-block scales, little endian
//   offset 2    ggml_half dmin       binary16 scale of the sub-block mins, little endian
//   offset 4    uint8 scales[12]     6-bit scale sc_j and min m_j of the 8 sub-blocks of 32
//                                    (kquant::get_scale_min_k4), as Q4_K
//   offset 16   uint8 qh[32]         the fifth bits: bit j of qh[l] is bit 4 of weight 32 j + l
//   offset 48   uint8 qs[128]        the low 4 bits, as Q4_K's nibbles: weights 64 c + l (l < 32)
//                                    low nibble of qs[32 c + l], weights 64 c + 32 + l high nibble
//
//   weight t = (d * sc_j) * q_t - dmin * m_j,  j = t / 32, q_t in [0, 31], in float (ggml's
//   dequantize_row_q5_K: both products exact, one rounding in the subtraction)
//
// Quantization is ggml's quantize_row_q5_K_ref: Q4_K's (kquant::quantize_scales_mins) with nmax
// 31, rmin -0.5 and 15 steps, q clamped to [0, 31], evaluated as ISO C (see kquant.hpp). 5.5 bits
// per weight.
//
// The products are Q4_K's (kquant_dot.hpp): a fused one with ggml's Q8_K activations, exact int32
// sums per super-block and two fmas (AVX-512 VNNI, AVX2 and the scalar reference, bit-identical),
// and a float one dequantizing in registers. Neither writes dequantized weights to memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "format.hpp"
#include "kquant.hpp"
#include "kquant_dot.hpp"
#include "q4_k.hpp"  // the 6-bit scales and mins (scales_mins_of)
#include "q8_activations.hpp"
#include "q8_k.hpp"

namespace tformer::quant {

namespace detail::q5_k_kernels {

inline constexpr std::int64_t block = kquant::super_block;  // weights per super-block
inline constexpr std::int64_t block_bytes = 176;            // d, dmin, 12 bytes of scales, 32 of fifth bits, 128 of nibbles

/// @brief One super-block of 256 floats -> the 176-byte block at blk (ggml's quantize_row_q5_K_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  std::uint8_t L[block];
  kquant::quantize_scales_mins(x, 31, -0.5f, 15, blk, L);
  auto* qh = reinterpret_cast<std::uint8_t*>(blk + 16);
  auto* ql = reinterpret_cast<std::uint8_t*>(blk + 48);
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    const auto m1 = static_cast<std::uint8_t>(1u << (2 * c)), m2 = static_cast<std::uint8_t>(2u << (2 * c));
    for (int l = 0; l < 32; ++l) {
      int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      if (l1 > 15) {
        l1 -= 16;
        qh[l] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[l] |= m2;
      }
      ql[32 * c + l] = static_cast<std::uint8_t>(l1 | (l2 << 4));
    }
  }
}

/// @brief Q5_K's super-blocks in kquant_dot's loops (a kquant_dot::superblock_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = true;
  static constexpr std::int32_t zero = 0;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p); }
  static float dmin(const std::byte* p) noexcept { return q8_activations::half_at(p + 2); }
  static void scales(const std::byte* p, std::int16_t (&s)[16], std::int16_t (&mn)[16]) noexcept {
    q4_k_kernels::scales_mins_of(reinterpret_cast<const std::uint8_t*>(p + 4), s, mn);
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* qh = reinterpret_cast<const std::uint8_t*>(p + 16);
    const auto* qs = reinterpret_cast<const std::uint8_t*>(p + 48);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<std::uint8_t>((qs[32 * c + l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4));
        q[64 * c + 32 + l] = static_cast<std::uint8_t>((qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4));
      }
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief Weights 32 p .. 32 p + 31: Q4_K's nibbles of part p, plus 16 times bit p of qh[0 .. 31].
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 48 + 32 * (part >> 1)));
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
    const __m256i lo = _mm256_set1_epi8(0x0F);
    const __m256i nib = (part & 1) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), lo) : _mm256_and_si256(v, lo);
    // bit p of each byte, moved to bit 4 (the 16-bit shifts never carry a set bit across bytes here)
    const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(part)), _mm256_set1_epi8(1));
    return _mm256_or_si256(nib, _mm256_slli_epi16(bit, 4));
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

}  // namespace detail::q5_k_kernels

/// @brief ggml's Q5_K: super-blocks of 256 5-bit weights in 8 sub-blocks with 6-bit scales and
/// mins (176 bytes, 5.5 bits per weight), bit-exact with ggml, with float and fused int8 (Q8_K)
/// products for decode (see the top of q5_k.hpp).
struct q5_k : detail::q5_k_kernels::format_base {
  static constexpr const char* name = "q5_k";
  static constexpr std::int64_t block_size = detail::q5_k_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q5_k_kernels::block_bytes;
  static constexpr double bits_per_weight = 5.5;
  static constexpr std::uint32_t ggml_type = 13;  // GGML_TYPE_Q5_K
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 super-blocks (ggml's quantize_row_q5_K_ref); n % 256 == 0.
  using detail::q5_k_kernels::format_base::quantize_row;
  /// @brief n / 256 super-blocks -> y [n] (ggml's dequantize_row_q5_K, bit for bit).
  using detail::q5_k_kernels::format_base::dequantize_row;
  /// @brief Scratch bytes for m rows of k activations (Q8_K blocks).
  using detail::q5_k_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K. k % 256 == 0.
  using detail::q5_k_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b (d d_x) sumi - (dmin d_x) summ for i < m, j < n (q4_k.hpp);
  /// w points at n packed rows of row_bytes each. Uses best_path.
  using detail::q5_k_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] with float activations and the weights
  /// dequantized in registers. Uses best_float_path.
  using detail::q5_k_kernels::format_base::float_product;
};

static_assert(fused_format<q5_k>);
static_assert(float_product_format<q5_k>);

}  // namespace tformer::quant
