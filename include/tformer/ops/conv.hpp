// 1-D convolution over time, as PyTorch's nn.Conv1d with groups = 1 and dilation = 1, on
// time-major activations: x [B, T, C_in] -> y [B, T_out, C_out], T_out = (T + 2 pad - k) / stride + 1.
// Each sequence is unfolded (im2col) into rows [T_out, C_in * k] and multiplied by the weight
// [C_out, C_in, k] seen as [C_out, C_in * k] with ops::linear: the float GEMM does the work.
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "matmul.hpp"

namespace tformer::ops {

/// @brief Output length of a convolution of kernel k, stride, zero padding pad on T steps (0 when
/// the padded input is shorter than the kernel).
inline std::int64_t conv1d_length(std::int64_t T, std::int64_t k, std::int64_t stride, std::int64_t pad) noexcept {
  const std::int64_t padded = T + 2 * pad;
  return padded < k ? 0 : (padded - k) / stride + 1;
}

/// @brief y [B, T_out, C_out] = conv1d(x [B, T, C_in], w [C_out, C_in, k]) + bias [C_out] (or
/// empty), zero padding pad on both ends. Temporaries come from ws (or the heap).
inline void conv1d(tensor_view<const float> x, tensor_view<const float> w, tensor_view<const float> bias,
                   tensor_view<float> y, std::int64_t stride, std::int64_t pad, workspace* ws = nullptr) {
  if (x.rank() != 3 || w.rank() != 3 || y.rank() != 3 || !x.is_contiguous() || !w.is_contiguous() || !y.is_contiguous())
    throw shape_error("tformer::ops::conv1d: x [B, T, C_in], w [C_out, C_in, k] and y [B, T_out, C_out] must be "
                      "contiguous rank-3 tensors, got x " + x.shape().to_string() + ", w " + w.shape().to_string() +
                      ", y " + y.shape().to_string());
  if (stride < 1 || pad < 0)
    throw value_error("tformer::ops::conv1d: stride must be >= 1 and padding >= 0, got " + std::to_string(stride) + " and " +
                      std::to_string(pad));
  const std::int64_t B = x.dim(0), T = x.dim(1), Ci = x.dim(2), Co = w.dim(0), K = w.dim(2);
  const std::int64_t To = conv1d_length(T, K, stride, pad);
  if (w.dim(1) != Ci || y.dim(0) != B || y.dim(1) != To || y.dim(2) != Co)
    throw shape_error("tformer::ops::conv1d: x " + x.shape().to_string() + " and w " + w.shape().to_string() + " (stride " +
                      std::to_string(stride) + ", padding " + std::to_string(pad) + ") give y [" + std::to_string(B) + ", " +
                      std::to_string(To) + ", " + std::to_string(Co) + "], got " + y.shape().to_string());
  if (bias.data() && (bias.rank() != 1 || bias.dim(0) != Co))
    throw shape_error("tformer::ops::conv1d: bias must be [" + std::to_string(Co) + "], got " + bias.shape().to_string());
  if (To == 0 || B == 0 || Co == 0) return;
  workspace_ref scratch(ws);
  const auto scope = scratch->open();
  const auto cols = scratch->take<float>(shape{To, Ci * K});  // [T_out, C_in * k] unfolded input
  const tensor_view<const float> w2 = w.reshape(shape{Co, Ci * K});  // [C_out, C_in * k]
  for (std::int64_t b = 0; b < B; ++b) {
    const float* xb = x.data() + b * T * Ci;
    for (std::int64_t t = 0; t < To; ++t) {
      float* row = cols.data() + t * Ci * K;
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t s = t * stride + j - pad;  // input step under tap j
        for (std::int64_t c = 0; c < Ci; ++c) row[c * K + j] = (s >= 0 && s < T) ? xb[s * Ci + c] : 0.0f;
      }
    }
    linear(cols, w2, y.slice(0, b, b + 1).reshape(shape{To, Co}), bias);
  }
}

}  // namespace tformer::ops
