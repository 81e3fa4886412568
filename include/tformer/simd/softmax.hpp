// Softmax and log-softmax over one contiguous row of n floats.
//
//   softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m),   m = max_j x_j
//   log_softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m))
//
// Accuracy: x_i - m is carried exactly (TwoSum) into the exponential, since rounding it alone
// would cost up to |x_i - m| * 2^-24 relative error; the sum is divided, not multiplied by an
// estimated reciprocal; log_softmax takes the log of the sum as log(c) + log1p(r / c), where c
// counts the entries equal to the maximum and r sums the others, so a confident row's top entry
// (log-probability -1e-9, say) is not rounded to 0; sums are detail::block_sum (reduce.hpp), a
// few ulp for any n. Results below FLT_MIN may be flushed to 0 (xsimd's exp does so).
//
// Special rows (masked positions are -inf):
//   every entry -inf:      softmax gives all 0 (never NaN), log_softmax all -inf, so that
//                          exp(log_softmax(x)) == softmax(x) holds for masked rows too;
//   some entries +inf:     the limit: 1/c on the c entries equal to +inf, 0 elsewhere
//                          (log_softmax: -log(c) and -inf);
//   any entry NaN:         every output is NaN.
// Huge finite entries (FLT_MAX, 1e30) and huge negative ones need no special care: nothing is
// exponentiated above 0. out may alias x (the same row, not a shifted one).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include "arch.hpp"
#include "reduce.hpp"

namespace tformer::simd {

namespace detail {

/// Maximum of x[0, n) (n >= 1). A NaN entry may or may not be returned; callers make NaN
/// propagate on their own.
template <class A>
inline float softmax_row_max(const float* x, std::size_t n) noexcept {
  const float ninf = -std::numeric_limits<float>::infinity();
  fbatch<A> acc[4] = {fbatch<A>(ninf), fbatch<A>(ninf), fbatch<A>(ninf), fbatch<A>(ninf)};
  row_blocks<A>(n, [&](std::size_t i, std::size_t len, std::size_t s) {
    acc[s] = xsimd::max(acc[s], load_n<A>(x + i, len, ninf));
  });
  return reduce_max<A>(xsimd::max(xsimd::max(acc[0], acc[1]), xsimd::max(acc[2], acc[3])));
}

/// exp(x - m) for finite m, with x - m taken exactly: d + err == x - m (TwoSum), and
/// exp(d + err) ~= exp(d) * (1 + err). Entries with x = -inf give 0; NaN gives NaN.
template <class A>
inline fbatch<A> exp_minus(const fbatch<A>& x, const fbatch<A>& m) noexcept {
  const fbatch<A> d = x - m;
  const fbatch<A> xv = d + m;  // TwoSum(x, -m): d = fl(x - m), err = the rounding error
  const fbatch<A> mv = xv - d;
  const fbatch<A> err = (x - xv) - (m - mv);
  const fbatch<A> e = xsimd::exp(d);
  // d = -inf (masked entry, or an overflowed difference) makes err NaN; e is 0 there
  const fbatch<A> ninf(-std::numeric_limits<float>::infinity());
  return xsimd::fma(e, xsimd::select(d > ninf, err, fbatch<A>(0.0f)), e);
}

}  // namespace detail

/// @brief out = softmax(x) over n floats; an all -inf row gives zeros (see the file comment).
template <class A = default_arch>
inline void softmax(const float* x, float* out, std::size_t n) noexcept {
  using B = fbatch<A>;
  if (n == 0) return;
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float m = detail::softmax_row_max<A>(x, n);
  const B zero(0.0f), one(1.0f);
  detail::block_sum<A> sum;
  auto flush = [&] { sum.flush(); };
  // Pass 2: out = the unnormalized weights, sum = their sum.
  if (m == -inf) {
    // Every entry is -inf (or NaN): weights 0 (NaN for a NaN entry).
    detail::row_blocks<A>(
        n,
        [&](std::size_t i, std::size_t len, std::size_t s) {
          const B v = detail::load_n<A>(x + i, len, 0.0f);
          const B e = xsimd::select(xsimd::isnan(v), v, zero);
          sum.add(s, e);
          detail::store_n<A>(out + i, e, len);
        },
        flush);
  } else if (m == inf) {
    // The limit: weight 1 on each +inf entry, 0 elsewhere (NaN for a NaN entry).
    detail::row_blocks<A>(
        n,
        [&](std::size_t i, std::size_t len, std::size_t s) {
          const B v = detail::load_n<A>(x + i, len, 0.0f);
          const B e = xsimd::select(v == B(inf), one, xsimd::select(xsimd::isnan(v), v, zero));
          sum.add(s, e);
          detail::store_n<A>(out + i, e, len);
        },
        flush);
  } else {
    const B mb(m);
    detail::row_blocks<A>(
        n,
        [&](std::size_t i, std::size_t len, std::size_t s) {
          const B e = detail::exp_minus<A>(detail::load_n<A>(x + i, len, -inf), mb);
          sum.add(s, e);
          detail::store_n<A>(out + i, e, len);
        },
        flush);
  }
  const double total = sum.value();
  if (total == 0.0) return;  // all -inf: out already holds zeros
  // Pass 3: normalize by true division (a NaN sum makes every output NaN).
  const B sb(static_cast<float>(total));
  map<A>(out, out, n, [&](const B& e) { return e / sb; });
}

/// @brief out = log_softmax(x) over n floats; an all -inf row gives all -inf.
template <class A = default_arch>
inline void log_softmax(const float* x, float* out, std::size_t n) noexcept {
  using B = fbatch<A>;
  if (n == 0) return;
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float m = detail::softmax_row_max<A>(x, n);
  const B zero(0.0f), one(1.0f), binf(inf);
  detail::block_sum<A> rest, count;
  auto flush = [&] {
    rest.flush();
    count.flush();
  };
  if (m == -inf) {
    // Every entry is -inf (or NaN): out = x - 0, or NaN everywhere when a NaN is present.
    detail::row_blocks<A>(
        n,
        [&](std::size_t i, std::size_t len, std::size_t s) {
          const B v = detail::load_n<A>(x + i, len, 0.0f);
          rest.add(s, xsimd::select(xsimd::isnan(v), v, zero));
        },
        flush);
    const B poison(static_cast<float>(rest.value()));
    map<A>(x, out, n, [&](const B& v) { return v - poison; });
    return;
  }
  if (m == inf) {
    // The limit: -log(c) on the c entries equal to +inf, -inf elsewhere (NaN if any NaN).
    detail::row_blocks<A>(
        n,
        [&](std::size_t i, std::size_t len, std::size_t s) {
          const B v = detail::load_n<A>(x + i, len, 0.0f);
          count.add(s, xsimd::select(v == binf, one, xsimd::select(xsimd::isnan(v), v, zero)));
        },
        flush);
    const B lse(static_cast<float>(std::log(count.value())));
    map<A>(x, out, n, [&](const B& v) { return xsimd::select(v == binf, zero, -binf) - lse; });
    return;
  }
  // Pass 2: c = count of entries equal to m (each weighs exactly 1), r = the other weights.
  const B mb(m);
  detail::row_blocks<A>(
      n,
      [&](std::size_t i, std::size_t len, std::size_t s) {
        const B v = detail::load_n<A>(x + i, len, -inf);
        const auto top = v == mb;
        rest.add(s, xsimd::select(top, zero, detail::exp_minus<A>(v, mb)));  // NaN entries land here
        count.add(s, xsimd::select(top, one, zero));
      },
      flush);
  // log(sum) = log(c + r) = log(c) + log1p(r / c), in double: accurate when r << c.
  const double c = count.value(), r = rest.value();
  const B lse(static_cast<float>(std::log(c) + std::log1p(r / c)));
  // Pass 3: out = (x - m) - log(sum); both terms are <= 0, so nothing cancels.
  map<A>(x, out, n, [&](const B& v) { return (v - mb) - lse; });
}

}  // namespace tformer::simd
