// Normalization blocks that own their parameters: LayerNorm, RMSNorm, and "none".
// Every norm: construct from (features, eps); forward(x, out); add_forward(residual, delta, out)
// (residual += delta, out = norm(residual), fused); visit(visitor, prefix).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/norm.hpp"

namespace tformer::nn {

/// @brief A normalization policy over the last axis (LayerNorm, RMSNorm, no_norm).
template <class N>
concept norm = std::constructible_from<N, std::int64_t, float> &&
    requires(const N& n, tensor_view<const float> x, tensor_view<float> y) {
      { N::name } -> std::convertible_to<const char*>;
      n.forward(x, y);
      n.add_forward(y, x, y);
    };

/// @brief LayerNorm: (x - mean) / sqrt(var + eps) * weight + bias (bias optional).
class layer_norm {
 public:
  static constexpr const char* name = "layer_norm";
  layer_norm() = default;
  layer_norm(std::int64_t features, float eps, bool bias = true)
      : weight(shape{features}, 1.0f), bias(bias ? tensor<float>(shape{features}) : tensor<float>()), eps(eps) {}
  void forward(tensor_view<const float> x, tensor_view<float> out) const {
    ops::layer_norm(x, weight, bias_view(), eps, out);
  }
  void add_forward(tensor_view<float> residual, tensor_view<const float> delta, tensor_view<float> out) const {
    ops::add_layer_norm(residual, delta, weight, bias_view(), eps, out);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
    if (bias.rank() == 1) v(prefix + "bias", bias);
  }
  tensor<float> weight;  // [features]
  tensor<float> bias;    // [features] or rank 0 (none)
  float eps = 1e-5f;

 private:
  tensor_view<const float> bias_view() const { return bias.rank() == 1 ? bias.view() : tensor_view<const float>(); }
};

/// @brief RMSNorm: x / sqrt(mean(x^2) + eps) * weight (Llama, T5: no mean, no bias).
class rms_norm {
 public:
  static constexpr const char* name = "rms_norm";
  rms_norm() = default;
  rms_norm(std::int64_t features, float eps) : weight(shape{features}, 1.0f), eps(eps) {}
  void forward(tensor_view<const float> x, tensor_view<float> out) const { ops::rms_norm(x, weight, eps, out); }
  void add_forward(tensor_view<float> residual, tensor_view<const float> delta, tensor_view<float> out) const {
    ops::add_rms_norm(residual, delta, weight, eps, out);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }
  tensor<float> weight;  // [features]
  float eps = 1e-6f;
};

/// @brief The identity, where a composition has no norm (e.g. no final norm, no QK-norm).
struct no_norm {
  static constexpr const char* name = "none";
  no_norm() = default;
  no_norm(std::int64_t, float) {}
  void forward(tensor_view<const float> x, tensor_view<float> out) const {
    if (x.data() != out.data()) ops::scale(x, 1.0f, out);
  }
  void add_forward(tensor_view<float> residual, tensor_view<const float> delta, tensor_view<float> out) const {
    ops::residual_add(residual, delta);
    forward(residual, out);
  }
  template <class V>
  void visit(V&&, const std::string&) {}
};

}  // namespace tformer::nn
