// A residual connection around one sublayer f, with its norm(s) placed by a policy:
//
//   post_ln:  x = N(alpha x + f(x))                       (original Transformer, BERT; DeepNet: alpha > 1)
//   pre_ln:   x = alpha x + f(N(x))                       (GPT-2, Llama, T5)
//   peri_ln:  x = alpha x + N_out(f(N_in(x)))             (Peri-LN)
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <utility>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/elementwise.hpp"
#include "norm.hpp"

namespace tformer::nn {

/// @brief Norm placement policies.
struct post_ln {
  static constexpr const char* name = "post_ln";
};
struct pre_ln {
  static constexpr const char* name = "pre_ln";
};
struct peri_ln {
  static constexpr const char* name = "peri_ln";
};

/// @brief One of post_ln, pre_ln, peri_ln.
template <class P>
concept norm_placement = std::same_as<P, post_ln> || std::same_as<P, pre_ln> || std::same_as<P, peri_ln>;

/// @brief A residual connection around one sublayer, with its norm(s) placed by Placement.
template <norm_placement Placement, norm Norm>
class residual {
 public:
  residual() = default;
  residual(std::int64_t d, float eps, float alpha = 1.0f) : norm_in(d, eps), alpha(alpha) {
    if constexpr (std::same_as<Placement, peri_ln>) norm_out = Norm(d, eps);
  }

  /// @brief x [B, S, d] <- the placement's formula around f(in, out) (both [B, S, d]); the
  /// temporaries come from ws (or the heap without one).
  template <class F>
  void run(tensor_view<float> x, workspace* ws, F&& f) const {
    workspace_ref scratch(ws);
    const auto scope = scratch->open();
    const auto delta = scratch->take<float>(x.shape());  // f's output: [B, S, d]
    if constexpr (std::same_as<Placement, post_ln>) {
      f(tensor_view<const float>(x), delta);
      if (alpha != 1.0f) ops::scale(x, alpha, x);
      norm_in.add_forward(x, delta, x);  // x = N(alpha x + delta)
    } else {
      const auto normed = scratch->take<float>(x.shape());  // N(x): [B, S, d]
      norm_in.forward(x, normed);
      f(tensor_view<const float>(normed), delta);
      if constexpr (std::same_as<Placement, peri_ln>) norm_out.forward(delta, delta);
      if (alpha != 1.0f) ops::scale(x, alpha, x);
      ops::residual_add(x, delta);
    }
  }

  /// @brief run() with temporaries from the heap.
  template <class F>
  void run(tensor_view<float> x, F&& f) const {
    run(x, nullptr, std::forward<F>(f));
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    norm_in.visit(v, prefix + "norm.");
    if constexpr (std::same_as<Placement, peri_ln>) norm_out.visit(v, prefix + "out_norm.");
  }

  Norm norm_in;   // the norm of post_ln / pre_ln, the input norm of peri_ln
  Norm norm_out;  // peri_ln only
  float alpha = 1.0f;  // residual scale (DeepNet / Sub-LN style); 1 for the usual residual
};

}  // namespace tformer::nn
