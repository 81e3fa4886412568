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
// (qw[j,b,t] - 8) * qx[i,b,t], the blocks' float sums accumulated with fma. Three compiled paths,
// chosen at compile time: AVX-512 VNNI, AVX2 + FMA, and a scalar reference that defines the result.
// No path writes dequantized weights to memory.
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
#include "q8_activations.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define TFORMER_Q4_0_AVX512VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_Q4_0_AVX2 1
#endif
#if defined(TFORMER_Q4_0_AVX512VNNI) || defined(TFORMER_Q4_0_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::q4_0_kernels {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::for_row_groups;
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

#if defined(TFORMER_Q4_0_AVX2) || defined(TFORMER_Q4_0_AVX512VNNI)
/// @brief The 32 nibbles of qs [16] as u8 in weight order: [qs & 15 (16 bytes), qs >> 4 (16 bytes)].
inline __m256i unpack_avx2(const std::uint8_t* qs) noexcept {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);  // the shift drags bits across bytes:
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));          // the mask drops them
}
#endif

#if defined(TFORMER_Q4_0_AVX512VNNI)
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

// Every path below: acts from q8_activations::prepare (m rows of k activations), w -> n packed
// weight rows of row_bytes each, y[i * ldy + j] for i < m, j < n. As in q8_0, weight row j runs
// outermost and each of its blocks is unpacked once for up to 8 activation rows.

/// @brief The scalar reference, which defines the product: per block the exact int32 sum of
/// (q - 8) x qx (|sum| <= 32 * 8 * 127), then acc = fma(d_w * d_x, (float)sum, acc) block after
/// block. The SIMD paths compute the same integer sums and float scales, and differ only in the
/// order of the float sums.
inline void dot_scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                       std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      float acc[R] = {};
      for (std::int64_t b = 0; b < nb; ++b) {
        const float dw = scale_of(wr + b * block_bytes);
        std::uint8_t qw[block];
        unpack(nibbles_of(wr + b * block_bytes), qw);
        for (int r = 0; r < R; ++r) {
          const std::int8_t* qx = activations::q(acts, k, i0 + r) + b * block;
          std::int32_t sum = 0;
          for (std::int64_t t = 0; t < block; ++t) sum += (static_cast<std::int32_t>(qw[t]) - 8) * qx[t];
          const float dx = activations::scale(acts, k, i0 + r)[b * lanes];
          acc[r] = std::fma(dw * dx, static_cast<float>(sum), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
    }
  });
}

#if defined(TFORMER_Q4_0_AVX2)
/// @brief AVX2 + FMA, one block per register, ggml's sign trick on the signed weights q - 8 in
/// [-8, 7]: maddubs takes |q - 8| as u8 and the activations with the weights' signs, sign(x, q - 8)
/// (activations are in [-127, 127], so the sign flip never wraps). Pairs stay far below int16
/// saturation: 2 * 8 * 127 = 2032.
inline void dot_avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m256 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::byte* blk = wr + b * block_bytes;
        const __m256i qw = _mm256_sub_epi8(unpack_avx2(nibbles_of(blk)), eight);  // q - 8, s8
        const __m256i aw = _mm256_abs_epi8(qw);
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block));
          // 32 products -> 16 int16 pair sums -> 8 int32 lanes of 4 products each (exact)
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, qw)), ones);
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r]);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = q8_activations::hsum(acc[r]);
    }
  });
}
#endif

#if defined(TFORMER_Q4_0_AVX512VNNI)
/// @brief AVX-512 VNNI: two blocks per 512-bit register, vpdpbusd (u8 x s8, 4 products summed per
/// int32 lane). The nibbles q are unsigned already, and q - 8 is the signed weight; as in q8_0 the
/// weights go in shifted by +128, as q + 120 (u8 in [120, 135]), and the activations' lane sums
/// times -128 (corr, from the scratch) start the accumulator:
///   corr + sum_t (q_t + 120) x_t = sum_t (q_t - 8) x_t   (exact).
/// One add per weight block and nothing per activation row. (The alternative, q as it is with
/// -8 * sum x, needs corr / 16: a shift per row and block.)
inline void dot_avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                           std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
  TFORMER_ASSERT(k % block == 0);
  const std::int64_t nb = k / block;
  const __m512i shift = _mm512_set1_epi8(120);
  for_row_groups(m, [&]<int R>(std::int64_t i0) {
    const std::int8_t* qx[R];
    const float* sx[R];
    const std::int32_t* cx[R];
    for (int r = 0; r < R; ++r) {
      qx[r] = activations::q(acts, k, i0 + r);
      sx[r] = activations::scale(acts, k, i0 + r);
      cx[r] = activations::corr(acts, k, i0 + r);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* wr = w + j * row_bytes;
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        // blocks b, b + 1: 64 weights, as q + 120
        const std::byte* blk = wr + b * block_bytes;
        const __m512i wu = _mm512_add_epi8(unpack_pair_avx512(nibbles_of(blk), nibbles_of(blk + block_bytes)), shift);
        const __m512 dw = q8_activations::half_pair(blk, blk + block_bytes);
        for (int r = 0; r < R; ++r) {
          __m512i p = _mm512_loadu_si512(cx[r] + b * lanes);
          p = _mm512_dpbusd_epi32(p, wu, _mm512_loadu_si512(qx[r] + b * block));
          const __m512 s = _mm512_mul_ps(dw, _mm512_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
          acc[r] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc[r]);
        }
      }
      if (b < nb) {
        // the last, odd block: 8 lanes in 256 bits (AVX512VL), added into the lower half of acc
        const std::byte* blk = wr + b * block_bytes;
        const __m256i wu = _mm256_add_epi8(unpack_avx2(nibbles_of(blk)), _mm512_castsi512_si256(shift));
        const __m256 dw = _mm256_set1_ps(scale_of(blk));
        for (int r = 0; r < R; ++r) {
          __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cx[r] + b * lanes));
          p = _mm256_dpbusd_epi32(p, wu, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block)));
          const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));
          // lanes 0..7: s * p + acc; lanes 8..15 keep acc (the undefined upper halves are masked off)
          acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(s), _mm512_castps256_ps512(_mm256_cvtepi32_ps(p)),
                                         acc[r], 0x00FF);
        }
      }
      for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
    }
  });
}
#endif

/// @brief The name of the path fused_product uses in this build.
#if defined(TFORMER_Q4_0_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_Q4_0_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

}  // namespace detail::q4_0_kernels

/// @brief ggml's Q4_0: blocks of 32 4-bit weights with one binary16 scale each (18 bytes, 4.5 bits
/// per weight), bit-exact with ggml, with a fused int8 product for decode (see the top of q4_0.hpp).
struct q4_0 {
  static constexpr const char* name = "q4_0";
  static constexpr std::int64_t block_size = detail::q4_0_kernels::block;
  static constexpr std::int64_t block_bytes = detail::q4_0_kernels::block_bytes;
  static constexpr double bits_per_weight = 4.5;
  static constexpr std::uint32_t ggml_type = 2;  // GGML_TYPE_Q4_0
  static constexpr std::int64_t max_fused_rows = detail::q4_0_kernels::max_rows;

  /// @brief x [n] -> n / 32 blocks (ggml's quantize_row_q4_0_ref); n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block_size == 0);
    for (std::int64_t b = 0; b < n / block_size; ++b)
      detail::q4_0_kernels::quantize_block(x + b * block_size, blocks + b * block_bytes);
  }
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

  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations: 3k a row,
  /// rounded up to 64).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return detail::q8_activations::bytes(m, k);
  }
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32 as ggml's Q8_0, float scales,
  /// lane sums. k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::q8_activations::prepare(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = sum_b d_w[j,b] d_x[i,b] sum_t (qw[j,b,t] - 8) qx[i,b,t] for i < m, j < n;
  /// w points at n packed rows of row_bytes each. Uses the best path compiled in (best_path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_Q4_0_AVX512VNNI)
    detail::q4_0_kernels::dot_avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_Q4_0_AVX2)
    detail::q4_0_kernels::dot_avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    detail::q4_0_kernels::dot_scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

static_assert(fused_format<q4_0>);

}  // namespace tformer::quant
