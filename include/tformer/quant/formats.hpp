// The formats tformer knows by name, and the one place where a format named at run time (in a
// file, a config) becomes a compile-time format type (visit_format by name, visit_ggml_type by a
// GGUF tensor's ggml type id). A new format header adds itself to `known` below: that line is its
// registration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "bf16.hpp"
#include "f16.hpp"
#include "f32.hpp"
#include "fallback.hpp"
#include "format.hpp"
#include "fp8.hpp"
#include "int4_group.hpp"
#include "int8_channel.hpp"
#include "iq4_nl.hpp"
#include "iq4_xs.hpp"
#include "mxfp4.hpp"
#include "nvfp4.hpp"
#include "q4_0.hpp"
#include "q2_k.hpp"
#include "q3_k.hpp"
#include "q4_1.hpp"
#include "q4_k.hpp"
#include "q5_0.hpp"
#include "q5_1.hpp"
#include "q5_k.hpp"
#include "q6_k.hpp"
#include "q8_0.hpp"
#include "tq2_0.hpp"

namespace tformer::quant {

/// @brief A list of formats.
template <weight_format... F>
struct format_list {};

/// @brief Every format tformer ships, in the order visit_format tries them.
using known = format_list<f32, f16, bf16,                                                      // plain elements
                          q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl,                                  // ggml, 32-weight blocks
                          q4_k, q5_k, q6_k, q3_k, q2_k, iq4_xs, tq2_0,                           // ggml, 256-weight blocks
                          q4_k_or_q5_0, q5_k_or_q5_1, q6_k_or_q8_0, q3_k_or_q4_0, q2_k_or_q4_0,  // llama.cpp's fallbacks
                          iq4_xs_or_iq4_nl,                                                      //   (quant/fallback.hpp)
                          int8_channel, uint8_channel, int4_group<32>, int4_group<64>, int4_group<128>,
                          fp8_e4m3, fp8_e5m2, mxfp4, nvfp4>;

namespace detail {
template <class Fn, weight_format... F>
bool visit_in(std::string_view name, Fn&& fn, format_list<F...>) {
  return ((name == std::string_view(F::name) ? (fn(F{}), true) : false) || ...);
}

// fn(F{}) when F is a ggml format of type id.
template <weight_format F, class Fn>
bool visit_if_ggml(std::uint32_t id, Fn& fn) {
  if constexpr (ggml_format<F>) {
    if (static_cast<std::uint32_t>(F::ggml_type) == id) {
      fn(F{});
      return true;
    }
  }
  return false;
}
template <class Fn, weight_format... F>
bool visit_ggml_in(std::uint32_t id, Fn& fn, format_list<F...>) {
  return (visit_if_ggml<F>(id, fn) || ...);
}

// The ggml type id of F, or -1 when F is not a ggml type.
template <weight_format F>
constexpr long long ggml_id_of() {
  if constexpr (ggml_format<F>)
    return static_cast<long long>(static_cast<std::uint32_t>(F::ggml_type));
  else
    return -1;
}
// No two known formats claim the same ggml type (visit_ggml_type would pick the first silently).
template <weight_format... F>
constexpr bool distinct_ggml_types(format_list<F...>) {
  const long long ids[] = {-1, ggml_id_of<F>()...};
  for (std::size_t i = 1; i < sizeof...(F) + 1; ++i)
    for (std::size_t j = i + 1; j < sizeof...(F) + 1; ++j)
      if (ids[i] >= 0 && ids[i] == ids[j]) return false;
  return true;
}
}  // namespace detail

/// @brief Calls fn(F{}) with the known format called name; throws dtype_error for an unknown name.
template <class Fn>
void visit_format(std::string_view name, Fn&& fn) {
  if (!detail::visit_in(name, fn, known{}))
    throw dtype_error("tformer: unknown weight format '" + std::string(name) + "'");
}

/// @brief Calls fn(F{}) with the known format whose ggml_type is id (a GGUF tensor's type) and
/// returns true; returns false, calling nothing, when no known format stores that ggml type (the
/// caller names the tensor in its error: see io/gguf.hpp).
template <class Fn>
bool visit_ggml_type(std::uint32_t id, Fn&& fn) {
  static_assert(detail::distinct_ggml_types(known{}), "two known formats declare the same ggml_type");
  return detail::visit_ggml_in(id, fn, known{});
}

/// @brief True when name is a known format.
inline bool is_known_format(std::string_view name) {
  bool found = false;
  detail::visit_in(name, [&](auto) { found = true; }, known{});
  return found;
}

}  // namespace tformer::quant
