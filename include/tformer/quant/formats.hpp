// The formats tformer knows by name, and the one place where a format named at run time (in a
// file, a config) becomes a compile-time format type (visit_format). A new format header adds
// itself to `known` below: that line is its registration.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "bf16.hpp"
#include "f16.hpp"
#include "f32.hpp"
#include "format.hpp"
#include "q8_0.hpp"

namespace tformer::quant {

/// @brief A list of formats.
template <weight_format... F>
struct format_list {};

/// @brief Every format tformer ships, in the order visit_format tries them.
using known = format_list<f32, f16, bf16, q8_0>;

namespace detail {
template <class Fn, weight_format... F>
bool visit_in(std::string_view name, Fn&& fn, format_list<F...>) {
  return ((name == std::string_view(F::name) ? (fn(F{}), true) : false) || ...);
}
}  // namespace detail

/// @brief Calls fn(F{}) with the known format called name; throws dtype_error for an unknown name.
template <class Fn>
void visit_format(std::string_view name, Fn&& fn) {
  if (!detail::visit_in(name, fn, known{}))
    throw dtype_error("tformer: unknown weight format '" + std::string(name) + "'");
}

/// @brief True when name is a known format.
inline bool is_known_format(std::string_view name) {
  bool found = false;
  detail::visit_in(name, [&](auto) { found = true; }, known{});
  return found;
}

}  // namespace tformer::quant
