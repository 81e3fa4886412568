// LayerNorm and RMSNorm over the innermost axis of a view, and their fused residual forms.
//
//   layer_norm(x, w, b, eps, out)                  x, out [..., n]; w, b [n] or {} (none)
//   rms_norm(x, w, eps, out)                       x, out [..., n]; w [n] or {}
//   add_layer_norm(residual, delta, w, b, eps, out)  residual += delta; out = layer_norm(residual)
//   add_rms_norm(residual, delta, w, eps, out)       residual += delta; out = rms_norm(residual)
//
// Rows must be contiguous (unit inner stride); leading strides are free. Rows run in parallel
// and results do not depend on the thread count. Kernels and accuracy: simd/norm.hpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../simd/norm.hpp"
#include "rowwise.hpp"

namespace tformer::ops {

namespace detail {

/// True unless v is the empty view {} that stands for "no parameter".
template <class T>
bool norm_param_given(const tensor_view<T>& v) noexcept {
  return v.data() != nullptr || v.rank() != 0;
}

/// Throws value_error unless eps is finite and >= 0.
inline void norm_require_eps(const char* op, float eps) {
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw value_error(std::string("tformer::ops::") + op + ": eps must be finite and >= 0, got " + std::to_string(eps));
}

/// Checks x (named xname) and out rows, the optional per-feature parameters, and eps; returns n.
inline std::int64_t check_norm(const char* op, const char* xname, const tensor_view<const float>& x,
                               const tensor_view<float>& out, const tensor_view<const float>& w,
                               const tensor_view<const float>& b, float eps) {
  require_rows(op, xname, x);
  require_rows(op, "out", out);
  require_same_shape(op, xname, x, "out", out);
  const std::int64_t n = x.dim(-1);
  if (norm_param_given(w)) require_vector(op, "weight", w, n);
  if (norm_param_given(b)) require_vector(op, "bias", b, n);
  norm_require_eps(op, eps);
  return n;
}

/// The residual form's extra checks: residual and delta have out's shape and contiguous rows.
inline void check_norm_residual(const char* op, const tensor_view<float>& residual,
                                const tensor_view<const float>& delta, const tensor_view<float>& out) {
  require_rows(op, "delta", delta);
  require_same_shape(op, "residual", residual, "delta", delta);
  require_same_shape(op, "residual", residual, "out", out);
}

inline const float* norm_param_data(const tensor_view<const float>& v) noexcept {
  return norm_param_given(v) ? v.data() : nullptr;
}

}  // namespace detail

/// @brief out = (x - mean) / sqrt(var + eps) * weight + bias along the last axis (biased var).
inline void layer_norm(tensor_view<const float> x, tensor_view<const float> weight, tensor_view<const float> bias,
                       float eps, tensor_view<float> out) {
  const auto n = static_cast<std::size_t>(detail::check_norm("layer_norm", "x", x, out, weight, bias, eps));
  const float* w = detail::norm_param_data(weight);
  const float* b = detail::norm_param_data(bias);
  detail::for_each_row(x.rows(), x.dim(-1),
                       [&](std::int64_t r) { simd::layer_norm(x.row(r), w, b, eps, out.row(r), n); });
}

/// @brief out = x / sqrt(mean(x^2) + eps) * weight along the last axis (Llama, T5).
inline void rms_norm(tensor_view<const float> x, tensor_view<const float> weight, float eps, tensor_view<float> out) {
  const auto n = static_cast<std::size_t>(detail::check_norm("rms_norm", "x", x, out, weight, {}, eps));
  const float* w = detail::norm_param_data(weight);
  detail::for_each_row(x.rows(), x.dim(-1), [&](std::int64_t r) { simd::rms_norm(x.row(r), w, eps, out.row(r), n); });
}

/// @brief residual += delta, then out = layer_norm(residual, weight, bias, eps); all [..., n].
inline void add_layer_norm(tensor_view<float> residual, tensor_view<const float> delta, tensor_view<const float> weight,
                           tensor_view<const float> bias, float eps, tensor_view<float> out) {
  detail::check_norm_residual("add_layer_norm", residual, delta, out);
  const auto n =
      static_cast<std::size_t>(detail::check_norm("add_layer_norm", "residual", residual, out, weight, bias, eps));
  const float* w = detail::norm_param_data(weight);
  const float* b = detail::norm_param_data(bias);
  detail::for_each_row(residual.rows(), residual.dim(-1), [&](std::int64_t r) {
    simd::add_layer_norm(residual.row(r), delta.row(r), w, b, eps, out.row(r), n);
  });
}

/// @brief residual += delta, then out = rms_norm(residual, weight, eps); all [..., n].
inline void add_rms_norm(tensor_view<float> residual, tensor_view<const float> delta, tensor_view<const float> weight,
                         float eps, tensor_view<float> out) {
  detail::check_norm_residual("add_rms_norm", residual, delta, out);
  const auto n =
      static_cast<std::size_t>(detail::check_norm("add_rms_norm", "residual", residual, out, weight, {}, eps));
  const float* w = detail::norm_param_data(weight);
  detail::for_each_row(residual.rows(), residual.dim(-1), [&](std::int64_t r) {
    simd::add_rms_norm(residual.row(r), delta.row(r), w, eps, out.row(r), n);
  });
}

}  // namespace tformer::ops
