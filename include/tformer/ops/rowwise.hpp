// Shared plumbing for ops that work row by row over the innermost dimension: shape checks with
// messages that name the op, and a parallel loop over rows. Rows are independent, so results
// do not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

namespace tformer::ops::detail {

/// Throws shape_error unless a and b have the same shape.
template <class A, class B>
void require_same_shape(const char* op, const char* na, const tensor_view<A>& a, const char* nb,
                        const tensor_view<B>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error(std::string("tformer::ops::") + op + ": " + na + " " + a.shape().to_string() + " and " + nb +
                      " " + b.shape().to_string() + " must have the same shape");
}

/// Throws shape_error unless v has rank >= 1 and unit stride along its innermost dimension.
template <class T>
void require_rows(const char* op, const char* name, const tensor_view<T>& v) {
  if (v.rank() < 1)
    throw shape_error(std::string("tformer::ops::") + op + ": " + name + " must have rank >= 1, got a scalar");
  if (v.dim(-1) > 1 && v.stride(-1) != 1)
    throw shape_error(std::string("tformer::ops::") + op + ": " + name + " " + v.shape().to_string() +
                      " must have a contiguous innermost dimension (stride " + std::to_string(v.stride(-1)) + ")");
}

/// Throws shape_error unless v is a contiguous vector of length n (a per-feature parameter).
template <class T>
void require_vector(const char* op, const char* name, const tensor_view<T>& v, std::int64_t n) {
  if (v.rank() != 1 || v.dim(0) != n)
    throw shape_error(std::string("tformer::ops::") + op + ": " + name + " must be [" + std::to_string(n) + "], got " +
                      v.shape().to_string());
  if (n > 1 && v.stride(0) != 1)
    throw shape_error(std::string("tformer::ops::") + op + ": " + name + " must be contiguous");
}

/// Calls body(r) for every innermost row r of a view with `rows` rows of `cols` elements, in
/// parallel when there is enough work.
template <class F>
void for_each_row(std::int64_t rows, std::int64_t cols, F&& body) {
  parallel_for(rows, std::forward<F>(body), cols);
}

}  // namespace tformer::ops::detail
