// ONNX's QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear (opsets 13 to 25, integer
// types uint8 and int8, no block_size) as free functions on tensor views, bit-exact with the ONNX
// reference evaluator (onnx.reference.ReferenceEvaluator; fixtures written by
// tools/make_onnx_quant_fixtures.py, checked by tests/quant/test_quantize_linear.cpp).
//
//   quantize_linear     y = saturate(round_half_even(x / y_scale) + y_zero_point)
//                       x / y_scale one IEEE float division; round half to even (independent of
//                       the FPU's rounding mode); saturate to [0, 255] (uint8) or [-128, 127]
//                       (int8); y's element type (and y_zero_point's, when given) picks the range.
//   dequantize_linear   y = ((float)x - (float)x_zero_point) * x_scale (the difference is exact:
//                       one rounding, that of the product)
//   dynamic_quantize_linear  uint8 with a scale and zero point computed from x (see below)
//
// Scale and zero point: a scalar (rank 0, or 1-D with one element: per tensor, axis ignored) or a
// 1-D tensor of x.dim(axis) elements (per axis), axis in [-rank, rank - 1], negative counting from
// the back; ONNX's default axis is 1. A zero point, when given (a view whose data() is not null),
// has the scale's shape. Shapes that do not fit throw shape_error naming the input (y_scale,
// y_zero_point, ...), an axis out of range value_error.
//
// Cases ONNX leaves open, and what tformer does:
// - A zero (or non-finite) y_scale in quantize_linear: the division would give inf or NaN, which
//   the ONNX reference evaluator then casts to int32 with undefined behaviour. tformer throws
//   value_error naming y_scale and the index of the bad scale. dequantize_linear accepts any scale.
// - Infinite x / y_scale (x = +-inf, or a quotient past FLT_MAX) saturates to the range's end, as
//   the operator definition says (the reference evaluator's int32 cast gives INT32_MIN there, hence
//   qmin for +inf; this is the one place tformer departs from it, on purpose).
// - NaN x: qmin, which is what the reference evaluator gives on x86 (NaN -> INT32_MIN -> clip).
//
// DynamicQuantizeLinear (the reference evaluator's op_dynamic_quantize_linear, step by step in
// float): maxx = max(0, max x), minx = min(0, min x), y_scale = (maxx == minx ? 1 : maxx - minx)
// / 255, zp = round_half_even(clamp(0 - minx / y_scale, 0, 255)), y = saturate(round_half_even(x /
// y_scale) + zp). So the range always includes 0 (0 quantizes exactly to zp) and an all-zero x gets
// y_scale = 1 / 255, zp = 0. x must be finite (value_error naming the first non-finite element):
// the reference evaluator's NaN handling there has no meaningful result.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tformer::quant {

/// @brief The quantized integer types of the ONNX operators here: uint8 and int8.
template <class T>
concept onnx_integer = std::same_as<T, std::uint8_t> || std::same_as<T, std::int8_t>;

namespace detail::onnx_quant {

/// @brief v rounded to the nearest integer, halves to even, whatever the FPU's rounding mode
/// (numpy's rint under the default mode). Exact: a - trunc(a) needs no rounding.
inline float round_half_even(float v) noexcept {
  const float a = std::fabs(v);
  if (!(a < 8388608.0f)) return v;  // 2^23 and beyond: already an integer (or inf, NaN)
  float t = std::trunc(a);
  const float f = a - t;
  if (f > 0.5f || (f == 0.5f && (static_cast<std::int32_t>(t) & 1) != 0)) t += 1.0f;
  return std::copysign(t, v);
}

/// @brief saturate(r + zp) for an integer-valued float r (or +-inf, NaN) and zp in Q's range:
/// exact for |r| < 2^24, and past that r + zp lies beyond the range either way. NaN gives qmin.
template <onnx_integer Q>
inline Q saturate(float r, float zp) noexcept {
  constexpr float lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  const float v = r + zp;
  if (!(v > lo)) return static_cast<Q>(lo);  // NaN too
  if (v > hi) return static_cast<Q>(hi);
  return static_cast<Q>(v);
}

/// @brief How a scale (or zero point) vector maps to the elements of x: the element at flat
/// row-major index e uses entry (e / inner) % channels (channels = 1: per tensor).
struct axis_map {
  std::int64_t channels = 1, inner = 1;
};

/// @brief The entries of a scalar or 1-D view as a vector (strided views allowed).
template <class T>
std::vector<T> entries(tensor_view<const T> v) {
  std::vector<T> out(static_cast<std::size_t>(v.rank() == 0 ? 1 : v.dim(0)));
  if (v.rank() == 0) out[0] = *v.data();
  else
    for (std::int64_t i = 0; i < v.dim(0); ++i) out[static_cast<std::size_t>(i)] = v(i);
  return out;
}

/// @brief Checks scale (and zero point, when present) against x and axis; returns the map.
/// op names the operator, sname / zname the inputs as ONNX names them.
inline axis_map check_axis(const char* op, const shape& xs, const shape& scale, const char* sname, bool has_zp,
                           const shape& zp, const char* zname, int axis) {
  const std::string where = std::string("tformer::quant::") + op + ": ";
  if (scale.rank() > 1)
    throw shape_error(where + sname + " must be a scalar or a 1-D tensor, got " + scale.to_string());
  if (scale.numel() == 0) throw shape_error(where + sname + " is empty (" + scale.to_string() + ")");
  if (has_zp && (zp.rank() > 1 || zp.numel() != scale.numel()))
    throw shape_error(where + zname + " " + zp.to_string() + " must have the shape of " + sname + " " +
                      scale.to_string());
  if (scale.numel() == 1) return {};  // per tensor: axis is not used
  const int r = xs.rank();
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    throw value_error(where + "axis " + std::to_string(axis) + " is out of range for x " + xs.to_string() +
                      " (rank " + std::to_string(r) + ": axis in [" + std::to_string(-r) + ", " +
                      std::to_string(r - 1) + "])");
  if (scale[0] != xs[a])
    throw shape_error(where + sname + " " + scale.to_string() + " must have x.dim(axis) = " + std::to_string(xs[a]) +
                      " elements for x " + xs.to_string() + " along axis " + std::to_string(axis));
  axis_map m;
  m.channels = xs[a];
  for (int d = a + 1; d < r; ++d) m.inner *= xs[d];
  return m;
}

/// @brief Checks that x and y have one shape and rows of unit stride (any leading strides).
template <class X, class Y>
void check_pair(const char* op, tensor_view<X> x, const char* xname, tensor_view<Y> y, const char* yname) {
  const std::string where = std::string("tformer::quant::") + op + ": ";
  if (!(x.shape() == y.shape()))
    throw shape_error(where + yname + " " + y.shape().to_string() + " must have the shape of " + xname + " " +
                      x.shape().to_string());
  if (x.rank() > 0 && x.dim(-1) > 1 && x.stride(-1) != 1)
    throw shape_error(where + xname + "'s rows must be contiguous (inner stride " + std::to_string(x.stride(-1)) + ")");
  if (y.rank() > 0 && y.dim(-1) > 1 && y.stride(-1) != 1)
    throw shape_error(where + yname + "'s rows must be contiguous (inner stride " + std::to_string(y.stride(-1)) + ")");
}

/// @brief Calls fn(row pointer of x, of y, cols, channel of the row's first element, channel step)
/// for every innermost row: the channel of element c is first + c * step (step 0 or 1).
template <class X, class Y, class Fn>
void for_rows(tensor_view<X> x, tensor_view<Y> y, const axis_map& m, Fn&& fn) {
  const std::int64_t cols = x.rank() == 0 ? 1 : x.dim(-1);
  const std::int64_t rows = x.rank() == 0 ? 1 : x.rows();
  const bool along_rows = m.channels > 1 && m.inner == 1;  // the axis is the last one
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t first = along_rows || m.channels == 1 ? 0 : (r * cols / m.inner) % m.channels;
    fn(x.rank() == 0 ? x.data() : x.row(r), y.rank() == 0 ? y.data() : y.row(r), cols, first,
       std::int64_t{along_rows ? 1 : 0});
  }
}

template <onnx_integer Q>
void quantize(tensor_view<const float> x, tensor_view<const float> y_scale, tensor_view<const Q> y_zero_point,
              tensor_view<Q> y, int axis) {
  const bool has_zp = y_zero_point.data() != nullptr;
  check_pair("quantize_linear", x, "x", y, "y");
  const axis_map m = check_axis("quantize_linear", x.shape(), y_scale.shape(), "y_scale", has_zp,
                                has_zp ? y_zero_point.shape() : shape{}, "y_zero_point", axis);
  const std::vector<float> scale = entries(y_scale);
  std::vector<float> zp(scale.size(), 0.0f);
  if (has_zp) {
    const std::vector<Q> z = entries(y_zero_point);
    for (std::size_t i = 0; i < z.size(); ++i) zp[i] = static_cast<float>(z[i]);
  }
  for (std::size_t i = 0; i < scale.size(); ++i)
    if (!(scale[i] != 0.0f) || !std::isfinite(scale[i]))
      throw value_error("tformer::quant::quantize_linear: y_scale[" + std::to_string(i) + "] is " +
                        std::to_string(scale[i]) + ": a scale must be finite and nonzero (x / y_scale)");
  for_rows(x, y, m, [&](const float* xr, Q* yr, std::int64_t cols, std::int64_t first, std::int64_t step) {
    if (step == 0) {
      const float s = scale[static_cast<std::size_t>(first)], z = zp[static_cast<std::size_t>(first)];
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = saturate<Q>(round_half_even(xr[c] / s), z);
    } else {
      for (std::int64_t c = 0; c < cols; ++c) {
        const auto ch = static_cast<std::size_t>(c);
        yr[c] = saturate<Q>(round_half_even(xr[c] / scale[ch]), zp[ch]);
      }
    }
  });
}

template <onnx_integer Q>
void dequantize(tensor_view<const Q> x, tensor_view<const float> x_scale, tensor_view<const Q> x_zero_point,
                tensor_view<float> y, int axis) {
  const bool has_zp = x_zero_point.data() != nullptr;
  check_pair("dequantize_linear", x, "x", y, "y");
  const axis_map m = check_axis("dequantize_linear", x.shape(), x_scale.shape(), "x_scale", has_zp,
                                has_zp ? x_zero_point.shape() : shape{}, "x_zero_point", axis);
  const std::vector<float> scale = entries(x_scale);
  std::vector<float> zp(scale.size(), 0.0f);
  if (has_zp) {
    const std::vector<Q> z = entries(x_zero_point);
    for (std::size_t i = 0; i < z.size(); ++i) zp[i] = static_cast<float>(z[i]);
  }
  for_rows(x, y, m, [&](const Q* xr, float* yr, std::int64_t cols, std::int64_t first, std::int64_t step) {
    if (step == 0) {
      const float s = scale[static_cast<std::size_t>(first)], z = zp[static_cast<std::size_t>(first)];
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = (static_cast<float>(xr[c]) - z) * s;
    } else {
      for (std::int64_t c = 0; c < cols; ++c) {
        const auto ch = static_cast<std::size_t>(c);
        yr[c] = (static_cast<float>(xr[c]) - zp[ch]) * scale[ch];
      }
    }
  });
}

}  // namespace detail::onnx_quant

/// @brief ONNX QuantizeLinear to uint8: y = saturate(round_half_even(x / y_scale) + y_zero_point).
/// x and y of one shape (rank 0 to 4); y_scale and y_zero_point scalars or [x.dim(axis)].
inline void quantize_linear(tensor_view<const float> x, tensor_view<const float> y_scale,
                            tensor_view<const std::uint8_t> y_zero_point, tensor_view<std::uint8_t> y, int axis = 1) {
  detail::onnx_quant::quantize<std::uint8_t>(x, y_scale, y_zero_point, y, axis);
}
/// @brief ONNX QuantizeLinear to int8 (saturating to [-128, 127]).
inline void quantize_linear(tensor_view<const float> x, tensor_view<const float> y_scale,
                            tensor_view<const std::int8_t> y_zero_point, tensor_view<std::int8_t> y, int axis = 1) {
  detail::onnx_quant::quantize<std::int8_t>(x, y_scale, y_zero_point, y, axis);
}
/// @brief ONNX QuantizeLinear without a zero point (0), to y's type (uint8 or int8).
template <onnx_integer Q>
void quantize_linear(tensor_view<const float> x, tensor_view<const float> y_scale, tensor_view<Q> y, int axis = 1) {
  detail::onnx_quant::quantize<Q>(x, y_scale, {}, y, axis);
}

/// @brief ONNX DequantizeLinear from uint8: y = ((float)x - (float)x_zero_point) * x_scale.
inline void dequantize_linear(tensor_view<const std::uint8_t> x, tensor_view<const float> x_scale,
                              tensor_view<const std::uint8_t> x_zero_point, tensor_view<float> y, int axis = 1) {
  detail::onnx_quant::dequantize<std::uint8_t>(x, x_scale, x_zero_point, y, axis);
}
/// @brief ONNX DequantizeLinear from int8.
inline void dequantize_linear(tensor_view<const std::int8_t> x, tensor_view<const float> x_scale,
                              tensor_view<const std::int8_t> x_zero_point, tensor_view<float> y, int axis = 1) {
  detail::onnx_quant::dequantize<std::int8_t>(x, x_scale, x_zero_point, y, axis);
}
/// @brief ONNX DequantizeLinear without a zero point (0), from uint8.
inline void dequantize_linear(tensor_view<const std::uint8_t> x, tensor_view<const float> x_scale, tensor_view<float> y,
                              int axis = 1) {
  detail::onnx_quant::dequantize<std::uint8_t>(x, x_scale, {}, y, axis);
}
/// @brief ONNX DequantizeLinear without a zero point (0), from int8.
inline void dequantize_linear(tensor_view<const std::int8_t> x, tensor_view<const float> x_scale, tensor_view<float> y,
                              int axis = 1) {
  detail::onnx_quant::dequantize<std::int8_t>(x, x_scale, {}, y, axis);
}

/// @brief DynamicQuantizeLinear's scale and zero point.
struct dynamic_quantization {
  float scale = 0.0f;
  std::uint8_t zero_point = 0;
};

/// @brief The scale and zero point DynamicQuantizeLinear picks for values in [minx, maxx]
/// (minx <= 0 <= maxx, finite): see the top of the file.
inline dynamic_quantization dynamic_quantization_of(float minx, float maxx) noexcept {
  dynamic_quantization q;
  q.scale = (maxx == minx ? 1.0f : maxx - minx) / 255.0f;
  float zp = 0.0f - minx / q.scale;
  zp = zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp;
  q.zero_point = static_cast<std::uint8_t>(detail::onnx_quant::round_half_even(zp));
  return q;
}

/// @brief ONNX DynamicQuantizeLinear: y (x's shape, uint8) = x quantized with the returned scale
/// and zero point (see the top of the file). Throws value_error for a non-finite x.
inline dynamic_quantization dynamic_quantize_linear(tensor_view<const float> x, tensor_view<std::uint8_t> y) {
  detail::onnx_quant::check_pair("dynamic_quantize_linear", x, "x", y, "y");
  float minx = 0.0f, maxx = 0.0f;
  const detail::onnx_quant::axis_map per_tensor;
  std::int64_t row = 0;
  detail::onnx_quant::for_rows(x, y, per_tensor, [&](const float* xr, std::uint8_t*, std::int64_t cols, std::int64_t,
                                                     std::int64_t) {
    for (std::int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(xr[c]))
        throw value_error("tformer::quant::dynamic_quantize_linear: x holds " + std::to_string(xr[c]) +
                          " at flat index " + std::to_string(row * cols + c) + " (x " + x.shape().to_string() +
                          "); the operator needs finite values");
      minx = xr[c] < minx ? xr[c] : minx;
      maxx = xr[c] > maxx ? xr[c] : maxx;
    }
    ++row;
  });
  const dynamic_quantization q = dynamic_quantization_of(minx, maxx);
  const float zp = q.zero_point;
  detail::onnx_quant::for_rows(x, y, per_tensor, [&](const float* xr, std::uint8_t* yr, std::int64_t cols, std::int64_t,
                                                     std::int64_t) {
    for (std::int64_t c = 0; c < cols; ++c)
      yr[c] = detail::onnx_quant::saturate<std::uint8_t>(detail::onnx_quant::round_half_even(xr[c] / q.scale), zp);
  });
  return q;
}

}  // namespace tformer::quant
