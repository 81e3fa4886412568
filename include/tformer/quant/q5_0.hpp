// quant::q5_0: ggml's Q5_0 weights, bit-exact with ggml (GGML type 6). A row is cut into blocks of
// 32 weights; a block is 22 bytes, unaligned in memory:
//
//   offset 0   ggml_half d       IEEE binary16 scale, little endian
//   offset 2   uint8 qh[4]       the fifth bits: bit t of the little-endian uint32 qh is bit 4 of q_t
//   offset 6   uint8 qs[16]      the low nibbles: q_j & 15 = qs[j] & 15, q_{j+16} & 15 = qs[j] >> 4
//
//   weight t = (float)(q_t - 16) * (float)d, q_t in [0, 31]
//
// Quantization is ggml's quantize_row_q5_0_ref: max = the x_j of largest magnitude, sign kept (the
// first one on ties), d = max / -16 (float), id = d != 0 ? 1 / d : 0 (from the float d), q_j =
// MIN(31, (int8_t)(x_j * id + 16.5f)), and d is stored rounded to nearest even. 5.5 bits per
// weight. "Bit-exact with ggml" means, as for Q4_0 (see q4_0.hpp), the C source evaluated as ISO C
// writes it: x_j * id rounded to float (ggml stores it in a variable), then + 16.5f rounded to
// float, then truncated; a compiler that contracts the two into an fma (GCC's -ffp-contract=fast
// on an FMA target) rounds once and differs on rare inputs. tformer computes it so that no
// compiler setting can contract it (quant_of below, q4_0's nibble_of with 32 levels). gguf-py's
// numpy quantizer and ggml's x86 builds without FMA in the baseline evaluate it the same way.
//
// The fused product (decode, up to 8 activation rows) pairs Q5_0 with Q8_0 activations, as ggml
// does: per block of 32, int8 with a float scale exactly as q8_0, and exact int32 sums per block,
// y[i, j] = sum_b (d_w[j,b] * d_x[i,b]) * sum_t (qw[j,b,t] - 16) * qx[i,b,t], the blocks' float
// sums accumulated with fma. Its loops are ggml_dot.hpp's (three compiled paths, chosen at compile
// time: AVX-512 VNNI, AVX2 + FMA, and a scalar reference that defines the result); the block's part
// of them is q5_0_kernels::blocks. No path writes dequantized weights to memory.
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
#include "q4_0.hpp"  // the nibble layout (unpack, unpack_avx2)
#include "q8_activations.hpp"

namespace tformer::quant {

namespace detail::q5_0_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;

inline constexpr std::int64_t block_bytes = 22;  // fp16 scale + 4 bytes of fifth bits + 16 bytes of nibbles

/// @brief The scale d of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }
/// @brief The fifth bits qh at p (4 bytes), as ggml's little-endian uint32.
inline std::uint32_t high_bits_at(const std::byte* qh) noexcept {
  const auto* b = reinterpret_cast<const std::uint8_t*>(qh);
  return std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
}
/// @brief Stores qh at p as a little-endian uint32.
inline void put_high_bits(std::byte* p, std::uint32_t qh) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(qh >> (8 * i));
}

/// @brief up[n] = n + 1 - h, h = half the spacing of the floats just below n + 1 (n < 32): the
/// smallest real that rounds to n + 1 in float (the tie goes to n + 1). Exact in double.
inline constexpr std::array<double, 32> round_up_from = [] {
  std::array<double, 32> t{};
  for (unsigned n = 0; n < 32; ++n)
    t[n] = static_cast<double>(n + 1) - 1.0 / static_cast<double>(1u << (25 - std::bit_width(n)));
  return t;
}();

/// @brief ggml's MIN(31, (int8_t)(p + c)) with p + c rounded to float first, for a float p and
/// c = 16.5 (Q5_0) or 0.5 (Q5_1, whose (uint8_t) cast is the same for its sums, which lie in
/// [0.5, 31.5] when finite). As q4_0's nibble_of: e = p + c formed in double (exact when |p| >=
/// 2^-25; smaller |p| leave e within 2^-25 of c, far from a rounding boundary), compared with
/// round_up_from, so no compiler can fuse it with the multiply that made p. A NaN or infinite e (a
/// scale whose 1 / d overflows) gives 0, as ggml's int8 conversion does on x86.
inline std::uint8_t quant_of(float p, double c) noexcept {
  const double e = static_cast<double>(p) + c;
  if (!(e >= 0.0)) return 0;  // NaN, -inf (a finite e is >= 0.5 - 2^-20)
  if (!(e < 32.0)) return e < 128.0 ? 31 : 0;
  auto n = static_cast<unsigned>(e);  // floor(e), 0 .. 31
  if (e >= round_up_from[n]) ++n;     // fl(e) is n + 1
  return static_cast<std::uint8_t>(n > 31 ? 31 : n);
}

/// @brief The 32 values q_t of a block (low nibbles qs [16], fifth bits qh) in weight order.
inline void unpack5(const std::uint8_t* qs, std::uint32_t qh, std::uint8_t* w) noexcept {
  for (std::int64_t j = 0; j < block / 2; ++j) {
    w[j] = static_cast<std::uint8_t>((qs[j] & 15) | ((qh >> j) & 1) << 4);
    w[j + block / 2] = static_cast<std::uint8_t>((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
  }
}

/// @brief Packs q [32] (values < 32, weight order) into qh (at p) and qs [16] (at p + 4).
inline void pack5(const std::uint8_t* q, std::byte* p) noexcept {
  std::uint32_t qh = 0;
  auto* qs = reinterpret_cast<std::uint8_t*>(p + 4);
  for (std::int64_t j = 0; j < block / 2; ++j) {
    const std::uint8_t lo = q[j], hi = q[j + block / 2];
    qs[j] = static_cast<std::uint8_t>((lo & 15) | (hi & 15) << 4);
    qh |= std::uint32_t{(lo & 0x10u) >> 4} << j;
    qh |= std::uint32_t{(hi & 0x10u) >> 4} << (j + 16);
  }
  put_high_bits(p, qh);
}

/// @brief One block of 32 floats -> the 22-byte block at blk (ggml's quantize_row_q5_0_ref).
inline void quantize_block(const float* x, std::byte* blk) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (std::int64_t j = 0; j < block; ++j) {
    const float a = std::fabs(x[j]);
    if (amax < a) {  // strictly: the first of equal magnitudes wins
      amax = a;
      max = x[j];
    }
  }
  const float d = max / -16.0f;  // an all-zero block: d = -0 (0x8000), as in ggml
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  q8_activations::put_half(blk, d);
  std::uint8_t q[block];
  for (std::int64_t j = 0; j < block; ++j) q[j] = quant_of(x[j] * id, 16.5);
  pack5(q, blk + 2);
}

#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief 0xFF in byte t where bit t of qh is set, 0 elsewhere (ggml's bytes_from_bits_32).
inline __m256i bytes_from_bits(std::uint32_t qh) noexcept {
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), shuf);  // byte t: qh byte t / 8
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));                 // all but bit t % 8 set
  return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}
/// @brief The 32 values q_t of the block whose fifth bits are at p (nibbles at p + 4) as u8 in
/// weight order, in [0, 31].
inline __m256i unpack5_avx2(const std::byte* p) noexcept {
  const __m256i lo = q4_0_kernels::unpack_avx2(reinterpret_cast<const std::uint8_t*>(p + 4));
  return _mm256_or_si256(lo, _mm256_and_si256(bytes_from_bits(high_bits_at(p)), _mm256_set1_epi8(0x10)));
}
#endif

/// @brief Q5_0's blocks in ggml_dot's fused product (a ggml_dot::block_policy): the integers are
/// the signed weights q - 16 in [-16, 15]. AVX2's maddubs pairs stay far below int16 saturation:
/// 2 * 16 * 127 = 4064. For VNNI the weights shifted by +128 are q + 112 (u8 in [112, 143]).
struct blocks {
  static constexpr std::int64_t bytes = block_bytes;
  static constexpr bool is_signed = true;
  static constexpr bool has_offset = false;
  using int_type = std::uint8_t;
  static constexpr std::int32_t zero = 16;
  TFORMER_GGML_DOT_INLINE static const std::uint8_t* ints(const std::byte* p, std::uint8_t (&buf)[block]) noexcept {
    unpack5(reinterpret_cast<const std::uint8_t*>(p + 6), high_bits_at(p + 2), buf);
    return buf;
  }
#if defined(TFORMER_GGML_DOT_AVX2)
  TFORMER_GGML_DOT_INLINE static __m256i ints_avx2(const std::byte* p) noexcept {
    return _mm256_sub_epi8(unpack5_avx2(p + 2), _mm256_set1_epi8(16));  // q - 16, s8
  }
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  TFORMER_GGML_DOT_INLINE static __m256i vnni_one(const std::byte* a) noexcept {
    return _mm256_add_epi8(unpack5_avx2(a + 2), _mm256_set1_epi8(112));
  }
  TFORMER_GGML_DOT_INLINE static __m512i vnni_pair(const std::byte* a, const std::byte* b) noexcept {
    return _mm512_inserti64x4(_mm512_castsi256_si512(vnni_one(a)), vnni_one(b), 1);
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

}  // namespace detail::q5_0_kernels

/// @brief ggml's Q5_0: blocks of 32 5-bit weights with one binary16 scale each (22 bytes, 5.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q5_0.hpp).
struct q5_0 : detail::q5_0_kernels::format_base {
  static constexpr const char* name = "q5_0";
  static constexpr std::int64_t block_size = detail::q5_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q5_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 5.5;
  static constexpr std::uint32_t ggml_type = 6;  // GGML_TYPE_Q5_0
  static constexpr std::int64_t max_fused_rows = detail::q5_0_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q5_0_ref); n % 32 == 0.
  using detail::q5_0_kernels::format_base::quantize_row;
  /// @brief n / 32 blocks -> y [n]: y[t] = (float)(q_t - 16) * d, a float multiply (ggml's
  /// dequantize_row_q5_0; exact, so contraction cannot change it).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b) {
      const std::byte* blk = blocks + b * block_bytes;
      const float d = detail::q5_0_kernels::scale_of(blk);
      std::uint8_t buf[block_size];
      const std::uint8_t* q = detail::q5_0_kernels::blocks::ints(blk, buf);
      float* out = y + b * block_size;
      for (std::int64_t t = 0; t < block_size; ++t) out[t] = static_cast<float>(q[t] - 16) * d;
    }
  }
  /// @brief GPTQ's per-weight step (requantize.hpp): weight i of the packed row to the level l in
  /// [-16, 15] of its block's d nearest x; returns (float)l * d.
  static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept {
    std::byte* blk = row + i / block_size * block_bytes;
    const float d = detail::q5_0_kernels::scale_of(blk);
    const int l = detail::requantize::nearest_level(x, d, 0.0f, -16, 15);
    detail::requantize::set_code5(blk + 2, i % block_size, l + 16);
    return static_cast<float>(l) * d;
  }

  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations).
  using detail::q5_0_kernels::format_base::activation_bytes;
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32 as ggml's Q8_0. k % 32 == 0.
  using detail::q5_0_kernels::format_base::prepare_activations;
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t (qw[j,b,t] - 16) qx[i,b,t] for i < m, j < n;
  /// w points at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  using detail::q5_0_kernels::format_base::fused_product;
  /// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n with float activations
  /// and the weights dequantized in registers (never written to memory). Uses best_float_path.
  using detail::q5_0_kernels::format_base::float_product;
};

static_assert(fused_format<q5_0>);

}  // namespace tformer::quant
