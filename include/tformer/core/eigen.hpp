// Eigen maps of tensor views, so Eigen expressions and products work on tformer data without copies.
#pragma once

#include <type_traits>

#include <Eigen/Core>

#include "error.hpp"
#include "tensor.hpp"

namespace tformer {

/// @brief Row-major Eigen matrix type of T.
template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// @brief Eigen map of a 2-D view with unit inner stride (the row stride may be larger).
template <class T>
using matrix_map = Eigen::Map<std::conditional_t<std::is_const_v<T>, const row_matrix<std::remove_const_t<T>>,
                                                 row_matrix<std::remove_const_t<T>>>,
                              Eigen::Unaligned, Eigen::OuterStride<>>;

/// @brief Maps a rank-2 view whose rows are contiguous (dim(-1) stride 1) as a row-major matrix.
template <class T>
matrix_map<T> as_matrix(tensor_view<T> v) {
  if (v.rank() != 2) throw shape_error("tformer::as_matrix: expected a rank-2 view, got shape " + v.shape().to_string());
  if (v.stride(1) != 1 && v.dim(1) > 1)
    throw shape_error("tformer::as_matrix: rows of shape " + v.shape().to_string() + " are not contiguous (inner stride " +
                      std::to_string(v.stride(1)) + ")");
  const Eigen::Index outer = v.dim(0) > 1 ? v.stride(0) : v.dim(1);
  return matrix_map<T>(v.data(), v.dim(0), v.dim(1), Eigen::OuterStride<>(outer));
}

/// @brief Maps an owning tensor of rank 2.
template <element T>
matrix_map<T> as_matrix(tensor<T>& t) {
  return as_matrix(t.view());
}
template <element T>
matrix_map<const T> as_matrix(const tensor<T>& t) {
  return as_matrix(t.view());
}

}  // namespace tformer
