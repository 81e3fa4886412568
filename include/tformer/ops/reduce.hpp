// Selection along the innermost axis of a view: argmax and top-k (greedy decoding, samplers).
//
//   argmax(x, indices)            x [..., n] -> indices [...]: x's shape without its last
//                                 dimension; for a rank-1 x that is a rank-0 view (one element),
//                                 and shape [1] is accepted as well
//   top_k(x, k, values, indices)  x [..., n] -> values, indices [..., k], largest first
//
// Order (simd/reduce.hpp): NaN counts as the largest value, ties go to the lower index.
// Rows must be contiguous (unit inner stride); leading strides are free. Rows run in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "../simd/reduce.hpp"
#include "rowwise.hpp"

namespace tformer::ops {

namespace detail {

/// s without its last dimension ([] for a rank-1 s).
inline shape reduce_drop_last(const shape& s) {
  switch (s.rank()) {
    case 1:
      return shape{};
    case 2:
      return shape{s[0]};
    case 3:
      return shape{s[0], s[1]};
    default:
      return shape{s[0], s[1], s[2]};
  }
}

/// s with its last dimension replaced by last.
inline shape reduce_set_last(const shape& s, std::int64_t last) {
  switch (s.rank()) {
    case 1:
      return shape{last};
    case 2:
      return shape{s[0], last};
    case 3:
      return shape{s[0], s[1], last};
    default:
      return shape{s[0], s[1], s[2], last};
  }
}

/// Throws value_error unless a row length n can be indexed by int32.
inline void reduce_require_int32(const char* op, std::int64_t n) {
  if (n > std::numeric_limits<std::int32_t>::max())
    throw value_error(std::string("tformer::ops::") + op + ": rows of " + std::to_string(n) +
                      " elements exceed int32 indices");
}

/// Throws shape_error unless v has shape expect.
template <class T>
void reduce_require_shape(const char* op, const char* name, const tensor_view<T>& v, const shape& expect) {
  if (!(v.shape() == expect))
    throw shape_error(std::string("tformer::ops::") + op + ": " + name + " must be " + expect.to_string() + ", got " +
                      v.shape().to_string());
}

}  // namespace detail

/// @brief indices[...] = index of the first maximum of x[..., :] (first NaN if any).
inline void argmax(tensor_view<const float> x, tensor_view<std::int32_t> indices) {
  detail::require_rows("argmax", "x", x);
  const std::int64_t n = x.dim(-1);
  const shape lead = detail::reduce_drop_last(x.shape());
  if (!(x.rank() == 1 && indices.shape() == shape{1})) detail::reduce_require_shape("argmax", "indices", indices, lead);
  if (indices.data() == nullptr && lead.numel() > 0)
    throw shape_error("tformer::ops::argmax: indices must be a view of " + lead.to_string() + ", got an empty view");
  if (n == 0 && lead.numel() > 0)
    throw value_error("tformer::ops::argmax: x " + x.shape().to_string() + " has empty rows (no maximum)");
  detail::reduce_require_int32("argmax", n);
  // Row r of x maps to element r (row-major) of indices, whatever indices' strides.
  const std::int64_t inner = indices.rank() == 0 ? 1 : indices.dim(-1);
  const std::int64_t step = indices.rank() == 0 ? 0 : indices.stride(-1);
  detail::for_each_row(x.rows(), x.dim(-1), [&](std::int64_t r) {
    std::int32_t* dst = indices.rank() == 0 ? indices.data() : indices.row(r / inner) + (r % inner) * step;
    *dst = static_cast<std::int32_t>(simd::argmax(x.row(r), static_cast<std::size_t>(n)));
  });
}

/// @brief values[..., :k], indices[..., :k] = the k largest of x[..., :], descending (1 <= k <= n).
inline void top_k(tensor_view<const float> x, std::int64_t k, tensor_view<float> values,
                  tensor_view<std::int32_t> indices) {
  detail::require_rows("top_k", "x", x);
  const std::int64_t n = x.dim(-1);
  if (k < 1 || k > n)
    throw value_error("tformer::ops::top_k: k must be in [1, " + std::to_string(n) + "] for x " +
                      x.shape().to_string() + ", got " + std::to_string(k));
  detail::reduce_require_int32("top_k", n);
  const shape expect = detail::reduce_set_last(x.shape(), k);
  detail::reduce_require_shape("top_k", "values", values, expect);
  detail::reduce_require_shape("top_k", "indices", indices, expect);
  detail::require_rows("top_k", "values", values);
  detail::require_rows("top_k", "indices", indices);
  detail::for_each_row(x.rows(), x.dim(-1), [&](std::int64_t r) {
    simd::top_k(x.row(r), static_cast<std::size_t>(n), static_cast<std::size_t>(k), values.row(r), indices.row(r));
  });
}

}  // namespace tformer::ops
