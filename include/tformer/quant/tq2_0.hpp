// quant::tq2_0: ggml's TQ2_0 ternary weights (BitNet b1.58 class), bit-exact with ggml (GGML type
// 35). A row is cut into super-blocks of 256 weights; a block is 66 bytes, unaligned in memory:
//
//   offset 0    uint8 qs[64]      2 bits per weight: weight 128 c + 32 l + m (c < 2, l < 4, m < 32)
//                                 has q = (qs[32 c + m] >> 2 l) & 3, in {0, 1, 2} (3 never written)
//   offset 64   ggml_half d       IEEE binary16 scale, little endian
//
//   weight t = (float)(q_t - 1) * (float)d        (exact: q - 1 is -1, 0, 1 or 2)
//
// Quantization is ggml's quantize_row_tq2_0_ref: d = amax = the largest |x_j| of the block (as
// MAX(amax, fabsf(x_j)) in j order), id = d != 0 ? 1 / d : 0 (from the float d), q_j =
// lroundf(x_j * id) + 1 (halves away from zero), and d is stored rounded to nearest even. 2.0625
// bits per weight. The product x_j * id is only rounded (no addition follows it), so the result
// is the same whatever the compiler's contraction setting; gguf-py's numpy quantizer agrees with it
// (tools/make_lowbit_fixtures.py checks both).
//
// Decode (up to 8 activation rows) runs float_product: the weights of each block made in
// registers as dequantize_row makes them, never written to memory, and multiplied with the float
// activations; its loops are superblock_dot.hpp's (AVX-512, AVX2 + FMA, and a scalar reference that
// defines the result).
// int8_activations<tq2_0> runs the fused product instead, as ggml does: activations quantized to
// ggml's Q8_K (q8_k.hpp), exact int32 sums per super-block (ggml's vec_dot_tq2_0_q8_K's arithmetic),
// kquant_dot.hpp's loops (AVX-512 VNNI, AVX2, scalar; all three give the same bits).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "format.hpp"
#include "q8_activations.hpp"  // half_at, put_half
#include "kquant_dot.hpp"  // the fused int8 product's loops
#include "q8_k.hpp"         // its activations, ggml's Q8_K
#include "superblock_dot.hpp"

namespace tformer::quant {

namespace detail::tq2_0_kernels {

using superblock_dot::block;                     // weights per super-block
inline constexpr std::int64_t block_bytes = 66;  // 64 bytes of 2-bit codes + fp16 scale
inline constexpr std::int64_t d_at = 64;         // byte offset of d

/// @brief One block of 256 floats -> the 66-byte block at blk (ggml's quantize_row_tq2_0_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float amax = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    const float v = std::fabs(x[j]);
    amax = amax > v ? amax : v;  // ggml: MAX(amax, fabsf(v))
  }
  const float d = amax;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk + d_at, d);
  auto* qs = reinterpret_cast<std::uint8_t*>(blk);
  for (std::int64_t c = 0; c < 2; ++c)
    for (std::int64_t m = 0; m < 32; ++m) {
      unsigned q = 0;
      for (std::int64_t l = 0; l < 4; ++l) {
        const long xi = std::lround(x[128 * c + 32 * l + m] * id) + 1;  // -1, 0, 1 -> 0, 1, 2
        q += static_cast<unsigned>(xi & 3) << (2 * l);
      }
      qs[32 * c + m] = static_cast<std::uint8_t>(q);
    }
}

/// @brief TQ2_0's blocks in superblock_dot's float product (a superblock_dot::block_policy).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;

  /// @brief w [256] = (float)(q_t - 1) * d, ggml's dequantize_row_tq2_0.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float d = q8_activations::half_at(blk + d_at);
    const auto* qs = reinterpret_cast<const std::uint8_t*>(blk);
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t l = 0; l < 4; ++l)
        for (std::int64_t m = 0; m < 32; ++m) {
          const int q = (qs[32 * c + m] >> (2 * l)) & 3;
          w[128 * c + 32 * l + m] = static_cast<float>(q - 1) * d;
        }
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief The 32 values q - 1 (int8) of weights 128 c + 32 l .. + 31.
  TFORMER_GGML_DOT_INLINE static __m256i codes(__m256i qs, int l) noexcept {
    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * l), _mm256_set1_epi8(3));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(1));
  }
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    const __m256 d = _mm256_set1_ps(q8_activations::half_at(blk + d_at));
    for (int c = 0; c < 2; ++c) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * c));
      for (int l = 0; l < 4; ++l) {
        const __m256i v = codes(qs, l);
        const __m128i halves[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
        for (int p = 0; p < 4; ++p) {
          const __m128i b = (p & 1) ? _mm_srli_si128(halves[p >> 1], 8) : halves[p >> 1];
          fn(128 * c + 32 * l + 8 * p, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), d));
        }
      }
    }
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512F)
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    const __m512 d = _mm512_set1_ps(q8_activations::half_at(blk + d_at));
    for (int c = 0; c < 2; ++c) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * c));
      for (int l = 0; l < 4; ++l) {
        const __m256i v = codes(qs, l);
        fn(128 * c + 32 * l, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v))), d));
        fn(128 * c + 32 * l + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1))), d));
      }
    }
  }
#endif
};

/// @brief TQ2_0's super-blocks in kquant_dot's fused int8 product (a kquant_dot::superblock_policy):
/// w_t = d (q_t - 1), every group scale 1.
struct fused_blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool has_min = false;
  static constexpr std::int32_t zero = 1;
  static float d(const std::byte* p) noexcept { return q8_activations::half_at(p + d_at); }
  static void scales(const std::byte*, std::int16_t (&s)[16], std::int16_t (&m)[16]) noexcept {
    for (int g = 0; g < 16; ++g) {
      s[g] = 1;
      m[g] = 0;
    }
  }
  static void unpack(const std::byte* p, std::uint8_t (&q)[block]) noexcept {
    const auto* u = reinterpret_cast<const std::uint8_t*>(p);
    for (std::int64_t t = 0; t < block; ++t) q[t] = static_cast<std::uint8_t>((u[32 * (t / 128) + t % 32] >> (2 * ((t % 128) / 32))) & 3);
  }
#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief q_t for t = 32 part .. 32 part + 31, as u8 (0 .. 3).
  TFORMER_GGML_DOT_INLINE static __m256i part_avx2(const std::byte* p, int part) noexcept {
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * (part / 4)));
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

}  // namespace detail::tq2_0_kernels

/// @brief ggml's TQ2_0: super-blocks of 256 ternary weights {-d, 0, d} at 2 bits each with one
/// binary16 scale (66 bytes, 2.0625 bits per weight), bit-exact with ggml (see the top of tq2_0.hpp).
struct tq2_0 : detail::tq2_0_kernels::format_base, detail::tq2_0_kernels::fused_base {
  static constexpr const char* name = "tq2_0";
  static constexpr std::int64_t block_size = detail::tq2_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::tq2_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 2.0625;
  static constexpr std::uint32_t ggml_type = 35;  // GGML_TYPE_TQ2_0
  static constexpr std::int64_t max_fused_rows = detail::q8_k::max_rows;

  /// @brief x [n] -> n / 256 blocks (ggml's quantize_row_tq2_0_ref); n % 256 == 0.
  using detail::tq2_0_kernels::format_base::quantize_row;
  /// @brief n / 256 blocks -> y [n]: y[t] = (float)(q_t - 1) * d (ggml's dequantize_row_tq2_0;
  /// exact, so contraction cannot change it).
  using detail::tq2_0_kernels::format_base::dequantize_row;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory); w points at n packed rows
  /// of row_bytes each, k % 256 == 0. Uses best_float_path.
  using detail::tq2_0_kernels::format_base::float_product;

  /// @brief Scratch bytes for m rows of k activations (q8_k::activations).
  using detail::tq2_0_kernels::fused_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K blocks (int8 per 256, float scale,
  /// group sums). k % 256 == 0.
  using detail::tq2_0_kernels::fused_base::prepare_activations;
  /// @brief The fused int8 product (int8_activations<tq2_0>): y[i * ldy + j] = sum_b d_w d_x
  /// (sum_t q_t qx_t - sum_t qx_t) for i < m, j < n, exact int32 sums; every path gives the same
  /// bits (kquant_dot.hpp).
  using detail::tq2_0_kernels::fused_base::fused_product;
};

static_assert(fused_format<tq2_0>);

}  // namespace tformer::quant
