// Linear layer y = x W^T + b with W in PyTorch's [out, in] layout, stored in a weight format
// (quant::f32, quant::bf16, quant::q8_0, ...: see quant/format.hpp). The blocks that hold a
// linear never depend on how W is stored.
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/matmul.hpp"
#include "../quant/bf16.hpp"
#include "../quant/f32.hpp"
#include "../quant/format.hpp"
#include "../quant/matrix.hpp"

namespace tformer::nn {

/// @brief Linear layer: weight [out, in] in format F, optional bias [out] (float).
/// @tparam F weight format (quant::f32, quant::bf16, quant::q8_0, ...).
template <quant::weight_format F = quant::f32>
class linear {
 public:
  using format = F;
  /// @brief The same layer with its weight in format G.
  template <quant::weight_format G>
  using with_weights = linear<G>;

  linear() = default;
  linear(std::int64_t in_features, std::int64_t out_features, bool bias = true)
      : weight(out_features, in_features), bias(bias ? tensor<float>(shape{out_features}) : tensor<float>()) {}

  std::int64_t in_features() const { return weight.cols(); }
  std::int64_t out_features() const { return weight.rows(); }
  bool has_bias() const noexcept { return bias.rank() == 1; }

  /// @brief y [..., out] = x [..., in] W^T + b; leading dimensions are flattened (x, y contiguous).
  void forward(tensor_view<const float> x, tensor_view<float> y, workspace* ws = nullptr) const {
    if (x.rank() < 1 || x.dim(-1) != in_features())
      throw shape_error("tformer::nn::linear: input " + x.shape().to_string() + " must end in in_features = " +
                        std::to_string(in_features()));
    if (y.rank() != x.rank() || y.dim(-1) != out_features() || y.rows() != x.rows())
      throw shape_error("tformer::nn::linear: output " + y.shape().to_string() + " must be the input's shape " +
                        x.shape().to_string() + " with out_features = " + std::to_string(out_features()) + " last");
    const shape x2{x.rows(), in_features()}, y2{y.rows(), out_features()};
    ops::linear(x.rank() == 2 ? x : x.reshape(x2), weight, y.rank() == 2 ? y : y.reshape(y2),
                has_bias() ? bias.view() : tensor_view<const float>(), ws);
  }

  /// @brief Visits weight and bias as prefix + "weight" / "bias".
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
    if (has_bias()) v(prefix + "bias", bias);
  }

  quant::matrix<F> weight;  // [out, in] in format F
  tensor<float> bias;       // [out], or rank 0 (no bias)
};

/// @brief Former names of the float formats.
using f32_weights = quant::f32;
using bf16_weights = quant::bf16;

}  // namespace tformer::nn
