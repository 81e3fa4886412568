// The loops of the ggml-style fused products (q8_0, q4_0, q4_1), written once: y[i, j] = the dot
// product of activation row i (quantized by q8_activations::prepare) with packed weight row j, for
// up to 8 activation rows at a time, per block of 32 an exact int32 sum of integer weights by int8
// activations, scaled by d_w * d_x in float and accumulated with fma. What differs per format is a
// block policy (see `block_policy` below): how a block's weights become 32 integers, and whether it
// has an offset m_w (Q4_1), whose term m_w * s_x (s_x = d_x * sum_t qx_t) is added per block as well.
// Three compiled paths, chosen at compile time like the rest of the library: AVX-512 VNNI, AVX2 +
// FMA, and a scalar reference that defines the result. No path writes dequantized weights to memory.
// Also the loops of every float-activation product (float_loops: these formats' float_dot, and
// superblock_dot's, lowfloat_dot's, int4_group's), each format giving a block decoder.
// Internal: include a format header (q8_0.hpp, q4_0.hpp, ...).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "../config.hpp"
#include "../core/error.hpp"
#include "q8_activations.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define TFORMER_GGML_DOT_AVX512VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_GGML_DOT_AVX2 1
#endif
#if defined(__AVX512F__) && defined(TFORMER_GGML_DOT_AVX2)
#define TFORMER_GGML_DOT_AVX512F 1
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI) || defined(TFORMER_GGML_DOT_AVX2)
#include <immintrin.h>
#endif

// A block policy's functions run once per weight block in the inner loops: always inlined, so the
// drivers compile to the loops each format would have written out.
#if defined(__GNUC__) || defined(__clang__)
#define TFORMER_GGML_DOT_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define TFORMER_GGML_DOT_INLINE __forceinline
#else
#define TFORMER_GGML_DOT_INLINE inline
#endif
// The same for a lambda (the per-register callbacks of the float products' decoders).
#if defined(__GNUC__) || defined(__clang__)
#define TFORMER_GGML_DOT_LAMBDA_INLINE __attribute__((always_inline))
#else
#define TFORMER_GGML_DOT_LAMBDA_INLINE
#endif

namespace tformer::quant::detail::ggml_dot {

using q8_activations::activations;
using q8_activations::block;  // weights (and activations) per block
using q8_activations::lanes;
using q8_activations::max_rows;

/// @brief A weight block of a ggml format, as the drivers below see it. Every block starts with
/// its scale d_w, an IEEE binary16 (little endian); the rest is the format's:
/// - bytes: the size of a block (blocks are unaligned in memory).
/// - is_signed: the block's integers are int8 weights (Q8_0, Q4_0: w = d_w * int) or unsigned
///   nibbles (Q4_1: w = d_w * int + m_w).
/// - has_offset, offset_at: whether a binary16 offset m_w follows, and at which byte; its term is
///   m_w * s_x per block, s_x from sums(acts, m, k, i) (one float per int32 lane, as the scales).
/// - ints(blk, buf), int_type, zero: for the scalar path, the 32 integers of the block in weight
///   order as int_type, as stored (a pointer into the block) or unpacked into buf, and the value
///   the path subtracts from each (Q4_0's 8: its weights are q - 8; 0 for the others).
/// - ints_avx2(blk): the 32 integers less zero in one register, int8 (signed) or u8 (unsigned).
/// - vnni_pair(a, b), vnni_one(a): the u8 operand of vpdpbusd for the 64 integers of blocks a and b
///   ([a, b], 32 bytes each) or the 32 of a: the integers themselves when unsigned, and int + 128
///   when signed (its -128 * sum_t qx_t comes from the scratch, activations::corr).
template <class B>
concept block_policy = requires(const std::byte* p, typename B::int_type (&buf)[block]) {
  { B::bytes } -> std::convertible_to<std::int64_t>;
  { B::is_signed } -> std::convertible_to<bool>;
  { B::has_offset } -> std::convertible_to<bool>;
  { B::zero } -> std::convertible_to<std::int32_t>;
  { B::ints(p, buf) } -> std::same_as<const typename B::int_type*>;
};

/// @brief The scale d_w of the block at p, as float (exact).
inline float scale_of(const std::byte* p) noexcept { return q8_activations::half_at(p); }

/// @brief Calls fn.template operator()<R>(i0) for each group of R <= MaxRows activation rows
/// starting at i0, with R a compile-time constant (the SIMD paths keep R accumulators in registers).
/// Every quant kernel's row grouping (MaxRows 8 for the decode products, 4 for matmul_integer).
template <std::int64_t MaxRows = max_rows, class Fn>
void for_row_groups(std::int64_t m, Fn&& fn) {
  static_assert(MaxRows >= 1 && MaxRows <= 8, "row groups of 1 to 8 rows");
  const auto call = [&]<std::int64_t... R>(std::int64_t rows, std::int64_t i0, std::integer_sequence<std::int64_t, R...>) {
    static_cast<void>(((rows == R + 1 ? (fn.template operator()<R + 1>(i0), true) : false) || ...));
  };
  for (std::int64_t i0 = 0; i0 < m; i0 += MaxRows)
    call(std::min(MaxRows, m - i0), i0, std::make_integer_sequence<std::int64_t, MaxRows>{});
}

#if defined(TFORMER_GGML_DOT_AVX2)
/// @brief The 8 lanes of v, summed (a fixed order: halves, then pairs).
inline float hsum(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

#if defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief [h(a) x 8, h(b) x 8]: the binary16 fields at a and b (the scales, or offsets, of two
/// blocks), one per int32 lane of their products, as float.
inline __m512 half_pair(const std::byte* a, const std::byte* b) noexcept {
  const __m128i ha = _mm_set1_epi16(static_cast<short>(q8_activations::half_bits(a)));
  const __m128i hb = _mm_set1_epi16(static_cast<short>(q8_activations::half_bits(b)));
  return _mm512_cvtph_ps(_mm256_set_m128i(hb, ha));  // exact, subnormals included
}
#endif

/// @brief The name of the path dot<B>::best uses in this build.
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_GGML_DOT_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

/// @brief The fused product over weights in blocks B. Every path: acts from the format's
/// prepare_activations (m rows of k activations, k % 32 == 0), w -> n packed weight rows of
/// row_bytes each, y[i * ldy + j] for i < m, j < n. The loops run weight row j outermost and, for
/// each block of it, every activation row of the group: a weight block is loaded and decoded once
/// (from L1 at worst) for up to 8 rows, while the activations (3k bytes a row) stay in L1 / L2.
template <block_policy B>
struct dot {
  /// @brief The scalar reference, which defines the product: per block the exact int32 sum I of
  /// the block's integers times the activations' int8, then acc = fma(d_w * d_x, (float)I, acc)
  /// (and acc = fma(m_w, s_x, acc) when B has an offset), block after block. The SIMD paths compute
  /// the same exact integer sums, the same float scales d_w * d_x and take the same s_x; they
  /// differ only in the order of the float sums.
  static void scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = wr + b * B::bytes;
          const float dw = scale_of(blk);
          [[maybe_unused]] float mw = 0.0f;
          if constexpr (B::has_offset) mw = q8_activations::half_at(blk + B::offset_at);
          typename B::int_type buf[block];
          const typename B::int_type* qw = B::ints(blk, buf);
          for (int r = 0; r < R; ++r) {
            const std::int8_t* qx = activations::q(acts, k, i0 + r) + b * block;
            std::int32_t sum = 0;  // |sum| <= 32 * 128 * 127 < 2^24: exact as a float too
            for (std::int64_t t = 0; t < block; ++t) sum += (static_cast<std::int32_t>(qw[t]) - B::zero) * qx[t];
            const float dx = activations::scale(acts, k, i0 + r)[b * lanes];
            acc[r] = std::fma(dw * dx, static_cast<float>(sum), acc[r]);
            if constexpr (B::has_offset) acc[r] = std::fma(mw, B::sums(acts, m, k, i0 + r)[b * lanes], acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief AVX2 + FMA, one 32-byte block per register; maddubs multiplies u8 by s8 (32 products
  /// -> 16 int16 pair sums), madd with ones sums the pairs into 8 int32 lanes of 4 products each,
  /// exact while the pairs stay below int16 saturation (the formats' notes). Unsigned integers go
  /// in as the u8 operand as they are. Signed ones take ggml's sign trick: |w| as u8 and the
  /// activations with the weights' signs, sign(x, w); |w| of the byte -128 is 0x80 = 128 read as
  /// u8, so -128 weights are exact, and the sign flip never wraps because activations are in
  /// [-127, 127]. An offset's term m_w s_x of a block is spread over its 8 lanes: (m_w / 8) s_x
  /// each, with m_w / 8 exact (a binary16 over 8 is a normal float), so the lanes add up to m_w s_x.
  static void avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                   std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    const __m256i ones = _mm256_set1_epi16(1);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      const std::int8_t* qx[R];
      const float* sx[R];
      [[maybe_unused]] const float* bs[R];
      for (int r = 0; r < R; ++r) {
        qx[r] = activations::q(acts, k, i0 + r);
        sx[r] = activations::scale(acts, k, i0 + r);
        if constexpr (B::has_offset) bs[r] = B::sums(acts, m, k, i0 + r);
      }
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m256 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = wr + b * B::bytes;
          const __m256i qw = B::ints_avx2(blk);
          const __m256i uw = B::is_signed ? _mm256_abs_epi8(qw) : qw;  // the u8 operand (-128 -> 128)
          const __m256 dw = _mm256_set1_ps(scale_of(blk));
          [[maybe_unused]] __m256 mw8;
          if constexpr (B::has_offset) mw8 = _mm256_set1_ps(q8_activations::half_at(blk + B::offset_at) * 0.125f);
          for (int r = 0; r < R; ++r) {
            __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block));
            if constexpr (B::is_signed) x = _mm256_sign_epi8(x, qw);  // x * sign(w) (0 where w = 0)
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(uw, x), ones);
            const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
            acc[r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[r]);
            if constexpr (B::has_offset) acc[r] = _mm256_fmadd_ps(mw8, _mm256_loadu_ps(bs[r] + b * lanes), acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = hsum(acc[r]);
      }
    });
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief AVX-512 VNNI: two blocks per 512-bit register, vpdpbusd (u8 x s8, 4 products summed per
  /// int32 lane, no saturation). Unsigned integers are the u8 operand as they are, from a zero
  /// accumulator. Signed ones go in shifted by +128 rather than with the sign trick:
  ///   sum_t (w_t + 128) x_t - 128 sum_t x_t = sum_t w_t x_t,
  /// where w + 128 is formed once per weight block for all the activation rows (B::vnni_pair), and
  /// -128 * sum x comes per lane from the scratch (corr) as dpbusd's starting accumulator. Why:
  /// AVX-512 has no vpsignb, so the sign trick would cost a mask and a masked subtract per
  /// activation row and block, while the shift costs one op per weight block and nothing per row
  /// (the correction is a load); and it is exact for every int8 byte on either side, -128
  /// included. The usual form shifts the activations and subtracts 128 * the weights' sums,
  /// precomputed at packing; ggml's blocks carry no such sums, so here the weights are shifted and
  /// the sums are the activations', made once in prepare. An offset's term as in avx2.
  /// A row with an odd number of blocks ends with one block in the lower half of a register.
  static void avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                         std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      const std::int8_t* qx[R];
      const float* sx[R];
      [[maybe_unused]] const std::int32_t* cx[R];
      [[maybe_unused]] const float* bs[R];
      for (int r = 0; r < R; ++r) {
        qx[r] = activations::q(acts, k, i0 + r);
        sx[r] = activations::scale(acts, k, i0 + r);
        if constexpr (B::is_signed) cx[r] = activations::corr(acts, k, i0 + r);
        if constexpr (B::has_offset) bs[r] = B::sums(acts, m, k, i0 + r);
      }
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        std::int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
          // blocks b, b + 1: 64 integers, as dpbusd's u8 operand
          const std::byte* blk = wr + b * B::bytes;
          const __m512i wu = B::vnni_pair(blk, blk + B::bytes);
          const __m512 dw = half_pair(blk, blk + B::bytes);
          [[maybe_unused]] __m512 mw8;
          if constexpr (B::has_offset)
            mw8 = _mm512_mul_ps(half_pair(blk + B::offset_at, blk + B::bytes + B::offset_at), _mm512_set1_ps(0.125f));
          for (int r = 0; r < R; ++r) {
            // 16 lanes of 4 exact products each (signed: corr + sum (w + 128) x = sum w x)
            __m512i p = B::is_signed ? _mm512_loadu_si512(cx[r] + b * lanes) : _mm512_setzero_si512();
            p = _mm512_dpbusd_epi32(p, wu, _mm512_loadu_si512(qx[r] + b * block));
            const __m512 s = _mm512_mul_ps(dw, _mm512_loadu_ps(sx[r] + b * lanes));  // d_w * d_x per lane
            acc[r] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc[r]);
            if constexpr (B::has_offset) acc[r] = _mm512_fmadd_ps(mw8, _mm512_loadu_ps(bs[r] + b * lanes), acc[r]);
          }
        }
        if (b < nb) {
          // the last, odd block: 8 lanes in 256 bits (AVX512VL), added into the lower half of acc
          const std::byte* blk = wr + b * B::bytes;
          const __m256i wu = B::vnni_one(blk);
          const __m256 dw = _mm256_set1_ps(scale_of(blk));
          [[maybe_unused]] __m256 mw8;
          if constexpr (B::has_offset) mw8 = _mm256_set1_ps(q8_activations::half_at(blk + B::offset_at) * 0.125f);
          for (int r = 0; r < R; ++r) {
            __m256i p = B::is_signed ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cx[r] + b * lanes))
                                     : _mm256_setzero_si256();
            p = _mm256_dpbusd_epi32(p, wu, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx[r] + b * block)));
            const __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(sx[r] + b * lanes));
            // lanes 0..7: s * p + acc (then + (m_w / 8) s_x); lanes 8..15 keep acc (the undefined
            // upper halves are masked off)
            acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(s), _mm512_castps256_ps512(_mm256_cvtepi32_ps(p)),
                                           acc[r], 0x00FF);
            if constexpr (B::has_offset)
              acc[r] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(mw8),
                                             _mm512_castps256_ps512(_mm256_loadu_ps(bs[r] + b * lanes)), acc[r], 0x00FF);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r]);
      }
    });
  }
#endif

  /// @brief The best path compiled in (best_path).
  static void best(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                   std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
    avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_GGML_DOT_AVX2)
    avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The name of the path float_loops<..>::best (and float_dot<B>::best) uses in this build.
#if defined(TFORMER_GGML_DOT_AVX512F)
inline constexpr const char* best_float_path = "avx512";
#elif defined(TFORMER_GGML_DOT_AVX2)
inline constexpr const char* best_float_path = "avx2";
#else
inline constexpr const char* best_float_path = "scalar";
#endif

/// @brief A block decoder of a float-activation product, as float_loops sees it:
/// - bytes: the size of a block of Block weights (blocks are unaligned in memory).
/// - dequantize(blk, w): w [Block] = the block's weights as the format's dequantize_row makes them.
/// - decode_avx2(blk, fn): calls fn(o, v) with v (__m256) the weights o .. o + 7 of the block, for
///   every o in 0, 8, .., Block - 8, each lane bit-identical to dequantize's.
/// - decode_avx512(blk, fn): the same with v (__m512) the weights o .. o + 15.
template <class D>
concept float_decoder = requires(const std::byte* p, float* w) {
  { D::bytes } -> std::convertible_to<std::int64_t>;
  D::dequantize(p, w);
};

/// @brief The loops of every float-activation product (ggml_dot's, superblock_dot's, lowfloat_dot's
/// and kquant_dot's reference), written once: y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for
/// i < m, j < n, x [m, k] floats (row stride ldx), k % Block == 0, w -> n packed rows of row_bytes
/// each, for up to 8 activation rows at a time; the weights of each block decoded by D as the
/// format's dequantize_row makes them, in registers in the SIMD paths (never written to memory).
/// Every path computes the same products of the same weights and activations; they differ only in
/// the order of the float sums.
template <std::int64_t Block, float_decoder D>
struct float_loops {
  /// @brief The reference: a block's weights dequantized (to the stack), then acc = fma(w_t, x_t,
  /// acc), t in order, block after block.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % Block == 0);
    const std::int64_t nb = k / Block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* wr = w + j * row_bytes;
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          float wd[Block];  // the block's weights
          D::dequantize(wr + b * D::bytes, wd);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + (i0 + r) * ldx + b * Block;
            for (std::int64_t t = 0; t < Block; ++t) acc[r] = std::fma(wd[t], xr[t], acc[r]);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

  /// @brief Output columns computed together by the SIMD paths for R activation rows: independent
  /// accumulators hide the FMA latency (one row alone would wait on one chain), and each
  /// activation vector loaded serves every column. Each column's sums keep the same order.
  template <int R>
  static constexpr int columns = R <= 2 ? 4 : (R <= 4 ? 2 : 1);

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief AVX2 + FMA: 8 weights per register, one 8-lane accumulator per activation row and
  /// output column, columns<R> output columns at a time.
  template <int R, int J>
  TFORMER_GGML_DOT_INLINE static void avx2_columns(const float* xb0, std::int64_t ldx, std::int64_t nb, const std::byte* w,
                                                   std::int64_t row_bytes, float* y, std::int64_t ldy) {
    __m256 acc[J][R];
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) acc[c][r] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nb; ++b) {
      const float* xb = xb0 + b * Block;
      for (int c = 0; c < J; ++c)
        D::decode_avx2(w + c * row_bytes + b * D::bytes, [&](int o, __m256 v) TFORMER_GGML_DOT_LAMBDA_INLINE {
          for (int r = 0; r < R; ++r) acc[c][r] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xb + r * ldx + o), acc[c][r]);
        });
    }
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) y[r * ldy + c] = hsum(acc[c][r]);
  }
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % Block == 0);
    const std::int64_t nb = k / Block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int J = columns<R>;
      std::int64_t j = 0;
      for (; j + J <= n; j += J) avx2_columns<R, J>(x + i0 * ldx, ldx, nb, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
      for (; j < n; ++j) avx2_columns<R, 1>(x + i0 * ldx, ldx, nb, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
    });
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512F)
  /// @brief AVX-512: as avx2, 16 weights per register.
  template <int R, int J>
  TFORMER_GGML_DOT_INLINE static void avx512_columns(const float* xb0, std::int64_t ldx, std::int64_t nb, const std::byte* w,
                                                     std::int64_t row_bytes, float* y, std::int64_t ldy) {
    __m512 acc[J][R];
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) acc[c][r] = _mm512_setzero_ps();
    for (std::int64_t b = 0; b < nb; ++b) {
      const float* xb = xb0 + b * Block;
      for (int c = 0; c < J; ++c)
        D::decode_avx512(w + c * row_bytes + b * D::bytes, [&](int o, __m512 v) TFORMER_GGML_DOT_LAMBDA_INLINE {
          for (int r = 0; r < R; ++r) acc[c][r] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + r * ldx + o), acc[c][r]);
        });
    }
    for (int c = 0; c < J; ++c)
      for (int r = 0; r < R; ++r) y[r * ldy + c] = _mm512_reduce_add_ps(acc[c][r]);
  }
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % Block == 0);
    const std::int64_t nb = k / Block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int J = columns<R>;
      std::int64_t j = 0;
      for (; j + J <= n; j += J) avx512_columns<R, J>(x + i0 * ldx, ldx, nb, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
      for (; j < n; ++j) avx512_columns<R, 1>(x + i0 * ldx, ldx, nb, w + j * row_bytes, row_bytes, y + i0 * ldy + j, ldy);
    });
  }
#endif

  /// @brief The best path compiled in (best_float_path).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_GGML_DOT_AVX512F)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_GGML_DOT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The blocks B as float_loops decodes them: dequantize_row's (q - zero) * d_w or
/// q * d_w + m_w (one rounding each: q * d_w is exact).
template <block_policy B>
struct float_blocks {
  static constexpr std::int64_t bytes = B::bytes;

  /// @brief The 32 dequantized weights of the block at blk, in weight order.
  static void dequantize(const std::byte* blk, float* w) noexcept {
    const float dw = scale_of(blk);
    typename B::int_type buf[block];
    const typename B::int_type* q = B::ints(blk, buf);
    if constexpr (B::has_offset) {
      const float mw = q8_activations::half_at(blk + B::offset_at);
      for (std::int64_t t = 0; t < block; ++t) w[t] = std::fma(static_cast<float>(q[t]), dw, mw);
    } else {
      for (std::int64_t t = 0; t < block; ++t) w[t] = static_cast<float>(static_cast<std::int32_t>(q[t]) - B::zero) * dw;
    }
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief The block's 32 integers (B::ints_avx2) widened to int32 and float 8 at a time, scaled
  /// (and offset) as dequantize does.
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx2(const std::byte* blk, Fn&& fn) noexcept {
    const __m256i q = B::ints_avx2(blk);
    const __m256 dw = _mm256_set1_ps(scale_of(blk));
    [[maybe_unused]] __m256 mw;
    if constexpr (B::has_offset) mw = _mm256_set1_ps(q8_activations::half_at(blk + B::offset_at));
    const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
    for (int part = 0; part < 4; ++part) {  // weights 8 * part .. 8 * part + 7
      const __m128i bytes = (part & 1) ? _mm_srli_si128(halves[part >> 1], 8) : halves[part >> 1];
      const __m256i wi = B::is_signed ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes);
      __m256 wf = _mm256_cvtepi32_ps(wi);
      if constexpr (B::has_offset) wf = _mm256_fmadd_ps(wf, dw, mw);
      else wf = _mm256_mul_ps(wf, dw);
      fn(8 * part, wf);
    }
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512F)
  /// @brief As decode_avx2, 16 weights per register.
  template <class Fn>
  TFORMER_GGML_DOT_INLINE static void decode_avx512(const std::byte* blk, Fn&& fn) noexcept {
    const __m256i q = B::ints_avx2(blk);
    const __m512 dw = _mm512_set1_ps(scale_of(blk));
    [[maybe_unused]] __m512 mw;
    if constexpr (B::has_offset) mw = _mm512_set1_ps(q8_activations::half_at(blk + B::offset_at));
    const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
    for (int half = 0; half < 2; ++half) {  // weights 16 * half .. 16 * half + 15
      const __m512i wi = B::is_signed ? _mm512_cvtepi8_epi32(halves[half]) : _mm512_cvtepu8_epi32(halves[half]);
      __m512 wf = _mm512_cvtepi32_ps(wi);
      if constexpr (B::has_offset) wf = _mm512_fmadd_ps(wf, dw, mw);
      else wf = _mm512_mul_ps(wf, dw);
      fn(16 * half, wf);
    }
  }
#endif
};

/// @brief The product with float activations (ops::linear's default for a few rows): y[i, j] =
/// sum_t x[i, t] w[j, t] with w the dequantized weights, made block by block in registers as
/// dequantize_row makes them (float_blocks<B>) and never written to memory; float_loops' paths.
template <block_policy B>
using float_dot = float_loops<block, float_blocks<B>>;

}  // namespace tformer::quant::detail::ggml_dot
