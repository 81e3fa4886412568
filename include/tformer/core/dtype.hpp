// Element types: the runtime tag (dtype), its compile-time counterpart, and the single place
// where a dtype read at run time (from a file, a config) becomes a C++ type (visit_dtype).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "error.hpp"
#include "half.hpp"

namespace tformer {

/// @brief Runtime element-type tag.
enum class dtype : std::uint8_t { f32, f16, bf16, i8, u8, i32 };

/// @brief The C++ element types a tensor may hold.
template <class T>
concept element = std::is_same_v<T, float> || std::is_same_v<T, f16> || std::is_same_v<T, bf16> ||
                  std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> ||
                  std::is_same_v<T, std::int32_t>;

/// @brief dtype_of<T> maps an element type to its tag.
template <element T>
inline constexpr dtype dtype_of = std::is_same_v<T, float>         ? dtype::f32
                                  : std::is_same_v<T, f16>         ? dtype::f16
                                  : std::is_same_v<T, bf16>        ? dtype::bf16
                                  : std::is_same_v<T, std::int8_t> ? dtype::i8
                                  : std::is_same_v<T, std::uint8_t> ? dtype::u8
                                                                    : dtype::i32;

/// @brief Short lower-case name: "f32", "f16", "bf16", "i8", "u8", "i32".
constexpr std::string_view name(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
    case dtype::i8: return "i8";
    case dtype::u8: return "u8";
    case dtype::i32: return "i32";
  }
  return "unknown";
}

/// @brief Size of one element in bytes.
constexpr std::size_t size_of(dtype t) noexcept {
  switch (t) {
    case dtype::f32:
    case dtype::i32: return 4;
    case dtype::f16:
    case dtype::bf16: return 2;
    case dtype::i8:
    case dtype::u8: return 1;
  }
  return 0;
}

/// @brief Calls f(T{}) with the element type named by t; throws dtype_error on an unknown tag.
/// This is the one crossing from a runtime dtype to a compile-time type.
template <class F>
decltype(auto) visit_dtype(dtype t, F&& f) {
  switch (t) {
    case dtype::f32: return std::forward<F>(f)(float{});
    case dtype::f16: return std::forward<F>(f)(f16{});
    case dtype::bf16: return std::forward<F>(f)(bf16{});
    case dtype::i8: return std::forward<F>(f)(std::int8_t{});
    case dtype::u8: return std::forward<F>(f)(std::uint8_t{});
    case dtype::i32: return std::forward<F>(f)(std::int32_t{});
  }
  throw dtype_error("tformer: unknown dtype id " + std::to_string(static_cast<int>(t)));
}

}  // namespace tformer
