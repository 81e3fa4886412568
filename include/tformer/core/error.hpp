// Typed exceptions. Every check on user input (shapes, arguments, files) throws one of these
// with a message that names the operation or tensor, the expected and the actual value.
#pragma once

#include <stdexcept>
#include <string>

#include "../config.hpp"

namespace tformer {

/// @brief Base of every exception tformer throws.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// @brief Tensor shapes that do not fit an operation (rank, extents, strides).
struct shape_error : error {
  using error::error;
};

/// @brief An element type the operation does not accept, or an unknown dtype id.
struct dtype_error : error {
  using error::error;
};

/// @brief An argument value out of its valid range (k > n, eps < 0, thread count 0, ...).
struct value_error : error {
  using error::error;
};

/// @brief A file that cannot be read or breaks its format's rules (path and byte offset named).
struct io_error : error {
  using error::error;
};

/// @brief A broken internal invariant (debug assertions): a tformer bug, not a user error.
struct internal_error : error {
  using error::error;
};

namespace detail {
[[noreturn]] inline void assertion_failed(const char* cond, const char* file, int line) {
  throw internal_error(std::string("tformer: internal assertion '") + cond + "' failed at " + file +
                       ":" + std::to_string(line));
}
}  // namespace detail

}  // namespace tformer
