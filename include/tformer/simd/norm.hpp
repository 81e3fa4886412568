// Layer normalization and RMS normalization over one contiguous row of n floats.
//
//   layer_norm: out = (x - mean) / sqrt(var + eps) * w + b    var biased (/ n), like PyTorch
//   rms_norm:   out = x / sqrt(mean(x^2) + eps) * w           Llama / T5
//   add_*:      residual += delta, then out = norm(residual)  the pre-norm residual stream
//
// weight and bias may be nullptr (no scale, no shift); eps must be >= 0. out may alias x (or
// residual / delta); the row pointers must not otherwise overlap.
//
// Accuracy. The mean is taken in two passes: m0 = sum(x) / n, then the corrected mean
// m0 + sum(x - m0) / n, kept as a float pair hi + lo and subtracted as (x - hi) - lo, so rows
// with a large offset (1000 + noise) lose nothing and a constant row gives exactly x - mean = 0,
// hence out = bias (also with eps = 0). The variance is sum((x - m0)^2) / n - (sum(x - m0) / n)^2
// (the corrected two-pass formula). Sums are detail::block_sum (reduce.hpp): a few ulp for any
// n. The row scalars (mean, 1/sqrt) are finished once per row in double. A row whose sum of
// squares overflows float (|x| above ~1e19), or underflows with eps < 2^-60 (|x| below ~1e-12
// with eps = 0), is recomputed scaled by a power of two (exact), so such rows normalize to full
// accuracy instead of giving 0, NaN or a few-bit result.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "arch.hpp"
#include "reduce.hpp"

namespace tformer::simd {

namespace detail {

/// Loads len floats times scale (when Scaled); lanes past len hold fill (not scaled).
template <class A, bool Scaled>
inline fbatch<A> norm_load(const float* p, std::size_t len, float fill, float scale) noexcept {
  constexpr std::size_t W = fbatch<A>::size;
  if (len == W) {
    fbatch<A> v = fbatch<A>::load_unaligned(p);
    if constexpr (Scaled) v *= fbatch<A>(scale);
    return v;
  }
  alignas(64) float tmp[W];
  for (std::size_t k = 0; k < W; ++k) tmp[k] = k < len ? (Scaled ? p[k] * scale : p[k]) : fill;
  return fbatch<A>::load_aligned(tmp);
}

/// sum(x * scale), or sum((x * scale)^2) when Squares.
template <class A, bool Scaled, bool Squares>
inline double norm_sum(const float* x, std::size_t n, float scale) noexcept {
  block_sum<A> acc;
  row_blocks<A>(
      n,
      [&](std::size_t i, std::size_t len, std::size_t s) {
        const fbatch<A> v = norm_load<A, Scaled>(x + i, len, 0.0f, scale);
        if constexpr (Squares)
          acc.add_product(s, v, v);
        else
          acc.add(s, v);
      },
      [&] { acc.flush(); });
  return acc.value();
}

/// residual += delta; returns sum(residual), or sum(residual^2) when Squares (the same value
/// norm_sum gives on the updated residual, so the fused forms match the unfused ones).
template <class A, bool Squares>
inline double norm_add_residual(float* residual, const float* delta, std::size_t n) noexcept {
  block_sum<A> acc;
  row_blocks<A>(
      n,
      [&](std::size_t i, std::size_t len, std::size_t s) {
        const fbatch<A> v = load_n<A>(residual + i, len, 0.0f) + load_n<A>(delta + i, len, 0.0f);
        store_n<A>(residual + i, v, len);
        if constexpr (Squares)
          acc.add_product(s, v, v);
        else
          acc.add(s, v);
      },
      [&] { acc.flush(); });
  return acc.value();
}

/// max |x| over the row (for the rescaling fallback).
template <class A>
inline float norm_abs_max(const float* x, std::size_t n) noexcept {
  const fbatch<A> z(0.0f);
  fbatch<A> acc[4] = {z, z, z, z};
  row_blocks<A>(n, [&](std::size_t i, std::size_t len, std::size_t s) {
    acc[s] = xsimd::max(acc[s], xsimd::abs(load_n<A>(x + i, len, 0.0f)));
  });
  return reduce_max<A>(xsimd::max(xsimd::max(acc[0], acc[1]), xsimd::max(acc[2], acc[3])));
}

/// The power of two that brings a finite, nonzero row maximum |x| into [1, 2); 0 if none.
inline float norm_rescale(float abs_max) noexcept {
  if (!(abs_max > 0.0f) || !std::isfinite(abs_max)) return 0.0f;
  return std::ldexp(1.0f, -std::ilogb(abs_max));
}

/// True when a float sum of squares sq is unreliable: overflowed (inf, or NaN from the
/// compensation), or so small that squares went subnormal while eps is too small to dominate
/// them. A row holding NaN or inf also lands here; it finds no finite scale and stays NaN.
inline bool norm_out_of_range(double sq, float eps) noexcept {
  return !std::isfinite(sq) || (sq < 0x1p-80 && eps < 0x1p-60f);
}

/// 1 / sqrt(denom) as a float: 0 for denom == 0 and at most FLT_MAX. Both limits only meet
/// constant rows (x - mean == 0 exactly), whose output is then the bias, never NaN.
inline float norm_rsqrt(double denom) noexcept {
  if (denom == 0.0) return 0.0f;
  const double r = 1.0 / std::sqrt(denom);
  return static_cast<float>(r > static_cast<double>(FLT_MAX) ? static_cast<double>(FLT_MAX) : r);  // NaN stays
}

/// Row statistics of layer_norm, in the (possibly scaled) domain: mean = hi + lo,
/// rstd = 1 / sqrt(var + eps).
struct ln_stats {
  float mean_hi, mean_lo, rstd;
  bool in_range;  // false: redo scaled (see norm_out_of_range)
};

/// Second pass of layer_norm given m0 ~ mean(x * scale).
template <class A, bool Scaled>
inline ln_stats ln_moments(const float* x, std::size_t n, float m0, float eps, float scale) noexcept {
  using B = fbatch<A>;
  const B mb(m0);
  block_sum<A> s1, s2;
  row_blocks<A>(
      n,
      [&](std::size_t i, std::size_t len, std::size_t s) {
        const B d = norm_load<A, Scaled>(x + i, len, m0, scale) - mb;  // padding lanes give d = 0
        s1.add(s, d);
        s2.add_product(s, d, d);
      },
      [&] {
        s1.flush();
        s2.flush();
      });
  const double nd = static_cast<double>(n);
  const double c = s1.value() / nd;  // mean - m0
  const double sq = s2.value();
  const double mean = static_cast<double>(m0) + c;
  const double v = sq / nd - c * c;
  const double var = v < 0.0 ? 0.0 : v;  // rounding can dip below 0; NaN stays NaN
  const double sc = static_cast<double>(scale);
  ln_stats st;
  st.mean_hi = static_cast<float>(mean);
  st.mean_lo = static_cast<float>(mean - static_cast<double>(st.mean_hi));
  st.rstd = norm_rsqrt(var + static_cast<double>(eps) * sc * sc);
  st.in_range = std::isfinite(m0) && !norm_out_of_range(sq, eps);
  return st;
}

/// out = ((x * scale - hi) - lo) * rstd * w + b, w and b optional.
template <class A, bool Scaled>
inline void ln_apply(const float* x, const float* w, const float* b, const ln_stats& st, float scale, float* out,
                     std::size_t n) noexcept {
  using B = fbatch<A>;
  const B hi(st.mean_hi), lo(st.mean_lo), rs(st.rstd);
  auto run = [&](auto has_w, auto has_b) {
    row_blocks<A>(n, [&](std::size_t i, std::size_t len, std::size_t) {
      const B y = ((norm_load<A, Scaled>(x + i, len, 0.0f, scale) - hi) - lo) * rs;
      B o;
      if constexpr (decltype(has_w)::value && decltype(has_b)::value)
        o = xsimd::fma(y, load_n<A>(w + i, len, 0.0f), load_n<A>(b + i, len, 0.0f));
      else if constexpr (decltype(has_w)::value)
        o = y * load_n<A>(w + i, len, 0.0f);
      else if constexpr (decltype(has_b)::value)
        o = y + load_n<A>(b + i, len, 0.0f);
      else
        o = y;
      store_n<A>(out + i, o, len);
    });
  };
  using yes = std::true_type;
  using no = std::false_type;
  if (w && b)
    run(yes{}, yes{});
  else if (w)
    run(yes{}, no{});
  else if (b)
    run(no{}, yes{});
  else
    run(no{}, no{});
}

/// layer_norm of x given sum(x) from the first pass (plain or fused with the residual add).
template <class A>
inline void layer_norm_from_sum(const float* x, double sum, const float* w, const float* b, float eps, float* out,
                                std::size_t n) noexcept {
  const double nd = static_cast<double>(n);
  const ln_stats st = ln_moments<A, false>(x, n, static_cast<float>(sum / nd), eps, 1.0f);
  if (!st.in_range) {
    // Overflowed or underflowed sums: redo the statistics on x scaled by a power of two (exact).
    const float scale = norm_rescale(norm_abs_max<A>(x, n));
    if (scale != 0.0f) {
      const float m0 = static_cast<float>(norm_sum<A, true, false>(x, n, scale) / nd);
      ln_apply<A, true>(x, w, b, ln_moments<A, true>(x, n, m0, eps, scale), scale, out, n);
      return;
    }
  }
  ln_apply<A, false>(x, w, b, st, 1.0f, out, n);
}

/// out = (x * scale * r) * w, w optional.
template <class A, bool Scaled>
inline void rms_apply(const float* x, const float* w, float r, float scale, float* out, std::size_t n) noexcept {
  using B = fbatch<A>;
  const B rb(r);
  row_blocks<A>(n, [&](std::size_t i, std::size_t len, std::size_t) {
    B o = norm_load<A, Scaled>(x + i, len, 0.0f, scale) * rb;
    if (w) o *= load_n<A>(w + i, len, 0.0f);
    store_n<A>(out + i, o, len);
  });
}

/// rms_norm of x given sum(x^2) from the first pass.
template <class A>
inline void rms_norm_from_sum_squares(const float* x, double ss, const float* w, float eps, float* out,
                                      std::size_t n) noexcept {
  const double nd = static_cast<double>(n);
  if (norm_out_of_range(ss, eps)) {
    const float scale = norm_rescale(norm_abs_max<A>(x, n));
    if (scale != 0.0f) {
      const double sc = static_cast<double>(scale);
      const double scaled = norm_sum<A, true, true>(x, n, scale);
      rms_apply<A, true>(x, w, norm_rsqrt(scaled / nd + static_cast<double>(eps) * sc * sc), scale, out, n);
      return;
    }
  }
  rms_apply<A, false>(x, w, norm_rsqrt(ss / nd + static_cast<double>(eps)), 1.0f, out, n);  // all-zero, eps 0: 0
}

}  // namespace detail

/// @brief out = (x - mean) / sqrt(var + eps) * weight + bias over n floats (weight, bias nullable).
template <class A = default_arch>
inline void layer_norm(const float* x, const float* weight, const float* bias, float eps, float* out,
                       std::size_t n) noexcept {
  if (n == 0) return;
  detail::layer_norm_from_sum<A>(x, detail::norm_sum<A, false, false>(x, n, 1.0f), weight, bias, eps, out, n);
}

/// @brief out = x / sqrt(mean(x^2) + eps) * weight over n floats (weight nullable).
template <class A = default_arch>
inline void rms_norm(const float* x, const float* weight, float eps, float* out, std::size_t n) noexcept {
  if (n == 0) return;
  detail::rms_norm_from_sum_squares<A>(x, detail::norm_sum<A, false, true>(x, n, 1.0f), weight, eps, out, n);
}

/// @brief residual += delta, then out = layer_norm(residual); bitwise equal to the two steps.
template <class A = default_arch>
inline void add_layer_norm(float* residual, const float* delta, const float* weight, const float* bias, float eps,
                           float* out, std::size_t n) noexcept {
  if (n == 0) return;
  const double sum = detail::norm_add_residual<A, false>(residual, delta, n);
  detail::layer_norm_from_sum<A>(residual, sum, weight, bias, eps, out, n);
}

/// @brief residual += delta, then out = rms_norm(residual); bitwise equal to the two steps.
template <class A = default_arch>
inline void add_rms_norm(float* residual, const float* delta, const float* weight, float eps, float* out,
                         std::size_t n) noexcept {
  if (n == 0) return;
  const double ss = detail::norm_add_residual<A, true>(residual, delta, n);
  detail::rms_norm_from_sum_squares<A>(residual, ss, weight, eps, out, n);
}

}  // namespace tformer::simd
