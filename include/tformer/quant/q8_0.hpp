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
// qw[j,b,t] * qx[i,b,t], as ggml's ggml_vec_dot_q8_0_q8_0. Its loops, shared with q4_0 and q4_1, are
// ggml_dot.hpp's (three compiled paths, chosen at compile time: AVX-512 VNNI, AVX2 + FMA, and a
// scalar reference that defines the result); the block's part of them is q8_0_kernels::blocks. No
// path writes dequantized weights to memory.
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
#include "requantize.hpp"
#include "ggml_dot.hpp"
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::q8_0_kernels {

// The activations (int8 per block of 32 with float scales, in the scratch layout of
// q8_activations::activations) live in q8_activations.hpp, the loops of the fused product in
// ggml_dot.hpp; both are shared with q4_0 / q4_1.
using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;
using q8_activations::prepare;
using q8_activations::prepare_block_scalar;
using q8_activations::quantize_block;
using q8_activations::round_half_away;
#if defined(TFORMER_Q8_ACTIVATIONS_AVX2)
using q8_activations::prepare_block_avx2;
#endif

inline constexpr std::int64_t block_bytes = 34;  // 2-byte fp16 scale + 32 int8

/// @brief The binary16 bits of the scale of the block at p (blocks are unaligned; stored little endian).
inline std::uint16_t scale_bits(const std::byte* p) noexcept { return q8_activations::half_bits(p); }
/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }

/// @brief The 32 int8 weights of the block at p.
inline const std::int8_t* quants_of(const std::byte* p) noexcept { return reinterpret_cast<const std::int8_t*>(p + 2); }

/// @brief Q8_0's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// the int8 weights as stored, every byte -128 included (the activations are in [-127, 127]).
/// AVX2's maddubs pairs stay below int16 saturation, 2 * 128 * 127 = 32512 < 32767, and the sign
/// trick is exact for -128 weights (ggml's orientation gives the same); for VNNI, w + 128 is
/// w ^ 0x80 read as u8, one xor per weight block.
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = true;
  static constexpr bool has_offset = false;
  using int_type = std::int8_t;
  static constexpr std::int32_t zero = 0;
  TFORMER_GGML_DOT_INLINE static const std::int8_t* ints(const std::byte* p, std::int8_t (&)[block]) noexcept {
    return quants_of(p);
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(p)));
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(a)));  // two unaligned loads
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(b)));
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants_of(a))),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
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

}  // namespace detail::q8_0_kernels

/// @brief ggml's Q8_0: blocks of 32 int8 weights with one binary16 scale each (34 bytes, 8.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q8_0.hpp).
struct q8_0 {
  static constexpr const char* name = "q8_0";
  static constexpr std::uint32_t ggml_type = 8;  // GGML_TYPE_Q8_0
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
      detail::q8_activations::put_half(blk, d);  // round to nearest even (ggml's GGML_FP32_TO_FP16)
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
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level q in
  /// [-128, 127] of its block's d nearest x; returns (float)q * d.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    std::byte* blk = row + i / block_size * block_bytes;
    const float d = detail::q8_0_kernels::scale_of(blk);
    const int q = detail::requantize::nearest_level(x, d, 0.0f, -128, 127);
    blk[2 + i % block_size] = static_cast<std::byte>(static_cast<std::int8_t>(q));
    return static_cast<float>(q) * d;
  }

  /// @brief Scratch bytes for m rows of k activations (3k a row, rounded up to 64; layout in
  /// detail::q8_0_kernels::activations).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return detail::q8_activations::bytes(m, k);
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
    detail::q8_0_kernels::dot::best(acts, m, k, w, row_bytes, n, y, ldy);
  }
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// x [m, k] and the weights dequantized in registers (never written to memory); w points at n
  /// packed rows of row_bytes each. ops::linear's product for up to 8 activation rows. Uses the
  /// best path compiled in (best_float_path).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::q8_0_kernels::float_dot::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

static_assert(fused_format<q8_0>);

}  // namespace tformer::quant
