// Feed-forward blocks, templated on the activation and the weight format.
//   mlp<Act>:       out = down(Act(up(x)))                      (BERT, GPT-2, original Transformer)
//   gated_mlp<Act>: out = down(Act(gate(x)) * up(x))            (GLU family: SwiGLU = silu,
//                                                                 GeGLU = gelu, ReGLU = relu, bilinear = identity)
#pragma once

#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
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

/// @brief A feed-forward policy: out [..., d] = f(x [..., d]).
template <class F>
concept feed_forward = requires(const F& f, tensor_view<const float> x, tensor_view<float> y) { f.forward(x, y); };

/// @brief Two-layer MLP with activation Act: down(Act(up(x))).
template <simd::activation Act, weight_format Format = f32_weights>
class mlp {
 public:
  mlp() = default;
  explicit mlp(const ffn_config& c) : up(c.d_model, c.d_ff, c.bias), down(c.d_ff, c.d_model, c.bias) {}
  /// @brief out [..., d] = down(Act(up(x))); x, out contiguous.
  void forward(tensor_view<const float> x, tensor_view<float> out) const {
    tensor<float> h(hidden_shape(x, up.out_features()));  // h: [..., d_ff]
    up.forward(x, h);
    ops::activate<Act>(h, h);
    down.forward(h, out);
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
template <simd::activation Act, weight_format Format = f32_weights>
class gated_mlp {
 public:
  gated_mlp() = default;
  explicit gated_mlp(const ffn_config& c)
      : gate(c.d_model, c.d_ff, c.bias), up(c.d_model, c.d_ff, c.bias), down(c.d_ff, c.d_model, c.bias) {}
  void forward(tensor_view<const float> x, tensor_view<float> out) const {
    const shape hs = mlp<Act, Format>::hidden_shape(x, up.out_features());
    tensor<float> g(hs), u(hs);  // [..., d_ff] each
    gate.forward(x, g);
    up.forward(x, u);
    ops::activate<Act>(g, g);
    ops::mul(g, u, g);
    down.forward(g, out);
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
