// quant::matrix<F>: an owning [rows, cols] weight matrix packed in format F (PyTorch's [out, in]
// layout for linear layers, [vocab, d] for embedding tables). Row r is row_bytes() bytes at
// r * row_bytes() of one 64-byte aligned buffer: the layout of a ggml / GGUF tensor, so native
// bytes from a file are copied in as they are.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "../core/error.hpp"
#include "../core/memory.hpp"
#include "../core/parallel.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "format.hpp"

namespace tformer::quant {

/// @brief A [rows, cols] matrix of weights stored in format F.
/// @tparam F the weight format (quant::f32, quant::bf16, quant::q8_0, ...).
template <weight_format F>
class matrix {
 public:
  using format = F;
  using index = std::int64_t;

  matrix() = default;
  /// @brief A matrix of zero bytes (zero weights in every format tformer ships); cols must be a
  /// multiple of F::block_size.
  matrix(index rows, index cols) : shape_{rows, cols} {
    if (cols % F::block_size != 0)
      throw shape_error(std::string("tformer::quant::matrix: ") + F::name + " stores rows in blocks of " +
                        std::to_string(F::block_size) + " weights, but a row has " + std::to_string(cols));
    const index rb = quant::row_bytes<F>(cols);
    if (rows > 0 && rb > INT64_MAX / rows)
      throw shape_error(std::string("tformer::quant::matrix: ") + shape_.to_string() + " in " + F::name +
                        " needs more than 2^63 bytes");
    bytes_ = static_cast<std::size_t>(rows * rb);
    data_ = allocate_aligned<std::byte>(bytes_);
    if (bytes_ > 0) std::memset(data_.get(), 0, bytes_);
  }
  /// @brief The matrix of w [rows, cols] quantized to F.
  static matrix quantize(tensor_view<const float> w) {
    if (w.rank() != 2) throw shape_error("tformer::quant::matrix: expected a rank-2 tensor, got " + w.shape().to_string());
    matrix m(w.dim(0), w.dim(1));
    m.quantize_from(w);
    return m;
  }

  matrix(const matrix& o) : matrix(o.rows(), o.cols()) {
    if (bytes_ > 0) std::memcpy(data_.get(), o.data_.get(), bytes_);
    if (o.shape_.rank() == 0) shape_ = {};
  }
  matrix& operator=(const matrix& o) {
    if (this != &o) *this = matrix(o);
    return *this;
  }
  matrix(matrix&&) noexcept = default;
  matrix& operator=(matrix&&) noexcept = default;

  index rows() const noexcept { return shape_.rank() == 2 ? shape_[0] : 0; }
  index cols() const noexcept { return shape_.rank() == 2 ? shape_[1] : 0; }
  /// @brief [rows, cols] (rank 0 for a default-constructed matrix), as a tensor's shape.
  const tformer::shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  index dim(int i) const { return shape_.dim(i); }
  /// @brief Number of weights (not bytes).
  index numel() const noexcept { return shape_.numel(); }
  /// @brief Bytes of one packed row.
  index row_bytes() const noexcept { return quant::row_bytes<F>(cols()); }
  /// @brief Bytes of the whole matrix.
  std::size_t size_bytes() const noexcept { return bytes_; }

  std::byte* data() noexcept { return data_.get(); }
  const std::byte* data() const noexcept { return data_.get(); }
  std::byte* row(index r) noexcept { return data_.get() + r * row_bytes(); }
  const std::byte* row(index r) const noexcept { return data_.get() + r * row_bytes(); }

  /// @brief Quantizes w [rows, cols] (rows contiguous) into this matrix, row by row.
  void quantize_from(tensor_view<const float> w) {
    if (!(w.shape() == shape_))
      throw shape_error(std::string("tformer::quant::matrix: cannot quantize ") + w.shape().to_string() + " into a " +
                        shape_.to_string() + " " + F::name + " matrix");
    if (cols() > 1 && w.stride(1) != 1) throw shape_error("tformer::quant::matrix: rows to quantize must be contiguous");
    const index k = cols();
    parallel_for(rows(), [&](index r) { F::quantize_row(w.row(r), row(r), k); }, k * 4);
  }

  /// @brief Rows [r0, r0 + n) as floats into out [n, cols] (row stride cols).
  void dequantize(index r0, index n, float* out) const {
    for (index r = 0; r < n; ++r) F::dequantize_row(row(r0 + r), out + r * cols(), cols());
  }

  /// @brief The whole matrix as floats [rows, cols].
  tensor<float> to_float() const {
    tensor<float> t(shape_.rank() == 2 ? shape_ : tformer::shape{0, 0});
    parallel_for(rows(), [&](index r) { F::dequantize_row(row(r), t.data() + r * cols(), cols()); }, cols() * 2);
    return t;
  }

  /// @brief The weights as a [rows, cols] tensor view (formats that store plain elements).
  template <class G = F>
    requires element_format<G>
  tensor_view<const typename G::element> view() const {
    return tensor_view<const typename G::element>(reinterpret_cast<const typename G::element*>(data_.get()), shape_);
  }
  template <class G = F>
    requires element_format<G>
  tensor_view<typename G::element> view() {
    return tensor_view<typename G::element>(reinterpret_cast<typename G::element*>(data_.get()), shape_);
  }

 private:
  tformer::shape shape_;
  std::size_t bytes_ = 0;
  aligned_buffer<std::byte> data_;
};

/// @brief True for quant::matrix<F> of any format (parameter visitors tell them from tensors).
template <class T>
inline constexpr bool is_matrix = false;
template <class F>
inline constexpr bool is_matrix<matrix<F>> = true;

}  // namespace tformer::quant
