// quant::observed<F>: weight format F whose linears show their inputs to an observer before they
// multiply. It is F in every other respect (bytes, name, products), so a model loads and runs as
// with F; only the observation is added, and only while an observer is installed on the calling
// thread. This is how calibration sees each linear's input inside any model built in user code,
// without the model knowing (quant/gptq.hpp's hessians uses it):
//
//   struct calibration_spec : my_spec { using weights = quant::observed<quant::f32>; };
//   models::decoder_lm<calibration_spec> m(config);  ... load ...
//   quant::hessians h(m);                             // one per linear, found by m.visit
//   { quant::observe_linears scope(h); for (auto& chunk : text) m.forward(chunk); }
//
// ops::linear calls observed<F>::observe(&w, x) with the matrix's address and x [m, k], the rows it
// is about to multiply, on the thread that called it (before its own threads start).
#pragma once

#include "../core/tensor.hpp"
#include "format.hpp"

namespace tformer::quant {

/// @brief Receives the inputs of the linears whose weights are in an observed<F> format while an
/// observe_linears scope holds it on the calling thread.
class linear_observer {
 public:
  virtual ~linear_observer() = default;
  /// @brief weight: the address of the quant::matrix<observed<F>> (a model's visit names it);
  /// x [m, k]: the activation rows the linear multiplies by it.
  virtual void observe(const void* weight, tensor_view<const float> x) = 0;
};

namespace detail {
inline thread_local linear_observer* current_linear_observer = nullptr;
}  // namespace detail

/// @brief Installs an observer on this thread for the scope's lifetime; the previous one (if any)
/// is back afterwards. Scopes nest.
class observe_linears {
 public:
  explicit observe_linears(linear_observer& o) noexcept : previous_(detail::current_linear_observer) {
    detail::current_linear_observer = &o;
  }
  ~observe_linears() { detail::current_linear_observer = previous_; }
  observe_linears(const observe_linears&) = delete;
  observe_linears& operator=(const observe_linears&) = delete;

 private:
  linear_observer* previous_;
};

/// @brief Format F whose linears report their input to this thread's observer (if any) first.
template <weight_format F>
struct observed : F {
  static constexpr bool observes_inputs = true;
  static void observe(const void* weight, tensor_view<const float> x) {
    if (linear_observer* o = detail::current_linear_observer) o->observe(weight, x);
  }
};

/// @brief An observed<F> format.
template <class F>
concept observed_format = weight_format<F> && requires(const void* w, tensor_view<const float> x) {
  requires F::observes_inputs;
  F::observe(w, x);
};

}  // namespace tformer::quant
