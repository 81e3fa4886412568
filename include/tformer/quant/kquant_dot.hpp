// The loops of the K-quant products (q4_k, q5_k, q6_k), written once for every format whose
// super-block of 256 weights reads, per group g = t / 16 of 16 weights,
//
//   w_t = (d s_g) (q_t - zero) - dmin m_g          (q_t unsigned, s_g, m_g small integers)
//
// (Q4_K, Q5_K: zero 0, s_g and m_g the 6-bit scale and min of sub-block t / 32; Q6_K: zero 32,
// s_g the int8 scale of the group, no min). What differs per format is a super-block policy (see
// superblock_policy below) that reads its scales and unpacks its integers.
//
// fused_product (int8 activations, ggml's Q8_K: q8_k.hpp), per super-block b of weight row j and
// activation row i, with exact int32 sums (|sumi| < 2^28):
//   sumi = sum_g s_g (sum_{t in g} q_t qx_t - zero bsums_g),   summ = sum_g m_g bsums_g
//   acc = fma(d_w d_x, (float)sumi, acc), then acc = fma(-(dmin_w d_x), (float)summ, acc)
// The paths (AVX-512 VNNI, AVX2, scalar) compute the same integers and then the same float
// operations in the same order, so they agree bit for bit: the scalar path is the reference and
// the others equal it exactly.
//
// float_product (float activations, the weights dequantized in registers and never written to
// memory): w_t as dequantize_row makes it (d s_g and dmin m_g are exact products, and so is their
// product with q_t - zero: one rounding, in the subtraction), then acc = fma(w_t, x_t, acc). The
// scalar path sums t in order; AVX2 and AVX-512 keep 8 or 16 lanes in up to 4 accumulators per
// activation row, so they differ from it only in the order of the float sums (within k u sum
// |x w|, u = 2^-24).
// Internal: include a format header (q4_k.hpp, q5_k.hpp, q6_k.hpp).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "ggml_dot.hpp"  // for_row_groups, float_loops, hsum, the path macros and names
#include "kquant.hpp"
#include "q8_k.hpp"

namespace tformer::quant::detail::kquant_dot {

using ggml_dot::for_row_groups;
inline constexpr std::int64_t block = kquant::super_block;  // weights per super-block
inline constexpr int groups = 16;                            // groups of 16 weights per super-block

/// @brief A K-quant super-block as the loops see it:
/// - bytes: the size of a super-block (unaligned in memory);
/// - has_min: whether the weights subtract dmin m_g; zero: what the loops subtract from q_t;
/// - d(blk), dmin(blk): the binary16 super-block scales, as float (dmin only when has_min);
/// - scales(blk, s, m): s_g and m_g for the 16 groups (m all 0 without a min);
/// - unpack(blk, q): the 256 integers q_t in weight order, unsigned, below 64;
/// - part_avx2(blk, p): where compiled, q_t for t = 32 p .. 32 p + 31 as u8 in one register.
template <class B>
concept superblock_policy = requires(const std::byte* p, std::int16_t (&s)[groups], std::uint8_t (&q)[block]) {
  { B::bytes } -> std::convertible_to<std::int64_t>;
  { B::has_min } -> std::convertible_to<bool>;
  { B::zero } -> std::convertible_to<std::int32_t>;
  { B::d(p) } -> std::same_as<float>;
  B::scales(p, s, s);
  B::unpack(p, q);
};

/// @brief fn(std::integral_constant<int, p>{}) for p = 0 .. N - 1: a loop unrolled at compile time
/// (the SIMD paths index registers by part and group).
template <int N, class Fn>
TFORMER_GGML_DOT_INLINE void static_for(Fn&& fn) {
  [&]<int... P>(std::integer_sequence<int, P...>) { (fn(std::integral_constant<int, P>{}), ...); }(std::make_integer_sequence<int, N>{});
}

/// @brief The 256 weights of the super-block at blk as dequantize_row makes them:
/// w_t = (d s_g) (q_t - zero) - dmin m_g, g = t / 16.
template <superblock_policy B>
inline void dequantize_superblock(const std::byte* blk, float* w) noexcept {
  std::int16_t s[groups], mn[groups];
  B::scales(blk, s, mn);
  std::uint8_t q[block];
  B::unpack(blk, q);
  const float d = B::d(blk);
  float dmin = 0.0f;
  if constexpr (B::has_min) dmin = B::dmin(blk);
  for (int g = 0; g < groups; ++g) {
    const float ds = d * static_cast<float>(s[g]), dm = dmin * static_cast<float>(mn[g]);  // exact
    for (int t = 16 * g; t < 16 * g + 16; ++t) w[t] = ds * static_cast<float>(q[t] - B::zero) - dm;
  }
}

/// @brief The names of the paths fused<B>::best and float_dot<B>::best use in this build (the
/// same compile-time choice as ggml_dot's).
using ggml_dot::best_float_path;
using ggml_dot::best_path;

#if defined(TFORMER_GGML_DOT_AVX2) || defined(TFORMER_GGML_DOT_AVX512VNNI)
/// @brief The 8 int32 lanes of v, summed (exact).
inline std::int32_t hsum_epi32(__m256i v) noexcept {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}
#endif

/// @brief The fused product over super-blocks B. Every path: acts from q8_k::prepare (m rows of k
/// activations, k % 256 == 0), w -> n packed weight rows of row_bytes each, y[i * ldy + j] for
/// i < m, j < n. Weight row j outermost, then its super-blocks, then up to 8 activation rows: a
/// super-block is read and its scales decoded once for all of them.
template <superblock_policy B>
struct fused {
  using acts_t = q8_k::activations;

  /// @brief The float terms of super-block blk and activation block ab from its integer sums.
  TFORMER_GGML_DOT_INLINE static float accumulate(float acc, const std::byte* blk, const std::byte* ab, std::int32_t sumi,
                                                  std::int32_t summ) noexcept {
    const float dx = q8_k::scale_of(ab);
    acc = std::fma(B::d(blk) * dx, static_cast<float>(sumi), acc);
    if constexpr (B::has_min) acc = std::fma(-(B::dmin(blk) * dx), static_cast<float>(summ), acc);
    return acc;
  }

  /// @brief The scalar reference (see the top of the file).
  static void scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = w + j * row_bytes + b * B::bytes;
          std::int16_t s[groups], mn[groups];
          B::scales(blk, s, mn);
          std::uint8_t q[block];
          B::unpack(blk, q);
          for (int r = 0; r < R; ++r) {
            const std::byte* ab = acts_t::block_at(acts, k, i0 + r, b);
            const std::int8_t* qx = q8_k::q_of(ab);
            std::int32_t sumi = 0, summ = 0;
            for (int g = 0; g < groups; ++g) {
              std::int32_t sg = 0;
              for (int t = 16 * g; t < 16 * g + 16; ++t) sg += q[t] * qx[t];
              const std::int32_t bs = q8_k::bsum_of(ab, g);
              sumi += s[g] * (sg - B::zero * bs);
              summ += mn[g] * bs;
            }
            acc[r] = accumulate(acc[r], blk, ab, sumi, summ);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief AVX2: per 32 weights, maddubs (u8 q by s8 qx: 16 int16 pair sums, at most 2 * 63 *
  /// 127 = 16002, no saturation) and madd by the groups' scales into 8 int32 lanes; the bsums
  /// terms by madd too; summed to the same integers as the scalar path.
  static void avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                   std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = w + j * row_bytes + b * B::bytes;
          alignas(32) std::int16_t s[groups], mn[groups];
          B::scales(blk, s, mn);
          const std::byte* ab[R];
          __m256i iv[R];
          for (int r = 0; r < R; ++r) {
            ab[r] = acts_t::block_at(acts, k, i0 + r, b);
            iv[r] = _mm256_setzero_si256();
          }
          static_for<8>([&](auto pc) {
            constexpr int p = decltype(pc)::value;
            const __m256i q = B::part_avx2(blk, p);
            const __m256i sc = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(s[2 * p])),
                                                       _mm_set1_epi16(s[2 * p + 1]), 1);
            for (int r = 0; r < R; ++r) {
              const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8_k::q_of(ab[r]) + 32 * p));
              iv[r] = _mm256_add_epi32(iv[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), sc));
            }
          });
          const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
          [[maybe_unused]] const __m256i m16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mn));
          for (int r = 0; r < R; ++r) {
            const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + q8_k::bsums_at));
            __m256i v = iv[r];
            if constexpr (B::zero != 0)
              v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_madd_epi16(bs, s16), _mm256_set1_epi32(B::zero)));
            std::int32_t summ = 0;
            if constexpr (B::has_min) summ = hsum_epi32(_mm256_madd_epi16(bs, m16));
            acc[r] = accumulate(acc[r], blk, ab[r], hsum_epi32(v), summ);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
      }
    });
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  /// @brief AVX-512 VNNI: per 64 weights (groups 4c .. 4c + 3), vpdpbusd of u8 q by s8 qx into a
  /// zero accumulator: 16 int32 lanes of 4 products each, |lane| <= 4 * 63 * 127 = 32004, so each
  /// lane is its own low 16 bits read as int16, and vpmaddwd by the lane's group scale (in the low
  /// 16 bits, 0 above) multiplies it exactly. The bsums terms as in avx2.
  static void avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                         std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    const __m512i lane_group = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        float acc[R] = {};
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = w + j * row_bytes + b * B::bytes;
          alignas(32) std::int16_t s[groups], mn[groups];
          B::scales(blk, s, mn);
          const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
          const __m512i s32 = _mm512_cvtepu16_epi32(s16);  // group g's scale bits in lane g, 0 above
          const std::byte* ab[R];
          __m512i iv[R];
          for (int r = 0; r < R; ++r) {
            ab[r] = acts_t::block_at(acts, k, i0 + r, b);
            iv[r] = _mm512_setzero_si512();
          }
          static_for<4>([&](auto cc) {
            constexpr int c = decltype(cc)::value;
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(B::part_avx2(blk, 2 * c)), B::part_avx2(blk, 2 * c + 1), 1);
            const __m512i sc = _mm512_permutexvar_epi32(_mm512_add_epi32(lane_group, _mm512_set1_epi32(4 * c)), s32);
            for (int r = 0; r < R; ++r) {
              const __m512i x = _mm512_loadu_si512(q8_k::q_of(ab[r]) + 64 * c);
              iv[r] = _mm512_add_epi32(iv[r], _mm512_madd_epi16(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x), sc));
            }
          });
          [[maybe_unused]] const __m256i m16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(mn));
          for (int r = 0; r < R; ++r) {
            const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + q8_k::bsums_at));
            std::int32_t sumi = _mm512_reduce_add_epi32(iv[r]);
            if constexpr (B::zero != 0) sumi -= B::zero * hsum_epi32(_mm256_madd_epi16(bs, s16));
            std::int32_t summ = 0;
            if constexpr (B::has_min) summ = hsum_epi32(_mm256_madd_epi16(bs, m16));
            acc[r] = accumulate(acc[r], blk, ab[r], sumi, summ);
          }
        }
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = acc[r];
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

/// @brief The product with float activations: x [m, k] (row stride ldx), k % 256 == 0; w -> n
/// packed rows of row_bytes each; y[i * ldy + j] = sum_t x[i, t] w_j[t].
template <superblock_policy B>
struct float_dot {
  /// @brief B's super-blocks as ggml_dot::float_loops' reference dequantizes them.
  struct superblocks {
    static constexpr std::int64_t bytes = B::bytes;
    static void dequantize(const std::byte* blk, float* w) noexcept { dequantize_superblock<B>(blk, w); }
  };
  /// @brief Independent accumulators per activation row for the SIMD paths: few rows would
  /// otherwise wait on the latency of one chain of fmas.
  static constexpr int accumulators(int rows) noexcept { return rows <= 2 ? 4 : rows <= 4 ? 2 : 1; }
  /// @brief ds[g] = d s_g and dm[g] = dmin m_g (0 without a min) of the super-block at blk: exact.
  static void group_scales(const std::byte* blk, float* ds, float* dm) noexcept {
    alignas(32) std::int16_t s[groups], mn[groups];
    B::scales(blk, s, mn);
    const float d = B::d(blk);
    float dmin = 0.0f;
    if constexpr (B::has_min) dmin = B::dmin(blk);
#if defined(TFORMER_GGML_DOT_AVX2)
    for (int h = 0; h < 2; ++h) {  // groups 8 h .. 8 h + 7, eight at a time
      const __m256 sf = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(s + 8 * h))));
      const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(mn + 8 * h))));
      _mm256_storeu_ps(ds + 8 * h, _mm256_mul_ps(_mm256_set1_ps(d), sf));
      _mm256_storeu_ps(dm + 8 * h, _mm256_mul_ps(_mm256_set1_ps(dmin), mf));
    }
#else
    for (int g = 0; g < groups; ++g) {
      ds[g] = d * static_cast<float>(s[g]);
      dm[g] = dmin * static_cast<float>(mn[g]);
    }
#endif
  }

  /// @brief The reference: a super-block dequantized (dequantize_superblock), then acc = fma(w_t,
  /// x_t, acc), t in order (ggml_dot::float_loops' scalar path).
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    ggml_dot::float_loops<block, superblocks>::scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }

#if defined(TFORMER_GGML_DOT_AVX2)
  /// @brief AVX2 + FMA: 8 weights at a time, widened to float and dequantized with one fmsub
  /// (d s_g) (q - zero) - dmin m_g (the product exact: the same rounding as dequantize_row), then
  /// multiplied into accumulators(R) independent 8-lane sums per activation row.
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int A = accumulators(R);
      for (std::int64_t j = 0; j < n; ++j) {
        __m256 acc[R][A];
        for (int r = 0; r < R; ++r)
          for (int a = 0; a < A; ++a) acc[r][a] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = w + j * row_bytes + b * B::bytes;
          alignas(32) float ds[groups], dm[groups];
          group_scales(blk, ds, dm);
          static_for<8>([&](auto pc) {
            constexpr int p = decltype(pc)::value;
            const __m256i q = B::part_avx2(blk, p);
            const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
            for (int e = 0; e < 4; ++e) {  // weights 32 p + 8 e .. + 7, group 2 p + e / 2
              const int g = 2 * p + e / 2;
              const __m128i bytes = (e & 1) ? _mm_srli_si128(halves[e >> 1], 8) : halves[e >> 1];
              __m256i qi = _mm256_cvtepu8_epi32(bytes);
              if constexpr (B::zero != 0) qi = _mm256_sub_epi32(qi, _mm256_set1_epi32(B::zero));
              const __m256 wf = _mm256_fmsub_ps(_mm256_broadcast_ss(ds + g), _mm256_cvtepi32_ps(qi), _mm256_broadcast_ss(dm + g));
              for (int r = 0; r < R; ++r) {
                __m256& c = acc[r][(4 * p + e) % A];
                c = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + (i0 + r) * ldx + b * block + 32 * p + 8 * e), c);
              }
            }
          });
        }
        for (int r = 0; r < R; ++r) {
          for (int a = 1; a < A; ++a) acc[r][0] = _mm256_add_ps(acc[r][0], acc[r][a]);
          y[(i0 + r) * ldy + j] = ggml_dot::hsum(acc[r][0]);
        }
      }
    });
  }
#endif

#if defined(TFORMER_GGML_DOT_AVX512F)
  /// @brief AVX-512: as avx2, one group of 16 weights per register.
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    TFORMER_ASSERT(k % block == 0);
    const std::int64_t nb = k / block;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      constexpr int A = accumulators(R);
      for (std::int64_t j = 0; j < n; ++j) {
        __m512 acc[R][A];
        for (int r = 0; r < R; ++r)
          for (int a = 0; a < A; ++a) acc[r][a] = _mm512_setzero_ps();
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::byte* blk = w + j * row_bytes + b * B::bytes;
          alignas(64) float ds[groups], dm[groups];
          group_scales(blk, ds, dm);
          static_for<8>([&](auto pc) {
            constexpr int p = decltype(pc)::value;
            const __m256i q = B::part_avx2(blk, p);
            const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
            for (int h = 0; h < 2; ++h) {  // group 2 p + h
              const int g = 2 * p + h;
              __m512i qi = _mm512_cvtepu8_epi32(halves[h]);
              if constexpr (B::zero != 0) qi = _mm512_sub_epi32(qi, _mm512_set1_epi32(B::zero));
              const __m512 wf = _mm512_fmsub_ps(_mm512_set1_ps(ds[g]), _mm512_cvtepi32_ps(qi), _mm512_set1_ps(dm[g]));
              for (int r = 0; r < R; ++r) {
                __m512& c = acc[r][g % A];
                c = _mm512_fmadd_ps(wf, _mm512_loadu_ps(x + (i0 + r) * ldx + b * block + 16 * g), c);
              }
            }
          });
        }
        for (int r = 0; r < R; ++r) {
          for (int a = 1; a < A; ++a) acc[r][0] = _mm512_add_ps(acc[r][0], acc[r][a]);
          y[(i0 + r) * ldy + j] = _mm512_reduce_add_ps(acc[r][0]);
        }
      }
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

/// @brief The members of a format with ggml's Q8_K activations and a fused<B> product that only
/// forward (K-quants, and q2_k, q3_k, tq2_0 beside superblock_dot::format_base).
template <superblock_policy B>
struct fused_base {
  /// @brief Scratch bytes for m rows of k activations (q8_k::activations).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept { return q8_k::bytes(m, k); }
  /// @brief x [m, k] (row stride ldx) -> acts: ggml's Q8_K blocks. k % 256 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    q8_k::prepare(x, ldx, m, k, acts);
  }
  /// @brief fused<B>::best: the fused product's best path compiled in (best_path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    fused<B>::best(acts, m, k, w, row_bytes, n, y, ldy);
  }
};

/// @brief The members of a K-quant format that only forward: QuantizeBlock(x, blk) quantizes one
/// super-block of 256 floats into B::bytes bytes; dequantize_row, the Q8_K activations and the
/// products come from B through the loops above. Each format's struct derives from it and names
/// (and documents) the members it takes.
template <superblock_policy B, auto QuantizeBlock>
struct format_base : fused_base<B> {
  /// @brief x [n] -> n / 256 super-blocks, one QuantizeBlock each; n % 256 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block == 0);
    for (std::int64_t b = 0; b < n / block; ++b) QuantizeBlock(x + b * block, blocks + b * B::bytes);
  }
  /// @brief n / 256 super-blocks -> y [n] (dequantize_superblock: ggml's dequantize_row_*).
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block == 0);
    for (std::int64_t b = 0; b < n / block; ++b) dequantize_superblock<B>(blocks + b * B::bytes, y + b * block);
  }
  /// @brief float_dot<B>::best: the float-activation product's best path (best_float_path).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    float_dot<B>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

}  // namespace tformer::quant::detail::kquant_dot
