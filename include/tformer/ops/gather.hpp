// gather_rows: out[i] = in[rows[i]] along the leading dimension (rows may repeat and may drop:
// beams that continue, sequences that finished).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tformer::ops {

/// @brief A new tensor whose row i is in's row rows[i] (rank >= 1). When used >= 0 and the tensor
/// has rank >= 2, only the first `used` entries of dimension 1 are copied (the filled part of a
/// cache [B, capacity, ...]); the rest of each row is zero.
template <element T>
tensor<T> gather_rows(tensor_view<const T> in, std::span<const std::int64_t> rows, std::int64_t used = -1) {
  if (in.rank() < 1) throw shape_error("tformer::ops::gather_rows: expected rank >= 1, got a rank-0 tensor");
  if (!in.is_contiguous()) throw shape_error("tformer::ops::gather_rows: the input must be contiguous");
  const shape s = in.shape();
  const auto b = static_cast<std::int64_t>(rows.size());
  tensor<T> out;
  switch (s.rank()) {
    case 1: out = tensor<T>(shape{b}); break;
    case 2: out = tensor<T>(shape{b, s[1]}); break;
    case 3: out = tensor<T>(shape{b, s[1], s[2]}); break;
    default: out = tensor<T>(shape{b, s[1], s[2], s[3]}); break;
  }
  const std::int64_t row = s[0] > 0 ? in.numel() / s[0] : 0;
  const std::int64_t per_pos = s.rank() >= 2 && s[1] > 0 ? row / s[1] : row;
  const std::int64_t copy = used >= 0 && s.rank() >= 2 ? std::min(used, s[1]) * per_pos : row;
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    if (r < 0 || r >= s[0])
      throw value_error("tformer::ops::gather_rows: row " + std::to_string(r) + " is outside a batch of " + std::to_string(s[0]));
    std::copy_n(in.data() + r * row, copy, out.data() + i * row);
  }
  return out;
}

}  // namespace tformer::ops
