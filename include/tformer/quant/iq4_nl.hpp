// quant::iq4_nl: ggml's IQ4_NL weights, bit-exact with ggml (GGML type 20): 4-bit indices into a
// fixed non-linear table of 16 int8 levels. A row is cut into blocks of 32 weights; a block is 18
// bytes, unaligned in memory (Q4_0's layout):
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   uint8 qs[16]      weight j (j < 16) = d * (float)kvalues[qs[j] & 15],
//                                weight j + 16     = d * (float)kvalues[qs[j] >> 4]
//   kvalues = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
//
// Dequantization is ggml's dequantize_row_iq4_nl: the product of a binary16 and an int8 is exact
// in float. Quantization is ggml's quantize_row_iq4_nl_ref (quantize_row_iq4_nl_impl with one
// block per super-block, no importance weights and ntry = -1, so its search over scales runs no
// trial): per block, with weights w_j = x_j * x_j, max = the x_j of largest magnitude (the first
// on ties); when |max| < 1e-15 the block gets d = +0; otherwise d0 = max / -127, id = 1 / d0,
// l_j = best_index_int8(kvalues, id * x_j) (the nearest level; the upper one on a tie), and the
// stored scale is d = sumqx / sumq2 (0 when sumq2 is not > 0), sumqx = sum_j (w_j * kv_l) * x_j,
// sumq2 = sum_j (w_j * kv_l) * kv_l, summed in float in j order, d rounded to nearest even. 4.5
// bits per weight.
// "Bit-exact with ggml" means, as for Q4_0 (see q4_0.hpp), the C source evaluated as ISO C writes
// it: every product rounded to float before it is added or subtracted (ggml's x86 builds without
// FMA in the baseline; an FMA build under GCC's -ffp-contract=fast may fuse id * x_j with the
// subtraction in best_index_int8 and the products with the sums, and differ on rare inputs).
// tformer rounds each such product through rounded() below, which no compiler setting can fuse.
// One deliberate difference: for a block with |max| < 1e-15, ggml packs its scratch indices L
// without writing them first (the previous block's, or uninitialized memory for the first block of
// a call), so its qs bytes there are unspecified; tformer writes qs = 0 (ggml's memset's intent).
// Such a block dequantizes to zeros either way, up to the sign of each zero.
//
// The fused product (decode, up to 8 activation rows) pairs IQ4_NL with Q8_0 activations, as ggml
// does: int8 per block of 32 with a float scale exactly as q8_0, and exact int32 sums per block of
// the int8 levels kvalues[q] by the int8 activations, y[i, j] = sum_b (d_w d_x) sum_t kv[qw_t]
// qx_t, accumulated with fma. Its loops are ggml_dot.hpp's (AVX-512 VNNI, AVX2 + FMA, and a scalar
// reference that defines the result); the levels come from a byte shuffle of the nibbles. No path
// writes dequantized weights to memory.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "ggml_block_format.hpp"
#include "ggml_dot.hpp"
#include "q4_0.hpp"  // the nibble layout (unpack, unpack_avx2, unpack_pair_avx512)
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::iq4_nl_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;

inline constexpr std::int64_t block_bytes = 18;  // fp16 scale + 16 bytes of 4-bit indices

/// @brief ggml's kvalues_iq4nl: the 16 levels, ascending.
inline constexpr std::int8_t kvalues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }
/// @brief The 16 bytes of indices of the block at p.
inline const std::uint8_t* nibbles_of(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p + 2); }

/// @brief v, rounded to float where it stands: a product passed through here is never fused with
/// the addition or subtraction that uses it, whatever the compiler's contraction setting.
inline float rounded(float v) noexcept {
  volatile float t = v;
  return t;
}

/// @brief ggml's best_index_int8(16, kvalues, x): the index of the level nearest to x, the upper
/// one when x is exactly halfway (in float), with ggml's float comparisons and subtractions.
inline int best_index(float x) noexcept {
  if (x <= static_cast<float>(kvalues[0])) return 0;
  if (x >= static_cast<float>(kvalues[15])) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < static_cast<float>(kvalues[mav])) mu = mav;
    else ml = mav;
  }
  return x - static_cast<float>(kvalues[mu - 1]) < static_cast<float>(kvalues[mu]) - x ? mu - 1 : mu;
}

/// @brief One block of 32 floats -> the 18-byte block at blk (ggml's quantize_row_iq4_nl_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  auto* qs = reinterpret_cast<std::uint8_t*>(blk + 2);
  float amax = 0.0f, max = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {  // strictly: the first of equal magnitudes wins
      amax = ax;
      max = x[j];
    }
  }
  if (amax < 1e-15f) {  // GROUP_MAX_EPS: d = +0 (see the top of the file for qs)
    q8_activations::put_half(blk, 0.0f);
    std::memset(qs, 0, block / 2);
    return;
  }
  const float d0 = max / static_cast<float>(kvalues[0]);
  const float id = 1.0f / d0;
  std::uint8_t l[block];
  float sumqx = 0.0f, sumq2 = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    l[j] = static_cast<std::uint8_t>(best_index(rounded(id * x[j])));
    const float q = kvalues[l[j]];
    const float wq = x[j] * x[j] * q;  // ggml's weight[j] * q: two float products (nothing to fuse)
    sumqx += rounded(wq * x[j]);
    sumq2 += rounded(wq * q);
  }
  const float d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  q8_activations::put_half(blk, d);
  for (std::int64_t j = 0; j < block / 2; ++j) qs[j] = static_cast<std::uint8_t>(l[j] | l[j + block / 2] << 4);
}

#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief The 16 bytes (levels + bias) in both 128-bit lanes, for a byte shuffle by the indices.
inline __m256i level_table(std::int8_t bias) noexcept {
  const __m128i t = _mm_setr_epi8(
      static_cast<char>(kvalues[0] + bias), static_cast<char>(kvalues[1] + bias), static_cast<char>(kvalues[2] + bias),
      static_cast<char>(kvalues[3] + bias), static_cast<char>(kvalues[4] + bias), static_cast<char>(kvalues[5] + bias),
      static_cast<char>(kvalues[6] + bias), static_cast<char>(kvalues[7] + bias), static_cast<char>(kvalues[8] + bias),
      static_cast<char>(kvalues[9] + bias), static_cast<char>(kvalues[10] + bias), static_cast<char>(kvalues[11] + bias),
      static_cast<char>(kvalues[12] + bias), static_cast<char>(kvalues[13] + bias), static_cast<char>(kvalues[14] + bias),
      static_cast<char>(kvalues[15] + bias));
  return _mm256_set_m128i(t, t);
}
#endif

/// @brief IQ4_NL's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// the levels kvalues[q] in [-127, 113], signed. AVX2's maddubs pairs stay below int16 saturation:
/// 2 * 127 * 127 = 32258 < 32767. For VNNI the levels shifted by +128 (u8 in [1, 241]) come
/// straight from a shuffle of a second table.
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = true;
  static constexpr bool has_offset = false;
  using int_type = std::int8_t;
  static constexpr std::int32_t zero = 0;
  TFORMER_GGML_DOT_INLINE static const std::int8_t* ints(const std::byte* p, std::int8_t (&buf)[block]) noexcept {
    const std::uint8_t* qs = nibbles_of(p);
    for (std::int64_t j = 0; j < block / 2; ++j) {
      buf[j] = kvalues[qs[j] & 15];
      buf[j + block / 2] = kvalues[qs[j] >> 4];
    }
    return buf;
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return _mm256_shuffle_epi8(level_table(0), q4_0_kernels::unpack_avx2(nibbles_of(p)));  // s8 levels
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    const __m512i table = _mm512_broadcast_i32x4(_mm256_castsi256_si128(level_table(-128)));
    return _mm512_shuffle_epi8(table, q4_0_kernels::unpack_pair_avx512(nibbles_of(a), nibbles_of(b)));
  }
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept {
    return _mm256_shuffle_epi8(level_table(-128), q4_0_kernels::unpack_avx2(nibbles_of(a)));
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

}  // namespace detail::iq4_nl_kernels

/// @brief ggml's IQ4_NL: blocks of 32 4-bit indices into 16 non-linear int8 levels with one
/// binary16 scale each (18 bytes, 4.5 bits per weight), bit-exact with ggml, with a fused int8
/// product for decode (see the top of iq4_nl.hpp).
struct iq4_nl : detail::iq4_nl_kernels::format_base {
  static constexpr const char* name = "iq4_nl";
  static constexpr std::int64_t block_size = detail::iq4_nl_kernels::block;
  static constexpr std::int64_t block_bytes = detail::iq4_nl_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.5;
  static constexpr std::uint32_t ggml_type = 20;  // GGML_TYPE_IQ4_NL
  static constexpr std::int64_t max_fused_rows = detail::iq4_nl_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_iq4_nl_ref); n % 32 == 0.
  using detail::iq4_nl_kernels::format_base::quantize_row;
  /// @brief n / 32 blocks -> y [n]: y[t] = d * (float)kvalues[q_t] (ggml's dequantize_row_iq4_nl;
  /// exact, so contraction cannot change it).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::iq4_nl_kernels::scale_of(blk);
      std::int8_t buf[block_size];
      const std::int8_t* q = detail::iq4_nl_kernels::blocks::ints(blk, buf);
      float* out = y + b * block_size;
      for (std::int64_t t = 0; t < block_size; ++t) out[t] = d * static_cast<float>(q[t]);
    }
  }

  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations).
  using detail::iq4_nl_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32 as ggml's Q8_0. k % 32 == 0.
  using detail::iq4_nl_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t kvalues[qw[j,b,t]] qx[i,b,t] for i < m,
  /// j < n; w points at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  using detail::iq4_nl_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory). Uses best_float_path.
  using detail::iq4_nl_kernels::format_base::float_product;
};

static_assert(fused_format<iq4_nl>);

}  // namespace tformer::quant
