// Runtime shapes: rank 0..4, row-major, with the helpers that shape checks use in messages.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "error.hpp"

namespace tformer {

/// @brief Largest tensor rank.
inline constexpr int max_rank = 4;

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
