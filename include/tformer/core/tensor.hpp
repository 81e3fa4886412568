// tensor_view<T>: a non-owning, strided, row-major view of rank 0..4 (T may be const).
// tensor<T>: an owning, contiguous, 64-byte aligned tensor that hands out views.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "dtype.hpp"
#include "error.hpp"
#include "memory.hpp"
#include "shape.hpp"

namespace tformer {

/// @brief Non-owning view of a tensor with runtime extents and strides (in elements).
/// @tparam T element type; const T for a read-only view.
template <class T>
  requires element<std::remove_const_t<T>>
class tensor_view {
 public:
  using value_type = std::remove_const_t<T>;
  using index = std::int64_t;

  tensor_view() noexcept = default;

  /// @brief Contiguous row-major view of data with the given extents.
  tensor_view(T* data, const tformer::shape& s) noexcept : data_(data), rank_(s.rank()) {
    index stride = 1;  // a product of trailing extents: shape bounds it by INT64_MAX
    for (int i = rank_ - 1; i >= 0; --i) {
      ext_[u(i)] = s[i];
      str_[u(i)] = stride;
      stride *= s[i];
    }
  }

  /// @brief Strided view; strides are in elements, outermost first.
  tensor_view(T* data, const tformer::shape& s, const std::array<index, max_rank>& strides) noexcept
      : data_(data), str_(strides), rank_(s.rank()) {
    for (int i = 0; i < rank_; ++i) ext_[u(i)] = s[i];
  }

  /// @brief A mutable view converts to a read-only one.
  operator tensor_view<const value_type>() const noexcept
    requires(!std::is_const_v<T>)
  {
    return tensor_view<const value_type>(data_, shape(), str_);
  }

  T* data() const noexcept { return data_; }
  int rank() const noexcept { return rank_; }
  tformer::shape shape() const {
    tformer::shape s;
    switch (rank_) {
      case 0: s = {}; break;
      case 1: s = {ext_[0]}; break;
      case 2: s = {ext_[0], ext_[1]}; break;
      case 3: s = {ext_[0], ext_[1], ext_[2]}; break;
      default: s = {ext_[0], ext_[1], ext_[2], ext_[3]}; break;
    }
    return s;
  }
  /// @brief Extent of dimension i; negative i counts from the back.
  index dim(int i) const { return ext_[u(checked_dim(i))]; }
  /// @brief Stride of dimension i in elements; negative i counts from the back.
  index stride(int i) const { return str_[u(checked_dim(i))]; }
  index numel() const noexcept {
    index n = 1;
    for (int i = 0; i < rank_; ++i) n *= ext_[u(i)];
    return n;
  }
  bool empty() const noexcept { return numel() == 0; }

  /// @brief True when the elements are densely packed in row-major order.
  bool is_contiguous() const noexcept {
    index expect = 1;
    for (int i = rank_ - 1; i >= 0; --i) {
      if (ext_[u(i)] != 1 && str_[u(i)] != expect) return false;
      expect *= ext_[u(i)];
    }
    return true;
  }

  /// @brief Element access (bounds checked in debug builds only).
  template <class... I>
    requires(sizeof...(I) <= max_rank && (std::is_integral_v<I> && ...))
  T& operator()(I... i) const noexcept {
    TFORMER_ASSERT(static_cast<int>(sizeof...(I)) == rank_);
    const index idx[] = {static_cast<index>(i)..., 0};
    index off = 0;
    for (std::size_t d = 0; d < sizeof...(I); ++d) {
      TFORMER_ASSERT(idx[d] >= 0 && idx[d] < ext_[d]);
      off += idx[d] * str_[d];
    }
    return data_[off];
  }

  /// @brief The sub-view at index i of the leading dimension (rank drops by one).
  tensor_view operator[](index i) const {
    if (rank_ == 0) throw shape_error("tformer: cannot index a rank-0 view");
    if (i < 0 || i >= ext_[0])
      throw shape_error("tformer: index " + std::to_string(i) + " out of range for leading extent " +
                        std::to_string(ext_[0]) + " of shape " + shape().to_string());
    tensor_view v;
    v.data_ = data_ + i * str_[0];
    v.rank_ = rank_ - 1;
    for (int d = 1; d < rank_; ++d) {
      v.ext_[u(d - 1)] = ext_[u(d)];
      v.str_[u(d - 1)] = str_[u(d)];
    }
    return v;
  }

  /// @brief Elements [begin, end) of dimension dim (rank unchanged; may become strided).
  tensor_view slice(int dim, index begin, index end) const {
    const int d = checked_dim(dim);
    if (begin < 0 || end < begin || end > ext_[u(d)])
      throw shape_error("tformer: slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                        ") out of range for dimension " + std::to_string(dim) + " of shape " + shape().to_string());
    tensor_view v = *this;
    v.data_ = data_ + begin * str_[u(d)];
    v.ext_[u(d)] = end - begin;
    return v;
  }

  /// @brief The same elements under another shape; needs contiguous data and an equal count.
  tensor_view reshape(const tformer::shape& s) const {
    if (s.numel() != numel())
      throw shape_error("tformer: cannot reshape " + shape().to_string() + " (" + std::to_string(numel()) +
                        " elements) to " + s.to_string() + " (" + std::to_string(s.numel()) + " elements)");
    if (!is_contiguous())
      throw shape_error("tformer: reshape of a non-contiguous view of shape " + shape().to_string());
    return tensor_view(data_, s);
  }

  /// @brief Number of innermost rows: numel / dim(-1) (1 for rank 0).
  index rows() const noexcept {
    if (rank_ == 0) return 1;
    return ext_[u(rank_ - 1)] == 0 ? 0 : numel() / ext_[u(rank_ - 1)];
  }
  /// @brief Pointer to innermost row r (r in [0, rows())), for any leading strides.
  T* row(index r) const noexcept {
    index off = 0;
    for (int d = rank_ - 2; d >= 0; --d) {
      off += (r % ext_[u(d)]) * str_[u(d)];
      r /= ext_[u(d)];
    }
    return data_ + off;
  }

 private:
  template <class U>
    requires element<std::remove_const_t<U>>
  friend class tensor_view;
  static constexpr std::size_t u(int i) noexcept { return static_cast<std::size_t>(i); }
  int checked_dim(int i) const {
    const int j = i < 0 ? i + rank_ : i;
    if (j < 0 || j >= rank_)
      throw shape_error("tformer: dimension " + std::to_string(i) + " out of range for rank " + std::to_string(rank_));
    return j;
  }

  T* data_ = nullptr;
  std::array<index, max_rank> ext_{};  // extents, outermost first
  std::array<index, max_rank> str_{};  // strides in elements
  int rank_ = 0;
};

/// @brief Owning, contiguous, 64-byte aligned tensor.
/// @tparam T element type (float, f16, bf16, int8_t, uint8_t, int32_t).
template <element T>
class tensor {
 public:
  using value_type = T;
  using index = std::int64_t;

  tensor() = default;
  /// @brief Zero-initialized tensor of the given shape.
  explicit tensor(const tformer::shape& s) : tensor(s, T{}) {}
  /// @brief Tensor of the given shape filled with value; throws shape_error when its size in
  /// bytes (counting nonzero extents) passes INT64_MAX.
  tensor(const tformer::shape& s, T value)
      : shape_(checked(s)), data_(allocate_aligned<T>(static_cast<std::size_t>(s.numel()))) {
    std::fill_n(data_.get(), s.numel(), value);
  }
  /// @brief A contiguous copy of any view.
  static tensor copy_of(tensor_view<const T> v) {
    tensor t;
    t.shape_ = checked(v.shape());
    t.data_ = allocate_aligned<T>(static_cast<std::size_t>(v.numel()));
    if (v.rank() == 0) {
      if (v.data()) t.data_[0] = *v.data();
      return t;
    }
    const index cols = v.dim(-1);
    for (index r = 0; r < v.rows(); ++r) {
      const T* src = v.row(r);
      const index step = v.stride(-1);
      for (index c = 0; c < cols; ++c) t.data_[r * cols + c] = src[c * step];
    }
    return t;
  }

  tensor(const tensor& o) : tensor(copy_of(o.view())) {}
  tensor& operator=(const tensor& o) {
    if (this != &o) *this = copy_of(o.view());
    return *this;
  }
  tensor(tensor&&) noexcept = default;
  tensor& operator=(tensor&&) noexcept = default;

  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  const tformer::shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  index dim(int i) const { return shape_.dim(i); }
  index numel() const noexcept { return shape_.numel(); }
  static constexpr tformer::dtype dtype() noexcept { return dtype_of<T>; }

  tensor_view<T> view() noexcept { return tensor_view<T>(data_.get(), shape_); }
  tensor_view<const T> view() const noexcept { return tensor_view<const T>(data_.get(), shape_); }
  operator tensor_view<T>() noexcept { return view(); }
  operator tensor_view<const T>() const noexcept { return view(); }

  template <class... I>
  T& operator()(I... i) noexcept {
    return view()(i...);
  }
  template <class... I>
  const T& operator()(I... i) const noexcept {
    return view()(i...);
  }
  tensor_view<T> operator[](index i) { return view()[i]; }
  tensor_view<const T> operator[](index i) const { return view()[i]; }

  /// @brief Changes the shape in place; the element count must not change.
  void reshape(const tformer::shape& s) {
    view().reshape(s);  // validates
    shape_ = checked(s);
  }

 private:
  // s, once its size in bytes, sizeof(T) times the product of its nonzero extents, is known to
  // fit in int64_t (so byte offsets of every view fit too, even of an empty tensor).
  static tformer::shape checked(const tformer::shape& s) {
    std::array<index, max_rank> extents{};
    for (int i = 0; i < s.rank(); ++i) extents[static_cast<std::size_t>(i)] = s[i];
    index bytes = 0;
    const auto unit = static_cast<index>(sizeof(T));
    if (!detail::nonzero_extent_product(extents.data(), extents.data() + s.rank(), unit, bytes))
      throw shape_error("tformer: a tensor of shape " + s.to_string() + " of " +
                        std::string(tformer::name(dtype_of<T>)) + " would need more than INT64_MAX bytes");
    return s;
  }

  tformer::shape shape_;
  aligned_buffer<T> data_;
};

}  // namespace tformer
