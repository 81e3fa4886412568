// Elementwise ops on views, over the innermost dimension: add, mul, scale, residual add (with an
// optional bias broadcast over rows), activations, and the dot product of two vectors.
//
// Views may be strided in their leading dimensions but need a contiguous innermost one. Rows run
// in parallel; each row is one call of a simd/ kernel, so results do not depend on the thread
// count. An output may be the same view as an input (in-place); partial overlaps are not allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../simd/activation.hpp"
#include "../simd/elementwise.hpp"
#include "rowwise.hpp"

namespace tformer::ops {

/// @brief out = a + b. a, b, out: [..., n], the same shape.
inline void add(tensor_view<const float> a, tensor_view<const float> b, tensor_view<float> out) {
  detail::require_rows("add", "a", a);
  detail::require_rows("add", "b", b);
  detail::require_rows("add", "out", out);
  detail::require_same_shape("add", "a", a, "b", b);
  detail::require_same_shape("add", "a", a, "out", out);
  const auto n = static_cast<std::size_t>(out.dim(-1));
  detail::for_each_row(out.rows(), out.dim(-1), [&](std::int64_t r) { simd::add(a.row(r), b.row(r), out.row(r), n); });
}

/// @brief out = a * b elementwise. a, b, out: [..., n], the same shape.
inline void mul(tensor_view<const float> a, tensor_view<const float> b, tensor_view<float> out) {
  detail::require_rows("mul", "a", a);
  detail::require_rows("mul", "b", b);
  detail::require_rows("mul", "out", out);
  detail::require_same_shape("mul", "a", a, "b", b);
  detail::require_same_shape("mul", "a", a, "out", out);
  const auto n = static_cast<std::size_t>(out.dim(-1));
  detail::for_each_row(out.rows(), out.dim(-1), [&](std::int64_t r) { simd::mul(a.row(r), b.row(r), out.row(r), n); });
}

/// @brief out = s * x. x, out: [..., n], the same shape.
inline void scale(tensor_view<const float> x, float s, tensor_view<float> out) {
  detail::require_rows("scale", "x", x);
  detail::require_rows("scale", "out", out);
  detail::require_same_shape("scale", "x", x, "out", out);
  const auto n = static_cast<std::size_t>(out.dim(-1));
  detail::for_each_row(out.rows(), out.dim(-1), [&](std::int64_t r) { simd::scale(x.row(r), s, out.row(r), n); });
}

/// @brief residual += x (+ bias): the residual-stream update after a sublayer.
/// residual, x: [..., n], the same shape; bias: [n] broadcast over rows, or an empty view for none.
/// x + bias is rounded before it is added, as in PyTorch's `residual + linear(h)`.
inline void residual_add(tensor_view<float> residual, tensor_view<const float> x, tensor_view<const float> bias = {}) {
  detail::require_rows("residual_add", "residual", residual);
  detail::require_rows("residual_add", "x", x);
  detail::require_same_shape("residual_add", "residual", residual, "x", x);
  const std::int64_t n = residual.dim(-1);
  const bool has_bias = !(bias.rank() == 0 && bias.data() == nullptr);  // a default view means no bias
  if (has_bias) detail::require_vector("residual_add", "bias", bias, n);
  const float* b = has_bias ? bias.data() : nullptr;
  detail::for_each_row(residual.rows(), residual.dim(-1), [&](std::int64_t r) {
    simd::residual_add(x.row(r), b, residual.row(r), static_cast<std::size_t>(n));
  });
}

/// @brief out = Act(x) elementwise. x, out: [..., n], the same shape.
/// @tparam Act an activation policy from simd::act (relu, gelu, gelu_tanh, silu, sigmoid, tanh)
template <simd::activation Act>
void activate(tensor_view<const float> x, tensor_view<float> out) {
  static const std::string op = std::string("activate<") + Act::name + ">";  // built once: no allocation per call
  detail::require_rows(op.c_str(), "x", x);
  detail::require_rows(op.c_str(), "out", out);
  detail::require_same_shape(op.c_str(), "x", x, "out", out);
  const auto n = static_cast<std::size_t>(out.dim(-1));
  detail::for_each_row(out.rows(), out.dim(-1) * 8, [&](std::int64_t r) { simd::activate<Act>(x.row(r), out.row(r), n); });
}

/// @brief Sum of a[i] * b[i] for two vectors a, b: [n] (single-threaded; summation order fixed by n).
inline float dot(tensor_view<const float> a, tensor_view<const float> b) {
  if (a.rank() != 1 || b.rank() != 1)
    throw shape_error("tformer::ops::dot: a and b must be vectors (rank 1), got a " + a.shape().to_string() +
                      " and b " + b.shape().to_string());
  detail::require_rows("dot", "a", a);
  detail::require_rows("dot", "b", b);
  detail::require_same_shape("dot", "a", a, "b", b);
  return simd::dot(a.data(), b.data(), static_cast<std::size_t>(a.dim(0)));
}

}  // namespace tformer::ops
