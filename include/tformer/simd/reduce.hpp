// Reductions over one contiguous row of n floats.
//
// Public: argmax and top_k (greedy decoding, samplers). Order: NaN is larger than every number
// (like torch.argmax / torch.topk), and equal values are ranked by index, lower first; -0.0 and
// +0.0 are equal. Both scan the row with vector compares and look at single elements only where
// a batch may hold a new candidate.
//
// detail: the row loop and the accurate sum that softmax.hpp and norm.hpp share. A plain
// running sum over a row of n floats errs by up to ~n / (4 W) ulp when its terms are alike
// (a near-uniform softmax row, a near-constant RMS row: 2e-6 relative at n = 4096 with SSE2);
// block_sum keeps that at a few ulp whatever n.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include "arch.hpp"

namespace tformer::simd {

namespace detail {

/// Loads len floats (a full batch when len == W), padding the missing lanes with fill.
template <class A>
inline fbatch<A> load_n(const float* p, std::size_t len, float fill) noexcept {
  return len == fbatch<A>::size ? fbatch<A>::load_unaligned(p) : load_partial<A>(p, len, fill);
}

/// Stores the first len lanes of v.
template <class A>
inline void store_n(float* p, const fbatch<A>& v, std::size_t len) noexcept {
  if (len == fbatch<A>::size)
    v.store_unaligned(p);
  else
    store_partial<A>(p, v, len);
}

/// Calls body(i, len, slot) over [0, n): full batches (len == W) round-robin over four
/// accumulator slots, then the tail once with len < W; flush() after every 8 rounds of four
/// batches and once at the end.
template <class A, class Body, class Flush>
inline void row_blocks(std::size_t n, Body&& body, Flush&& flush) noexcept {
  constexpr std::size_t W = fbatch<A>::size;
  std::size_t i = 0, rounds = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    body(i, W, 0);
    body(i + W, W, 1);
    body(i + 2 * W, W, 2);
    body(i + 3 * W, W, 3);
    if (++rounds == 8) {
      flush();
      rounds = 0;
    }
  }
  for (; i + W <= n; i += W) body(i, W, 0);
  if (i < n) body(i, n - i, 0);
  flush();
}

/// row_blocks for passes that accumulate nothing.
template <class A, class Body>
inline void row_blocks(std::size_t n, Body&& body) noexcept {
  row_blocks<A>(n, std::forward<Body>(body), [] {});
}

/// Sum of batches with an error of a few ulp whatever the row length: four plain partial sums
/// over a block (at most 12 terms per lane), Kahan-compensated across blocks, lanes added in
/// double at the end.
template <class A>
struct block_sum {
  fbatch<A> part[4] = {fbatch<A>(0.0f), fbatch<A>(0.0f), fbatch<A>(0.0f), fbatch<A>(0.0f)};
  fbatch<A> total = fbatch<A>(0.0f), comp = fbatch<A>(0.0f);

  void add(std::size_t slot, const fbatch<A>& v) noexcept { part[slot] += v; }
  /// Adds a * b.
  void add_product(std::size_t slot, const fbatch<A>& a, const fbatch<A>& b) noexcept {
    part[slot] = xsimd::fma(a, b, part[slot]);
  }
  /// Moves the block's partial sums into the compensated total.
  void flush() noexcept {
    const fbatch<A> y = ((part[0] + part[1]) + (part[2] + part[3])) - comp;
    const fbatch<A> t = total + y;
    comp = (t - total) - y;
    total = t;
    part[0] = part[1] = part[2] = part[3] = fbatch<A>(0.0f);
  }
  /// The sum (after the final flush).
  double value() const noexcept {
    alignas(64) float t[fbatch<A>::size], c[fbatch<A>::size];
    total.store_aligned(t);
    comp.store_aligned(c);
    double s = 0.0;
    for (std::size_t k = 0; k < fbatch<A>::size; ++k) s += static_cast<double>(t[k]) - static_cast<double>(c[k]);
    return s;
  }
};

/// True when (va at index ia) ranks before (vb at index ib).
inline bool ranks_before(float va, std::size_t ia, float vb, std::size_t ib) noexcept {
  const bool na = std::isnan(va), nb = std::isnan(vb);
  if (na || nb) return na && (!nb || ia < ib);
  return va > vb || (va == vb && ia < ib);
}

/// Moves heap entry p down until both children rank before it (root = lowest ranked).
inline void topk_sift_down(float* v, std::int32_t* idx, std::size_t p, std::size_t size) noexcept {
  for (;;) {
    const std::size_t l = 2 * p + 1, r = l + 1;
    std::size_t worst = p;
    auto below = [&](std::size_t a, std::size_t b) {  // a ranks after b
      return ranks_before(v[b], static_cast<std::size_t>(idx[b]), v[a], static_cast<std::size_t>(idx[a]));
    };
    if (l < size && below(l, worst)) worst = l;
    if (r < size && below(r, worst)) worst = r;
    if (worst == p) return;
    std::swap(v[p], v[worst]);
    std::swap(idx[p], idx[worst]);
    p = worst;
  }
}

/// Moves heap entry p up while it ranks after its parent.
inline void topk_sift_up(float* v, std::int32_t* idx, std::size_t p) noexcept {
  while (p > 0) {
    const std::size_t parent = (p - 1) / 2;
    if (!ranks_before(v[parent], static_cast<std::size_t>(idx[parent]), v[p], static_cast<std::size_t>(idx[p]))) return;
    std::swap(v[p], v[parent]);
    std::swap(idx[p], idx[parent]);
    p = parent;
  }
}

}  // namespace detail

/// @brief Index of the first maximum of x[0, n) (the first NaN if any); 0 when n == 0.
template <class A = default_arch>
inline std::size_t argmax(const float* x, std::size_t n) noexcept {
  using B = fbatch<A>;
  constexpr std::size_t W = B::size;
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  if (n == 0) return 0;
  // Pass 1: the maximum, and whether any NaN is present.
  B acc(ninf);
  auto nan = xsimd::isnan(acc);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(x + i);
    acc = xsimd::max(acc, v);
    nan = nan | xsimd::isnan(v);
  }
  if (i < n) {
    const B v = load_partial<A>(x + i, n - i, ninf);
    acc = xsimd::max(acc, v);
    nan = nan | xsimd::isnan(v);
  }
  const bool has_nan = xsimd::any(nan);
  const float m = reduce_max<A>(acc);  // NaN-free when !has_nan
  // Pass 2: the first element equal to the maximum (or the first NaN).
  for (i = 0; i < n; i += W) {
    const std::size_t len = n - i < W ? n - i : W;
    const B v = len == W ? B::load_unaligned(x + i) : load_partial<A>(x + i, len, ninf);
    if (!xsimd::any(has_nan ? xsimd::isnan(v) : v == B(m))) continue;
    for (std::size_t j = i; j < i + len; ++j)
      if (has_nan ? std::isnan(x[j]) : x[j] == m) return j;
  }
  return 0;  // not reached
}

/// @brief The k largest of x[0, n) in descending order (ties: lower index first; NaN largest).
/// Requires k <= n (only min(k, n) entries are written). O(n + m log k), m = heap insertions.
template <class A = default_arch>
inline void top_k(const float* x, std::size_t n, std::size_t k, float* values, std::int32_t* indices) noexcept {
  using B = fbatch<A>;
  constexpr std::size_t W = B::size;
  if (k > n) k = n;
  if (k == 0) return;
  // values / indices hold a heap of the best k so far; the root is the lowest ranked.
  for (std::size_t i = 0; i < k; ++i) {
    values[i] = x[i];
    indices[i] = static_cast<std::int32_t>(i);
    detail::topk_sift_up(values, indices, i);
  }
  // A later element enters only if it is NaN or strictly above the root (ties lose on index).
  for (std::size_t i = k; i < n && !std::isnan(values[0]); i += W) {
    const std::size_t len = n - i < W ? n - i : W;
    const B v = len == W ? B::load_unaligned(x + i) : load_partial<A>(x + i, len, values[0]);
    if (!xsimd::any((v > B(values[0])) | xsimd::isnan(v))) continue;
    for (std::size_t j = i; j < i + len; ++j) {
      if (!detail::ranks_before(x[j], j, values[0], static_cast<std::size_t>(indices[0]))) continue;
      values[0] = x[j];
      indices[0] = static_cast<std::int32_t>(j);
      detail::topk_sift_down(values, indices, 0, k);
    }
  }
  // Heap sort: moving the root (lowest) to the back leaves the best first.
  for (std::size_t end = k - 1; end > 0; --end) {
    std::swap(values[0], values[end]);
    std::swap(indices[0], indices[end]);
    detail::topk_sift_down(values, indices, 0, end);
  }
}

}  // namespace tformer::simd
