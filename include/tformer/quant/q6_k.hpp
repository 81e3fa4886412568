// quant::q6_k: ggml's Q6_K weights (the output and some FFN tensors of llama.cpp's Q4_K_M and
// Q5_K_M files), bit-exact with ggml (GGML type 14). A row is cut into super-blocks of 256
// weights; a super-block is ggml's block_q6_K, 210 bytes, unaligned in memory:
//
//   offset 0     uint8 ql[128]      the low 4 bits of q
//   offset 128   uint8 qh[64]       the high 2 bits of q
//   offset 192   int8 scales[16]    the scale of each group of 16 weights
//   offset 208   ggml_half d        binary16 super-block scale, little endian
//
//   in half h = t / 128 (l < 32, s = 0 .. 3 for t = 128 h + 32 s + l):
//   q_t = (ql[64 h + 32 (s & 1) + l] >> (s < 2 ? 0 : 4) & 15) | ((qh[32 h + l] >> 2 s) & 3) << 4
//   weight t = (d * scales[t / 16]) * (q_t - 32)   in float (ggml's dequantize_row_q6_K: exact)
//
// Quantization is ggml's quantize_row_q6_K_ref: per group of 16, make_qx_quants(16, 32, x, L,
// rmse_type 1) gives a scale; the one of largest magnitude max_scale (the first on ties) sets
// iscale = -128 / max_scale and d = 1 / iscale (binary16); scales[g] = MIN(127,
// nearest_int(iscale * scale_g)); q = clamp(nearest_int(x / (d scales[g])), -32, 31) + 32, except
// in groups with d scales[g] = 0, which keep make_qx_quants' levels; a super-block whose largest
// |scale| is below 1e-15 is all zero. Evaluated as ISO C (see kquant.hpp). 6.5625 bits per weight.
//
// The products are kquant_dot.hpp's with zero 32 and no min: fused with ggml's Q8_K activations,
// sumi = sum_g scales[g] (sum_t q_t qx_t - 32 bsums_g) exact in int32 and y += (d d_x) sumi by
// one fma per super-block (AVX-512 VNNI, AVX2 and the scalar reference, bit-identical), and float
// dequantizing in registers. Neither writes dequantized weights to memory.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "format.hpp"
#include "kquant.hpp"
#include "kquant_dot.hpp"
#include "q8_activations.hpp"
#include "q8_k.hpp"

namespace tformer::quant {

namespace detail::q6_k_kernels {

inline constexpr std::int64_t block = kquant::super_block;  // weights per super-block
inline constexpr std::int64_t block_bytes = 210;            // 128 bytes low bits, 64 high bits, 16 scales, d
inline constexpr std::int64_t d_at = 208;                   // byte offset of d

/// @brief One super-block of 256 floats -> the 210-byte block at blk (ggml's quantize_row_q6_K_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  std::int8_t L[block];  // levels + 32, in [0, 63]
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    const float scale = kquant::make_qx_quants(16, 32, x + 16 * g, L + 16 * g, 1, nullptr);
    scales[g] = scale;
    const float abs_scale = std::fabs(scale);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scale;
    }
  }
  if (max_abs_scale < kquant::group_max_eps) {
    std::memset(blk, 0, block_bytes);  // d = +0 too
    return;
  }
  const float iscale = -128.f / max_scale;
  q8_activations::put_half(blk + d_at, 1 / iscale);
  auto* sc = reinterpret_cast<std::int8_t*>(blk + 192);
  for (int g = 0; g < 16; ++g) {
    const int v = kquant::nearest_int(kquant::mul(iscale, scales[g]));
    sc[g] = static_cast<std::int8_t>(v < 127 ? v : 127);
  }
  const float d16 = q8_activations::half_at(blk + d_at);
  for (int g = 0; g < 16; ++g) {
    const float d = d16 * static_cast<float>(sc[g]);  // exact
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = kquant::nearest_int(x[16 * g + ii] / d);
      L[16 * g + ii] = static_cast<std::int8_t>((l < -32 ? -32 : l > 31 ? 31 : l) + 32);
    }
  }
  auto* ql = reinterpret_cast<std::uint8_t*>(blk);
  auto* qh = reinterpret_cast<std::uint8_t*>(blk + 128);
  for (int h = 0; h < 2; ++h) {
    const std::int8_t* Lh = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = Lh[l] & 0xF, q2 = Lh[l + 32] & 0xF, q3 = Lh[l + 64] & 0xF, q4 = Lh[l + 96] & 0xF;
      ql[64 * h + l] = static_cast<std::uint8_t>(q1 | (q3 << 4));
      ql[64 * h + 32 + l] = static_cast<std::uint8_t>(q2 | (q4 << 4));
      qh[32 * h + l] =
          static_cast<std::uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
}

/// @brief Q6_K's super-blocks in kquant_dot's loops (a kquant_dot::superblock_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = false;
  static constexpr std::int32_t zero = 32;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p + d_at); }
  static void scales(const std::byte* p, std::int16_t (&s)[16], std::int16_t (&mn)[16]) noexcept {
    const auto* sc = reinterpret_cast<const std::int8_t*>(p + 192);
    for (int g = 0; g < 16; ++g) {
      s[g] = sc[g];
      mn[g] = 0;
    }
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* ql = reinterpret_cast<const std::uint8_t*>(p);
    const auto* qh = reinterpret_cast<const std::uint8_t*>(p + 128);
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const std::uint8_t a = ql[64 * h + l], b = ql[64 * h + 32 + l], c = qh[32 * h + l];
        q[128 * h + l] = static_cast<std::uint8_t>((a & 15) | ((c & 3) << 4));
        q[128 * h + 32 + l] = static_cast<std::uint8_t>((b & 15) | (((c >> 2) & 3) << 4));
        q[128 * h + 64 + l] = static_cast<std::uint8_t>((a >> 4) | (((c >> 4) & 3) << 4));
        q[128 * h + 96 + l] = static_cast<std::uint8_t>((b >> 4) | (((c >> 6) & 3) << 4));
      }
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief Weights 32 p .. 32 p + 31 (h = p / 4, s = p % 4): the nibbles of ql[64 h + 32 (s & 1)
  /// ..] (low for s < 2, high otherwise) and bits 2 s, 2 s + 1 of qh[32 h ..] above them.
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const int h = part >> 2, s = part & 3;
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * h + 32 * (s & 1)));
    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h));
    const __m256i lo = _mm256_set1_epi8(0x0F);
    const __m256i nib = s >= 2 ? _mm256_and_si256(_mm256_srli_epi16(v, 4), lo) : _mm256_and_si256(v, lo);
    // bits 2 s, 2 s + 1 of each byte moved to bits 4, 5 (shifting 16-bit lanes left by 4 - 2 s or
    // right by 2 s - 4, then masking 0x30 per byte: no bit that survives the mask crosses a byte)
    const __m256i hi = s <= 2 ? _mm256_sll_epi16(hb, _mm_cvtsi32_si128(4 - 2 * s)) : _mm256_srli_epi16(hb, 2);
    return _mm256_or_si256(nib, _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
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

}  // namespace detail::q6_k_kernels

/// @brief ggml's Q6_K: super-blocks of 256 6-bit weights in 16 groups with int8 scales (210 bytes,
/// 6.5625 bits per weight), bit-exact with ggml, with float and fused int8 (Q8_K) products for
/// decode (see the top of q6_k.hpp).
struct q6_k : detail::q6_k_kernels::format_base {
  static constexpr const char* name = "q6_k";
  static constexpr std::int64_t block_size = detail::q6_k_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q6_k_kernels::block_bytes;
  static constexpr double bits_per_weight = 6.5625;
  static constexpr std::uint32_t ggml_type = 14;  // GGML_TYPE_Q6_K
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 super-blocks (ggml's quantize_row_q6_K_ref); n % 256 == 0.
  using detail::q6_k_kernels::format_base::quantize_row;
  /// @brief n / 256 super-blocks -> y [n] (ggml's dequantize_row_q6_K, bit for bit).
  using detail::q6_k_kernels::format_base::dequantize_row;
  /// @brief Scratch bytes for m rows of k activations (Q8_K blocks).
  using detail::q6_k_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K. k % 256 == 0.
  using detail::q6_k_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b (d d_x) sumi for i < m, j < n (the top of the file); w points
  /// at n packed rows of row_bytes each. Uses best_path.
  using detail::q6_k_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] with float activations and the weights
  /// dequantized in registers. Uses best_float_path.
  using detail::q6_k_kernels::format_base::float_product;
};

static_assert(fused_format<q6_k>);
static_assert(float_product_format<q6_k>);

}  // namespace tformer::quant
