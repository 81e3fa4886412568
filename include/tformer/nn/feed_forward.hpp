// Feed-forward blocks, templated on the activation and the weight format.
//   mlp<Act>:       out = down(Act(up(x)))                      (BERT, GPT-2, original Transformer)
//   gated_mlp<Act>: out = down(Act(gate(x)) * up(x))            (GLU family: SwiGLU = silu,
//                                                                 GeGLU = gelu, ReGLU = relu, bilinear = identity)
#pragma once

#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/elementwise.hpp"
#include "../simd/activation.hpp"
#include "linear.hpp"

namespace tformer::nn {

/// @brief Sizes of a feed-forward block.
struct ffn_config {
  std::int64_t d_model = 0;
  std::int64_t d_ff = 0;
  bool bias = true;
};

/// @brief A feed-forward policy: out [..., d] = f(x [..., d]), temporaries from an optional workspace.
template <class F>
concept feed_forward = requires(const F& f, tensor_view<const float> x, tensor_view<float> y, workspace* ws) {
  f.forward(x, y, ws);
};

/// @brief Two-layer MLP with activation Act: down(Act(up(x))).
template <simd::activation Act, quant::weight_format Format = quant::f32>
class mlp {
 public:
  using format = Format;
  template <quant::weight_format G>
  using with_weights = mlp<Act, G>;
  mlp() = default;
  explicit mlp(const ffn_config& c) : up(c.d_model, c.d_ff, c.bias), down(c.d_ff, c.d_model, c.bias) {}
  /// @brief out [..., d] = down(Act(up(x))); x, out contiguous.
  void forward(tensor_view<const float> x, tensor_view<float> out, workspace* ws = nullptr) const {
    workspace_ref scratch(ws);
    const auto scope = scratch->open();
    const auto h = scratch->take<float>(hidden_shape(x, up.out_features()));  // [..., d_ff]
    up.forward(x, h, scratch.get());
    ops::activate<Act>(h, h);
    down.forward(h, out, scratch.get());
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    up.visit(v, prefix + "up.");
    down.visit(v, prefix + "down.");
  }
  linear<Format> up;    // [d_ff, d]
  linear<Format> down;  // [d, d_ff]

  static shape hidden_shape(const tensor_view<const float>& x, std::int64_t f) {
    switch (x.rank()) {
      case 1: return {f};
      case 2: return {x.dim(0), f};
      case 3: return {x.dim(0), x.dim(1), f};
      default: return {x.dim(0), x.dim(1), x.dim(2), f};
    }
  }
};

/// @brief Gated MLP (GLU variants): down(Act(gate(x)) * up(x)).
template <simd::activation Act, quant::weight_format Format = quant::f32>
class gated_mlp {
 public:
  using format = Format;
  template <quant::weight_format G>
  using with_weights = gated_mlp<Act, G>;
  gated_mlp() = default;
  explicit gated_mlp(const ffn_config& c)
      : gate(c.d_model, c.d_ff, c.bias), up(c.d_model, c.d_ff, c.bias), down(c.d_ff, c.d_model, c.bias) {}
  void forward(tensor_view<const float> x, tensor_view<float> out, workspace* ws = nullptr) const {
    workspace_ref scratch(ws);
    const auto scope = scratch->open();
    const shape hs = mlp<Act, Format>::hidden_shape(x, up.out_features());
    const auto g = scratch->take<float>(hs), u = scratch->take<float>(hs);  // [..., d_ff] each
    gate.forward(x, g, scratch.get());
    up.forward(x, u, scratch.get());
    ops::activate<Act>(g, g);
    ops::mul(g, u, g);
    down.forward(g, out, scratch.get());
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    gate.visit(v, prefix + "gate.");
    up.visit(v, prefix + "up.");
    down.visit(v, prefix + "down.");
  }
  linear<Format> gate;  // [d_ff, d]
  linear<Format> up;    // [d_ff, d]
  linear<Format> down;  // [d, d_ff]
};

}  // namespace tformer::nn
