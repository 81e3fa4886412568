// ONNX's MatMulInteger (opset 10+) as a free function on tensor views, equal to the ONNX reference
// evaluator (onnx.reference.ReferenceEvaluator; fixtures written by
// tools/make_onnx_quant_fixtures.py, checked by tests/quant/test_matmul_integer.cpp):
//
//   Y[..., i, j] = sum_k (A[..., i, k] - a_zero_point[i]) * (B[k, j] - b_zero_point[j])   (int32)
//
//   A [K] or [..., M, K] (rank 1 to 4, uint8 or int8), B [K, N] (uint8 or int8, 2-D: ONNX's
//   batched B is not supported), Y [N] or [..., M, N] int32. Any strides.
//   a_zero_point: absent (0), a scalar (rank 0 or one element: per tensor) or [M] (per row of A,
//   M = A.dim(-2), the same for every batch; ONNX's "1-D tensor of the number of rows of A").
//   b_zero_point: absent, a scalar, or [N] (per column of B). Zero points have their operand's type.
//   (The reference evaluator subtracts a_zero_point with numpy broadcasting, under which a 1-D [M]
//   zero point would apply to A's columns; its per-row result is the one of an [M, 1] zero point,
//   which is what the fixture compares tformer's [M] with.)
//
// The products are exact and the sums are int32 sums, wrapping modulo 2^32 as numpy's int32 matmul
// does (it only happens past K = 33025 uint8 terms of 255 * 255); every path gives the same bits.
// Three paths, chosen at compile time like the rest of the library, all against the same packing:
// - scalar: the reference, the formula above term by term (int64 sums, narrowed modulo 2^32).
// - avx2: the differences (A - za) and (B - zb) as int16 (in [-255, 255]), multiplied with
//   vpmaddwd (int16 pairs -> exact int32 sums; maddubs would saturate its int16 pairs for uint8 x
//   int8 data), 4 rows x 16 columns of accumulators.
// - avx512vnni: vpdpbusd, u8 x s8 -> int32 with no saturation, 4 rows x 32 columns. The operands go
//   in as u8 ua = A (uint8) or A + 128 (int8, a flipped sign bit) and s8 sb = B (int8) or B - 128
//   (uint8). With ZA = za + (A int8 ? 128 : 0) and ZB = zb - (B uint8 ? 128 : 0), A - za = ua - ZA
//   and B - zb = sb - ZB, so
//     Y = sum_k ua sb - ZB sum_k ua - ZA sum_k sb + K ZA ZB,
//   the row sums of ua and column sums of sb taken once while packing, all modulo 2^32.
// B is packed per panel of columns (each task packs its own panel: K x 128 bytes or int16s), A's
// rows once for all tasks; panels run in parallel over tformer's threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/memory.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "ggml_dot.hpp"         // for_row_groups
#include "quantize_linear.hpp"  // onnx_integer

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
#define TFORMER_MATMUL_INTEGER_AVX512VNNI 1
#endif
#if defined(__AVX2__)
#define TFORMER_MATMUL_INTEGER_AVX2 1
#endif
#if defined(TFORMER_MATMUL_INTEGER_AVX512VNNI) || defined(TFORMER_MATMUL_INTEGER_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::matmul_integer_kernels {

/// @brief One MatMulInteger, checked: a's rows (a.rows() of them, K each), b [K, N], y's rows, the
/// zero point of A's row r (za[r % za_period]) and of B's column j (zb[j]), as int32.
template <class TA, class TB>
struct problem {
  tensor_view<const TA> a;  // [..., M, K] or [K]
  tensor_view<const TB> b;  // [K, N]
  tensor_view<std::int32_t> y;  // [..., M, N] or [N]
  std::vector<std::int32_t> za;  // [za_period]: per row of A (period M) or one per tensor
  std::vector<std::int32_t> zb;  // [N]
  std::int64_t rows = 0, k = 0, n = 0;

  std::int32_t a_zero(std::int64_t r) const noexcept { return za[static_cast<std::size_t>(r) % za.size()]; }
  TA a_at(std::int64_t r, std::int64_t t) const noexcept {
    return a.rank() == 1 ? a.data()[t * a.stride(0)] : a.row(r)[t * a.stride(-1)];
  }
  /// @brief A's row r (K elements, a.stride(-1) apart).
  const TA* a_row(std::int64_t r) const noexcept { return a.rank() == 1 ? a.data() : a.row(r); }
  std::int64_t a_step() const noexcept { return a.stride(-1); }
  TB b_at(std::int64_t t, std::int64_t j) const noexcept { return b.data()[t * b.stride(0) + j * b.stride(1)]; }
  /// @brief Y's row r (N elements, y.stride(-1) apart).
  std::int32_t* y_row(std::int64_t r) const noexcept { return y.rank() == 1 ? y.data() : y.row(r); }
  std::int32_t& y_at(std::int64_t r, std::int64_t j) const noexcept {
    return y.rank() == 1 ? y.data()[j * y.stride(0)] : y.row(r)[j * y.stride(-1)];
  }
};

/// @brief x modulo 2^32 as int32 (C++20 defines the narrowing conversion so).
inline std::int32_t wrap(std::int64_t x) noexcept { return static_cast<std::int32_t>(static_cast<std::uint32_t>(x)); }
/// @brief a + b * c modulo 2^32, without signed overflow.
inline std::uint32_t mad32(std::uint32_t a, std::int64_t b, std::int64_t c) noexcept {
  return a + static_cast<std::uint32_t>(b) * static_cast<std::uint32_t>(c);
}

/// @brief The reference: Y[r, j] = sum_k (A[r, k] - za) (B[k, j] - zb), exact, modulo 2^32.
template <class TA, class TB>
void scalar(const problem<TA, TB>& p) {
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const std::int64_t za = p.a_zero(r);
    for (std::int64_t j = 0; j < p.n; ++j) {
      const std::int64_t zb = p.zb[static_cast<std::size_t>(j)];
      std::int64_t sum = 0;  // |term| <= 255 * 255: exact for any K below 2^47
      for (std::int64_t t = 0; t < p.k; ++t) sum += (p.a_at(r, t) - za) * (p.b_at(t, j) - zb);
      p.y_at(r, j) = wrap(sum);
    }
  }
}

inline constexpr std::int64_t panel_cols = 128;  // columns of B per task
inline constexpr std::int64_t max_rows = 4;      // rows of A per micro-kernel call

/// @brief Calls fn.template operator()<R>(r0) for row groups of R <= 4 rows.
template <class Fn>
void for_row_groups(std::int64_t rows, Fn&& fn) {
  ggml_dot::for_row_groups<max_rows>(rows, fn);
}

/// @brief Runs panel(j0, cols) for the panels of panel_cols columns, in parallel.
template <class TA, class TB, class Fn>
void for_panels(const problem<TA, TB>& p, Fn&& panel) {
  const std::int64_t panels = (p.n + panel_cols - 1) / panel_cols;
  parallel_for(panels, [&](std::int64_t c) { panel(c * panel_cols, std::min(panel_cols, p.n - c * panel_cols)); },
               p.rows * p.k * panel_cols / 4);
}

#if defined(TFORMER_MATMUL_INTEGER_AVX2)
/// @brief AVX2: int16 differences and vpmaddwd (see the top of the file).
template <class TA, class TB>
void avx2(const problem<TA, TB>& p) {
  const std::int64_t kp = (p.k + 1) / 2 * 2;  // K padded to pairs (zeros)
  // A's rows as int16 (a - za): [rows, kp]
  auto a16 = allocate_aligned<std::int16_t>(static_cast<std::size_t>(std::max<std::int64_t>(p.rows * kp, 1)));
  for (std::int64_t r = 0; r < p.rows; ++r) {
    std::int16_t* dst = a16.get() + r * kp;
    const std::int32_t za = p.a_zero(r);
    const TA* src = p.a_row(r);
    const std::int64_t step = p.a_step();
    for (std::int64_t t = 0; t < p.k; ++t) dst[t] = static_cast<std::int16_t>(src[t * step] - za);
    if (kp > p.k) dst[p.k] = 0;
  }
  constexpr std::int64_t group = 16;  // columns per micro-kernel (two registers of 8)
  for_panels(p, [&](std::int64_t j0, std::int64_t cols) {
    const std::int64_t groups = (cols + group - 1) / group;
    // B's panel: per group of 16 columns, per pair of k, 16 x (b[2q, j] - zb, b[2q+1, j] - zb) int16
    std::vector<std::int16_t> b16(static_cast<std::size_t>(groups * kp * group), 0);  // [groups, kp / 2, 16, 2]
    for (std::int64_t t = 0; t < p.k; ++t) {  // B's rows in order (reads along a row of B)
      const TB* src = p.b.data() + t * p.b.stride(0) + j0 * p.b.stride(1);
      std::int16_t* dst = b16.data() + (t / 2) * 2 * group + (t & 1);
      for (std::int64_t c = 0; c < cols; ++c)
        dst[(c / group) * kp * group + 2 * (c % group)] =
            static_cast<std::int16_t>(src[c * p.b.stride(1)] - p.zb[static_cast<std::size_t>(j0 + c)]);
    }
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::int16_t* bg = b16.data() + g * kp * group;
      const std::int64_t gc = std::min(group, cols - g * group);
      for_row_groups(p.rows, [&]<int R>(std::int64_t r0) {
        __m256i acc[R][2];
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        for (std::int64_t q = 0; q < kp / 2; ++q) {
          const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + q * 2 * group));
          const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + q * 2 * group + group));
          for (int r = 0; r < R; ++r) {
            std::int32_t pair;
            std::memcpy(&pair, a16.get() + (r0 + r) * kp + 2 * q, sizeof pair);
            const __m256i av = _mm256_set1_epi32(pair);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
          }
        }
        for (int r = 0; r < R; ++r) {
          alignas(32) std::int32_t out[group];
          _mm256_store_si256(reinterpret_cast<__m256i*>(out), acc[r][0]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + 8), acc[r][1]);
          std::int32_t* yr = p.y_row(r0 + r);
          const std::int64_t ys = p.y.stride(-1);
          for (std::int64_t c = 0; c < gc; ++c) yr[(j0 + g * group + c) * ys] = out[c];
        }
      });
    }
  });
}
#endif

#if defined(TFORMER_MATMUL_INTEGER_AVX512VNNI)
/// @brief AVX-512 VNNI: vpdpbusd on shifted u8 / s8 operands and sum corrections (see the top).
template <class TA, class TB>
void avx512vnni(const problem<TA, TB>& p) {
  constexpr std::int32_t oa = std::is_same_v<TA, std::int8_t> ? 128 : 0;   // ua = a + oa
  constexpr std::int32_t ob = std::is_same_v<TB, std::uint8_t> ? 128 : 0;  // sb = b - ob
  const std::int64_t kp = (p.k + 3) / 4 * 4;  // K padded to quads (zeros)
  // A's rows as u8 ua: [rows, kp]; their sums
  auto ua = allocate_aligned<std::uint8_t>(static_cast<std::size_t>(std::max<std::int64_t>(p.rows * kp, 1)));
  std::vector<std::uint32_t> ua_sum(static_cast<std::size_t>(p.rows), 0);
  for (std::int64_t r = 0; r < p.rows; ++r) {
    std::uint8_t* dst = ua.get() + r * kp;
    std::uint32_t s = 0;
    const TA* src = p.a_row(r);
    const std::int64_t step = p.a_step();
    for (std::int64_t t = 0; t < p.k; ++t) {
      dst[t] = static_cast<std::uint8_t>(src[t * step] + oa);
      s += dst[t];
    }
    for (std::int64_t t = p.k; t < kp; ++t) dst[t] = 0;
    ua_sum[static_cast<std::size_t>(r)] = s;
  }
  constexpr std::int64_t group = 32;  // columns per micro-kernel (two registers of 16)
  for_panels(p, [&](std::int64_t j0, std::int64_t cols) {
    const std::int64_t groups = (cols + group - 1) / group;
    // B's panel: per group of 32 columns, per quad of k, 32 x (sb[4q .. 4q + 3, j]) int8
    std::vector<std::int8_t> sb(static_cast<std::size_t>(groups * kp * group), 0);  // [groups, kp / 4, 32, 4]
    std::vector<std::uint32_t> sb_sum(static_cast<std::size_t>(cols), 0);
    for (std::int64_t t = 0; t < p.k; ++t) {  // B's rows in order (reads along a row of B)
      const TB* src = p.b.data() + t * p.b.stride(0) + j0 * p.b.stride(1);
      std::int8_t* dst = sb.data() + (t / 4) * 4 * group + (t & 3);
      for (std::int64_t c = 0; c < cols; ++c) {
        const auto v = static_cast<std::int8_t>(src[c * p.b.stride(1)] - ob);
        dst[(c / group) * kp * group + 4 * (c % group)] = v;
        sb_sum[static_cast<std::size_t>(c)] += static_cast<std::uint32_t>(static_cast<std::int32_t>(v));
      }
    }
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::int8_t* bg = sb.data() + g * kp * group;
      const std::int64_t gc = std::min(group, cols - g * group);
      for_row_groups(p.rows, [&]<int R>(std::int64_t r0) {
        __m512i acc[R][2];
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
        for (std::int64_t q = 0; q < kp / 4; ++q) {
          const __m512i b0 = _mm512_loadu_si512(bg + q * 4 * group);
          const __m512i b1 = _mm512_loadu_si512(bg + q * 4 * group + 64);
          for (int r = 0; r < R; ++r) {
            std::int32_t quad;
            std::memcpy(&quad, ua.get() + (r0 + r) * kp + 4 * q, sizeof quad);
            const __m512i av = _mm512_set1_epi32(quad);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
          }
        }
        for (int r = 0; r < R; ++r) {
          alignas(64) std::int32_t out[group];
          _mm512_store_si512(out, acc[r][0]);
          _mm512_store_si512(out + 16, acc[r][1]);
          const std::int64_t row = r0 + r;
          std::int32_t* yr = p.y_row(row);
          const std::int64_t ys = p.y.stride(-1);
          const std::int64_t za = std::int64_t{p.a_zero(row)} + oa;  // ZA
          for (std::int64_t c = 0; c < gc; ++c) {
            const std::int64_t cc = g * group + c, j = j0 + cc;
            const std::int64_t zb = std::int64_t{p.zb[static_cast<std::size_t>(j)]} - ob;  // ZB
            std::uint32_t v = static_cast<std::uint32_t>(out[c]);
            v -= static_cast<std::uint32_t>(zb) * ua_sum[static_cast<std::size_t>(row)];
            v -= static_cast<std::uint32_t>(za) * sb_sum[static_cast<std::size_t>(cc)];
            v = mad32(v, p.k * za, zb);
            yr[j * ys] = static_cast<std::int32_t>(v);
          }
        }
      });
    }
  });
}
#endif

/// @brief The name of the path best() uses in this build.
#if defined(TFORMER_MATMUL_INTEGER_AVX512VNNI)
inline constexpr const char* best_path = "avx512vnni";
#elif defined(TFORMER_MATMUL_INTEGER_AVX2)
inline constexpr const char* best_path = "avx2";
#else
inline constexpr const char* best_path = "scalar";
#endif

/// @brief The best path compiled in (best_path).
template <class TA, class TB>
void best(const problem<TA, TB>& p) {
#if defined(TFORMER_MATMUL_INTEGER_AVX512VNNI)
  avx512vnni(p);
#elif defined(TFORMER_MATMUL_INTEGER_AVX2)
  avx2(p);
#else
  scalar(p);
#endif
}

/// @brief Checks the operands (see matmul_integer) and returns the problem.
template <class TA, class TB>
problem<TA, TB> make_problem(tensor_view<const TA> a, tensor_view<const TB> b, tensor_view<std::int32_t> y,
                             tensor_view<const TA> a_zero_point, tensor_view<const TB> b_zero_point) {
  const std::string where = "tformer::quant::matmul_integer: ";
  if (a.rank() < 1) throw shape_error(where + "A must have rank 1 to 4, got a scalar");
  if (b.rank() != 2)
    throw shape_error(where + "B must be 2-D [K, N], got " + b.shape().to_string() +
                      (b.rank() > 2 ? " (batched B is not supported)" : ""));
  if (a.dim(-1) != b.dim(0))
    throw shape_error(where + "A " + a.shape().to_string() + " and B " + b.shape().to_string() +
                      " do not fit: A.dim(-1) must equal B.dim(0)");
  bool fits = y.rank() == a.rank() && y.dim(-1) == b.dim(1);
  for (int d = 0; fits && d + 1 < a.rank(); ++d) fits = y.dim(d) == a.dim(d);
  std::string want = "[";  // A's shape with N for K
  for (int d = 0; d < a.rank(); ++d) want += (d ? ", " : "") + std::to_string(d + 1 < a.rank() ? a.dim(d) : b.dim(1));
  want += "]";
  if (!fits)
    throw shape_error(where + "Y " + y.shape().to_string() + " must be " + want + " for A " +
                      a.shape().to_string() + " and B " + b.shape().to_string());
  problem<TA, TB> p;
  p.a = a;
  p.b = b;
  p.y = y;
  p.k = b.dim(0);
  p.n = b.dim(1);
  p.rows = 1;  // A's leading extents (a.rows() would say 0 for K = 0)
  for (int d = 0; d + 1 < a.rank(); ++d) p.rows *= a.dim(d);
  const std::int64_t m = a.rank() == 1 ? 1 : a.dim(-2);
  if (a_zero_point.data() == nullptr) {
    p.za = {0};
  } else {
    if (a_zero_point.rank() > 1 || (a_zero_point.numel() != 1 && a_zero_point.numel() != m))
      throw shape_error(where + "a_zero_point " + a_zero_point.shape().to_string() +
                        " must be a scalar or hold one value per row of A (" + std::to_string(m) + " for A " +
                        a.shape().to_string() + ")");
    for (auto v : onnx_quant::entries(a_zero_point)) p.za.push_back(v);
  }
  if (b_zero_point.data() == nullptr) {
    p.zb.assign(static_cast<std::size_t>(p.n), 0);
  } else {
    if (b_zero_point.rank() > 1 || (b_zero_point.numel() != 1 && b_zero_point.numel() != p.n))
      throw shape_error(where + "b_zero_point " + b_zero_point.shape().to_string() +
                        " must be a scalar or hold one value per column of B (" + std::to_string(p.n) + " for B " +
                        b.shape().to_string() + ")");
    const auto z = onnx_quant::entries(b_zero_point);
    p.zb.resize(static_cast<std::size_t>(p.n));
    for (std::int64_t j = 0; j < p.n; ++j) p.zb[static_cast<std::size_t>(j)] = z[z.size() == 1 ? 0 : static_cast<std::size_t>(j)];
  }
  return p;
}

}  // namespace detail::matmul_integer_kernels

/// @brief ONNX MatMulInteger: Y = (A - a_zero_point) x (B - b_zero_point) in int32, A uint8 or
/// int8 [K] or [..., M, K], B uint8 or int8 [K, N], Y [..., M, N]; zero points absent (a view with
/// null data), scalars, [M] for A or [N] for B (see the top of the file). Throws shape_error
/// naming the operand that does not fit.
template <class TA, class TB>
  requires onnx_integer<std::remove_const_t<TA>> && onnx_integer<std::remove_const_t<TB>>
void matmul_integer(tensor_view<TA> a, tensor_view<TB> b, tensor_view<std::int32_t> y,
                    tensor_view<const std::remove_const_t<TA>> a_zero_point = {},
                    tensor_view<const std::remove_const_t<TB>> b_zero_point = {}) {
  using A = std::remove_const_t<TA>;
  using B = std::remove_const_t<TB>;
  const auto p = detail::matmul_integer_kernels::make_problem<A, B>(a, b, y, a_zero_point, b_zero_point);
  if (p.rows == 0 || p.n == 0) return;
  if (p.k == 0) {
    for (std::int64_t r = 0; r < p.rows; ++r)
      for (std::int64_t j = 0; j < p.n; ++j) p.y_at(r, j) = 0;
    return;
  }
  detail::matmul_integer_kernels::best(p);
}

}  // namespace tformer::quant
