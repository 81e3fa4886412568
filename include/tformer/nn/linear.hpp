// Linear layer y = x W^T + b with W in PyTorch's [out, in] layout. How W is stored is a policy
// (a weight format); f32 and bf16 now, quantized formats later, without changing the blocks
// that hold a linear.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/tensor.hpp"
#include "../ops/matmul.hpp"

namespace tformer::nn {

/// @brief A weight storage format: its element type and the product y = x W^T (+ b).
template <class F>
concept weight_format = element<typename F::storage> &&
    requires(tensor_view<const float> x, tensor_view<const typename F::storage> w, tensor_view<float> y) {
      { F::name } -> std::convertible_to<const char*>;
      F::linear(x, w, y, x);
    };

/// @brief Weights stored as float.
struct f32_weights {
  using storage = float;
  static constexpr const char* name = "f32";
  static void linear(tensor_view<const float> x, tensor_view<const float> w, tensor_view<float> y,
                     tensor_view<const float> bias) {
    ops::linear(x, w, y, bias);
  }
};

/// @brief Weights stored as bfloat16 (half the memory traffic), products in float.
struct bf16_weights {
  using storage = bf16;
  static constexpr const char* name = "bf16";
  static void linear(tensor_view<const float> x, tensor_view<const bf16> w, tensor_view<float> y,
                     tensor_view<const float> bias) {
    ops::linear(x, w, y, bias);
  }
};

/// @brief Linear layer: weight [out, in] in format F, optional bias [out].
/// @tparam F weight storage format (f32_weights, bf16_weights, ...).
template <weight_format F = f32_weights>
class linear {
 public:
  using format = F;
  linear() = default;
  linear(std::int64_t in_features, std::int64_t out_features, bool bias = true)
      : weight(shape{out_features, in_features}), bias(bias ? tensor<float>(shape{out_features}) : tensor<float>()) {}

  std::int64_t in_features() const { return weight.rank() == 2 ? weight.dim(1) : 0; }
  std::int64_t out_features() const { return weight.rank() == 2 ? weight.dim(0) : 0; }
  bool has_bias() const noexcept { return bias.rank() == 1; }

  /// @brief y [..., out] = x [..., in] W^T + b; leading dimensions are flattened (x, y contiguous).
  void forward(tensor_view<const float> x, tensor_view<float> y) const {
    if (x.rank() < 1 || x.dim(-1) != in_features())
      throw shape_error("tformer::nn::linear: input " + x.shape().to_string() + " must end in in_features = " +
                        std::to_string(in_features()));
    if (y.rank() != x.rank() || y.dim(-1) != out_features() || y.rows() != x.rows())
      throw shape_error("tformer::nn::linear: output " + y.shape().to_string() + " must be the input's shape " +
                        x.shape().to_string() + " with out_features = " + std::to_string(out_features()) + " last");
    const shape x2{x.rows(), in_features()}, y2{y.rows(), out_features()};
    F::linear(x.rank() == 2 ? x : x.reshape(x2), weight.view(), y.rank() == 2 ? y : y.reshape(y2),
              has_bias() ? bias.view() : tensor_view<const float>());
  }

  /// @brief Visits weight and bias as prefix + "weight" / "bias".
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
    if (has_bias()) v(prefix + "bias", bias);
  }

  tensor<typename F::storage> weight;  // [out, in]
  tensor<float> bias;                  // [out], or rank 0 (no bias)
};

}  // namespace tformer::nn
