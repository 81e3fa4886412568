// Convolution blocks that own weights: conv1d (PyTorch's nn.Conv1d, groups 1) on time-major
// activations [B, T, C], and conv_front_end, the speech front end of Whisper's encoder:
// features [B, n_mels, frames] -> GELU(conv1 (k 3, pad 1)) -> GELU(conv2 (k 3, stride 2, pad 1))
// -> + positions -> [B, frames / 2, d], the embeddings the encoder's layers take.
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/conv.hpp"
#include "../ops/elementwise.hpp"
#include "../simd/activation.hpp"
#include "positions.hpp"

namespace tformer::nn {

/// @brief 1-D convolution: weight [out, in, kernel] (nn.Conv1d's layout), bias [out] or none.
class conv1d {
 public:
  conv1d() = default;
  conv1d(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1, std::int64_t padding = 0,
         bool bias = true)
      : weight(shape{out, in, kernel}), bias(bias ? tensor<float>(shape{out}) : tensor<float>()), stride(stride), padding(padding) {
    if (in < 1 || out < 1 || kernel < 1 || stride < 1 || padding < 0)
      throw value_error("tformer::nn::conv1d: in, out, kernel, stride must be >= 1 and padding >= 0, got " +
                        std::to_string(in) + ", " + std::to_string(out) + ", " + std::to_string(kernel) + ", " +
                        std::to_string(stride) + ", " + std::to_string(padding));
  }
  std::int64_t out_length(std::int64_t T) const { return ops::conv1d_length(T, weight.dim(2), stride, padding); }
  /// @brief y [B, out_length(T), out] = conv(x [B, T, in]).
  void forward(tensor_view<const float> x, tensor_view<float> y, workspace* ws = nullptr) const {
    ops::conv1d(x, weight, bias.rank() == 1 ? bias.view() : tensor_view<const float>(), y, stride, padding, ws);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
    if (bias.rank() == 1) v(prefix + "bias", bias);
  }
  tensor<float> weight;  // [out, in, kernel]
  tensor<float> bias;    // [out], or rank 0
  std::int64_t stride = 1, padding = 0;
};

/// @brief Whisper's encoder front end (see the file comment) with activation Act (exact GELU in
/// Whisper) and a learned position table [max_positions, d] (Whisper's fixed sinusoids, stored as
/// weights by every checkpoint).
template <simd::activation Act = simd::act::gelu>
class conv_front_end {
 public:
  conv_front_end() = default;
  conv_front_end(std::int64_t n_mels, std::int64_t d, std::int64_t max_positions)
      : conv1(n_mels, d, 3, 1, 1), conv2(d, d, 3, 2, 1), positions(max_positions, d) {}

  std::int64_t n_mels() const { return conv1.weight.dim(1); }
  std::int64_t d_model() const { return conv1.weight.dim(0); }
  /// @brief Steps out of `frames` input frames.
  std::int64_t out_length(std::int64_t frames) const { return conv2.out_length(conv1.out_length(frames)); }

  /// @brief Embeddings [B, out_length(frames), d] of features [B, n_mels, frames] (Whisper's and
  /// transformers' layout: mel bins outermost). Throws shape_error when the steps exceed the
  /// position table.
  tensor<float> forward(tensor_view<const float> features, workspace* ws = nullptr) const {
    if (features.rank() != 3 || features.dim(1) != n_mels())
      throw shape_error("tformer::nn::conv_front_end: features must be [B, " + std::to_string(n_mels()) + ", frames], got " +
                        features.shape().to_string());
    const std::int64_t B = features.dim(0), F = features.dim(2), T1 = conv1.out_length(F), T2 = conv2.out_length(T1);
    if (T2 > positions.max_positions())
      throw shape_error("tformer::nn::conv_front_end: " + std::to_string(F) + " frames give " + std::to_string(T2) +
                        " steps, more than the " + std::to_string(positions.max_positions()) + " positions of the table");
    workspace_ref scratch(ws);
    const auto scope = scratch->open();
    const auto x = scratch->take<float>(shape{B, F, n_mels()});  // [B, frames, n_mels] time-major features
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t m = 0; m < n_mels(); ++m)
        for (std::int64_t t = 0; t < F; ++t) x(b, t, m) = features(b, m, t);
    const auto h = scratch->take<float>(shape{B, T1, d_model()});  // [B, T1, d] after conv1
    conv1.forward(x, h, scratch.get());
    ops::activate<Act>(h, h);
    tensor<float> out(shape{B, T2, d_model()});  // [B, T2, d]
    conv2.forward(h, out, scratch.get());
    ops::activate<Act>(out, out);
    positions.add(out, {});
    return out;
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    conv1.visit(v, prefix + "conv1.");
    conv2.visit(v, prefix + "conv2.");
    positions.visit(v, prefix + "positions.");
  }

  conv1d conv1, conv2;
  learned_positions positions;  // [max_positions, d]
};

}  // namespace tformer::nn
