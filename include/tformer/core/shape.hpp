// Runtime shapes: rank 0..4, row-major, with the helpers that shape checks use in messages.
//
// A shape never holds more than INT64_MAX elements counting only its nonzero extents, so no
// element count, stride or sub-view count derived from it can overflow int64_t (a zero extent
// does not excuse [3, 2^62, 0]: a running product passes INT64_MAX before reaching the zero).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "error.hpp"

namespace tformer {

/// @brief Largest tensor rank.
inline constexpr int max_rank = 4;

namespace detail {
/// @brief out = unit * (product of the nonzero extents in [first, last)), or false when that
/// passes INT64_MAX. Every step is checked, so no intermediate product overflows.
/// Extents must be >= 0 and unit >= 1.
inline constexpr bool nonzero_extent_product(const std::int64_t* first, const std::int64_t* last, std::int64_t unit,
                                             std::int64_t& out) noexcept {
  out = unit;
  for (; first != last; ++first)
    if (*first != 0 && __builtin_mul_overflow(out, *first, &out)) return false;
  return true;
}
}  // namespace detail

/// @brief Extents of a tensor, outermost first. Sizes are runtime data.
class shape {
 public:
  constexpr shape() noexcept = default;
  shape(std::initializer_list<std::int64_t> extents) {
    if (extents.size() > static_cast<std::size_t>(max_rank))
      throw shape_error("tformer: rank " + std::to_string(extents.size()) + " exceeds the maximum rank 4");
    for (std::int64_t e : extents) {
      if (e < 0) throw shape_error("tformer: negative extent " + std::to_string(e) + " in a shape");
      dims_[static_cast<std::size_t>(rank_++)] = e;
    }
    std::int64_t count = 0;
    if (!detail::nonzero_extent_product(dims_.data(), dims_.data() + rank_, 1, count))
      throw shape_error("tformer: shape " + to_string() +
                        " has too many elements: the product of its nonzero extents overflows INT64_MAX");
  }
  constexpr int rank() const noexcept { return rank_; }
  constexpr std::int64_t operator[](int i) const noexcept { return dims_[static_cast<std::size_t>(i)]; }
  /// @brief Extent i; negative i counts from the back (-1 is the innermost).
  std::int64_t dim(int i) const {
    const int j = i < 0 ? i + rank_ : i;
    if (j < 0 || j >= rank_)
      throw shape_error("tformer: dimension " + std::to_string(i) + " out of range for shape " + to_string());
    return dims_[static_cast<std::size_t>(j)];
  }
  /// @brief Element count; cannot overflow (the constructor bounds the nonzero extents' product).
  constexpr std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  /// @brief "[2, 3, 4]".
  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return s + "]";
  }
  friend constexpr bool operator==(const shape& a, const shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }

 private:
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace tformer
