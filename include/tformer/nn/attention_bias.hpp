// Additive attention biases shared by the layers of a stack (ALiBi, T5 relative buckets): the
// settings a stack builds them from, and the concept they satisfy. The kernel-level hook is
// ops::attention_bias (ops/attention.hpp); ops::no_bias is the bias of a stack without one.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "../ops/attention.hpp"

namespace tformer::nn {

/// @brief What a stack knows when it builds its bias (runtime data).
struct bias_config {
  std::int64_t heads = 0;                   ///< attention heads of the stack's layers
  std::int64_t relative_buckets = 32;       ///< T5 buckets
  std::int64_t relative_max_distance = 128; ///< T5 max distance
  bool bidirectional = true;                ///< encoder (true) or causal decoder (false)
};

/// @brief A bias a stack can hold: an ops::attention_bias built from a bias_config (or default
/// constructible, like ops::no_bias).
template <class B>
concept stack_bias = ops::attention_bias<B> && (std::constructible_from<B, const bias_config&> || std::default_initializable<B>);

/// @brief The stack bias B for c.
template <stack_bias B>
B make_bias(const bias_config& c) {
  if constexpr (std::constructible_from<B, const bias_config&>)
    return B(c);
  else
    return B{};
}

/// @brief Calls b.visit(v, prefix) when the bias has parameters.
template <class B, class V>
void visit_bias(B& b, V&& v, const std::string& prefix) {
  if constexpr (requires { b.visit(v, prefix); }) b.visit(v, prefix);
}

}  // namespace tformer::nn
