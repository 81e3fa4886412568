// Softmax and log-softmax over the innermost axis of a view: x, out [..., n] -> [..., n].
// Rows run in parallel; each row is one simd::softmax call, so results do not depend on the
// thread count. Masked (-inf) entries, all-masked rows, +inf and NaN behave as documented in
// simd/softmax.hpp (an all -inf row gives zeros, and -inf under log_softmax).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../simd/softmax.hpp"
#include "rowwise.hpp"

namespace tformer::ops {

namespace detail {

/// Shape checks shared by softmax and log_softmax: same shape, contiguous rows.
inline void check_softmax(const char* op, const tensor_view<const float>& x, const tensor_view<float>& out) {
  require_rows(op, "x", x);
  require_rows(op, "out", out);
  require_same_shape(op, "x", x, "out", out);
}

}  // namespace detail

/// @brief out = softmax(x) along the last axis; x, out [..., n] with contiguous rows (out may be x).
inline void softmax(tensor_view<const float> x, tensor_view<float> out) {
  detail::check_softmax("softmax", x, out);
  const auto n = static_cast<std::size_t>(x.dim(-1));
  detail::for_each_row(x.rows(), x.dim(-1) * 8, [&](std::int64_t r) { simd::softmax(x.row(r), out.row(r), n); });
}

/// @brief out = log_softmax(x) along the last axis; x, out [..., n] with contiguous rows (out may be x).
inline void log_softmax(tensor_view<const float> x, tensor_view<float> out) {
  detail::check_softmax("log_softmax", x, out);
  const auto n = static_cast<std::size_t>(x.dim(-1));
  detail::for_each_row(x.rows(), x.dim(-1) * 8, [&](std::int64_t r) { simd::log_softmax(x.row(r), out.row(r), n); });
}

}  // namespace tformer::ops
