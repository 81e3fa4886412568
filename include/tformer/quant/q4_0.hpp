// quant::q4_0: ggml's Q4_0 weights, bit-exact with ggml (GGML type 2). A row is cut into blocks of
// 32 weights; a block is 18 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   uint8 qs[16]      weight j (j < 16) = (float)((qs[j] & 15) - 8) * (float)d,
//                                weight j + 16     = (float)((qs[j] >> 4) - 8) * (float)d
//
// Quantization is ggml's quantize_row_q4_0_ref: max = the x_j of largest magnitude, sign kept (the
// first one on ties), d = max / -8 (float), id = d != 0 ? 1 / d : 0 (from the float d), q_j =
// MIN(15, (int8_t)(x_j * id + 8.5f)), and d is stored rounded to nearest even. 4.5 bits per weight.
// "Bit-exact with ggml" means the C source evaluated as ISO C writes it: x_j * id rounded to float,
// then + 8.5f rounded to float, then truncated. (ggml-quants.c stores x_j * id in a variable first;
// a compiler that contracts across statements into an fma, GCC's default -ffp-contract=fast on an
// FMA target, rounds once instead and differs on rare inputs: x = 2.8125 in a block whose max is 3
// gives q = 1 unfused, 0 fused. gguf-py 0.19's numpy quantizer is unfused, like ggml's x86 builds
// without FMA in the baseline and clang's, which contracts only within one expression.) tformer
// computes it so that no compiler setting can contract it: see nibble_of.
//
// The fused product (decode, up to 8 activation rows) quantizes the activations per block of 32
// to int8 with a float scale, exactly as q8_0 does (ggml pairs Q4_0 with Q8_0 activations), and
// multiplies with exact int32 sums per block: y[i, j] = sum_b (d_w[j,b] * d_x[i,b]) * sum_t
// (qw[j,b,t] - 8) * qx[i,b,t], the blocks' float sums accumulated with fma. Its loops are
// ggml_dot.hpp's, as for q8_0 (three compiled paths, chosen at compile time: AVX-512 VNNI, AVX2 +
// FMA, and a scalar reference that defines the result); the block's part of them is
// q4_0_kernels::blocks. No path writes dequantized weights to memory.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "requantize.hpp"
#include "ggml_block_format.hpp"
#include "ggml_dot.hpp"
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::q4_0_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;

inline constexpr std::int64_t block_bytes = 18;  // 2-byte fp16 scale + 16 bytes of nibbles

/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }
/// @brief The 16 bytes of nibbles of the block at p.
inline const std::uint8_t* nibbles_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 2); }

/// @brief up[n] = n + 1 - h, h = half the spacing of the floats just below n + 1 (n < 16): the
/// smallest real that rounds to n + 1 in float (the tie goes to n + 1, whose last significand bit
/// is 0). Exact in double.
inline constexpr std::array<double, 16> round_up_from = [] {
  std::array<double, 16> t{};
  for (unsigned n = 0; n < 16; ++n) {
    // floats below n + 1 in (2^(w-1), 2^w], w = bit_width(n), are 2^(w-24) apart
    t[n] = static_cast<double>(n + 1) - 1.0 / static_cast<double>(1u << (25 - std::bit_width(n)));
  }
  return t;
}();

/// @brief ggml's MIN(15, (int8_t)(p + c)) with p + c rounded to float first, for a float p and
/// c = 8.5 (Q4_0) or 0.5 (Q4_1). The sum is never rounded to float by an instruction that the
/// compiler could fuse with the multiply that made p: e = p + c is formed in double (exact when
/// |p| >= 2^-25; for smaller |p| it lies within 2^-25 of c, far from any rounding boundary), and
/// comparing e with round_up_from gives trunc(fl(e)) exactly. (The obvious (float)((double)p + c)
/// does not work: GCC narrows it back to a float add, legitimately, and then contracts it.)
/// For finite inputs e is in [0.5, 16.5]; a NaN or infinite e (a scale d below 2^-128, whose
/// 1 / d overflows) gives 0, as ggml's int8 conversion does on x86 (cvttss2si gives 0x80000000).
inline std::uint8_t nibble_of(float p, double c) noexcept {
  const double e = static_cast<double>(p) + c;
  if (!(e >= 0.0)) return 0;  // NaN, -inf (a finite e is >= 0.5)
  if (!(e < 16.0)) return e < 128.0 ? 15 : 0;
  auto n = static_cast<unsigned>(e);  // floor(e), 0 .. 15
  if (e >= round_up_from[n]) ++n;     // fl(e) is n + 1
  return static_cast<std::uint8_t>(n > 15 ? 15 : n);
}

/// @brief One block of 32 floats -> the 18-byte block at blk (ggml's quantize_row_q4_0_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    const float a = std::fabs(x[j]);
    if (amax < a) {  // strictly: the first of equal magnitudes wins
      amax = a;
      max = x[j];
    }
  }
  const float d = max / -8.0f;  // an all-zero block: d = -0 (0x8000), as in ggml
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk, d);
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 2);
  for (std::int64_t j = 0; j < block / 2; ++j) {
    const std::uint8_t lo = nibble_of(x[j] * id, 8.5), hi = nibble_of(x[j + block / 2] * id, 8.5);
    qs[j] = static_cast<std::uint8_t>(lo | hi << 4);
  }
}

/// @brief The 32 nibbles of qs [16] in weight order: w[j] = qs[j] & 15, w[j + 16] = qs[j] >> 4.
inline void unpack(const std::uint8_t* qs, std::uint8_t* w) noexcept {
  for (std::int64_t j = 0; j < block / 2; ++j) {
    w[j] = qs[j] & 15;
    w[j + block / 2] = static_cast<std::uint8_t>(qs[j] >> 4);
  }
}

#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief The 32 nibbles of qs [16] as u8 in weight order: [qs & 15 (16 bytes), qs >> 4 (16 bytes)].
inline __m256i unpack_avx2(const std::uint8_t* qs) noexcept {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);  // the shift drags bits across bytes:
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));          // the mask drops them
}
#endif

#if defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief The 64 nibbles of two blocks' qs (a, b; 16 bytes each) as u8 in weight order:
/// [a & 15, a >> 4, b & 15, b >> 4], 16 bytes each.
inline __m512i unpack_pair_avx512(const std::uint8_t* a, const std::uint8_t* b) noexcept {
  const __m256i ab = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(ab, mask), hi = _mm256_and_si256(_mm256_srli_epi16(ab, 4), mask);
  // [lo a, lo b, hi a, hi b] -> [lo a, hi a, lo b, hi b] (128-bit lanes 0, 2, 1, 3)
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}
#endif

/// @brief Q4_0's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// the signed weights q - 8 in [-8, 7] (the nibbles q less zero = 8). AVX2's maddubs pairs stay far below int16 saturation:
/// 2 * 8 * 127 = 2032. For VNNI the weights shifted by +128 are q + 120 (u8 in [120, 135]): one
/// add per weight block. (The alternative, q as it is with -8 * sum x, needs corr / 16: a shift
/// per activation row and block.)
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = true;
  static constexpr bool has_offset = false;
  using int_type = std::uint8_t;
  static constexpr std::int32_t zero = 8;
  TFORMER_GGML_DOT_INLINE static const std::uint8_t* ints(const std::byte* p, std::uint8_t (&buf)[block]) noexcept {
    unpack(nibbles_of(p), buf);
    return buf;
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return _mm256_sub_epi8(unpack_avx2(nibbles_of(p)), _mm256_set1_epi8(8));  // q - 8, s8
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    return _mm512_add_epi8(unpack_pair_avx512(nibbles_of(a), nibbles_of(b)), _mm512_set1_epi8(120));
  }
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept {
    return _mm256_add_epi8(unpack_avx2(nibbles_of(a)), _mm256_set1_epi8(120));
  }
#endif
};

/// @brief The fused product's paths: dot::scalar (the reference), dot::avx2, dot::avx512vnni
/// where compiled, dot::best (the one fused_product uses, named by best_path).
using dot = ggml_dot::dot<blocks>;
/// @brief The float-activation product's paths: float_dot::scalar (the reference), ::avx2,
/// ::avx512 where compiled, ::best (the one float_product uses, named by best_float_path).
using float_dot = ggml_dot::float_dot<blocks>;
using ggml_dot::best_float_path;
using ggml_dot::best_path;

/// @brief The format struct's shared members (ggml_block_format.hpp).
using format_base = ggml_block_format<block_bytes, &quantize_block, dot, float_dot>;

}  // namespace detail::q4_0_kernels

/// @brief ggml's Q4_0: blocks of 32 4-bit weights with one binary16 scale each (18 bytes, 4.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q4_0.hpp).
struct q4_0 : detail::q4_0_kernels::format_base {
  static constexpr const char* name = "q4_0";
  static constexpr std::int64_t block_size = detail::q4_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q4_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.5;
  static constexpr std::uint32_t ggml_type = 2;  // GGML_TYPE_Q4_0
  static constexpr std::int64_t max_fused_rows = detail::q4_0_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q4_0_ref); n % 32 == 0.
  using detail::q4_0_kernels::format_base::quantize_row;
  /// @brief n / 32 blocks -> y [n]: y[j] = (float)(q_j - 8) * d, a float multiply (ggml's
  /// dequantize_row_q4_0; exact, so contraction cannot change it).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q4_0_kernels::scale_of(blk);
      const std::uint8_t* qs = detail::q4_0_kernels::nibbles_of(blk);
      float* out = y + b * block_size;
      for (std::int64_t j = 0; j < block_size / 2; ++j) {
        out[j] = static_cast<float>((qs[j] & 15) - 8) * d;
        out[j + block_size / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
      }
    }
  }
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level l in
  /// [-8, 7] of its block's d nearest x; returns (float)l * d.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    std::byte* blk = row + i / block_size * block_bytes;
    const float d = detail::q4_0_kernels::scale_of(blk);
    const int l = detail::requantize::nearest_level(x, d, 0.0f, -8, 7);
    detail::requantize::set_nibble<block_size>(reinterpret_cast<std::uint8_t*>(blk + 2), i % block_size, l + 8);
    return static_cast<float>(l) * d;
  }

  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations: 3k a row,
  /// rounded up to 64).
  using detail::q4_0_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32 as ggml's Q8_0, float scales,
  /// lane sums. k % 32 == 0.
  using detail::q4_0_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t (qw[j,b,t] - 8) qx[i,b,t] for i < m, j < n;
  /// w points at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  using detail::q4_0_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// x [m, k] and the weights dequantized in registers (never written to memory); w points at n
  /// packed rows of row_bytes each. ops::linear's product for up to 8 activation rows. Uses the
  /// best path compiled in (best_float_path).
  using detail::q4_0_kernels::format_base::float_product;
};

static_assert(fused_format<q4_0>);

}  // namespace tformer::quant
