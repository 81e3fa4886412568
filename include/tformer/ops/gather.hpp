// gather_rows: out[i] = in[rows[i]] along the leading dimension (rows may repeat and may drop:
// beams that continue, sequences that finished); select_rows: the same in place, for the caches
// that beam search reorders at every step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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

/// @brief t = gather_rows(t, rows, used), in t's own storage when the batch keeps its size: only
/// the rows i with rows[i] != i are written, and only their first `used` entries of dimension 1
/// (rank >= 2, used >= 0; the rest of such a row keeps what it held: callers read the filled part
/// alone). A row that is both overwritten and read by another row is copied aside first. A batch
/// that changes size is gathered into a new tensor. Throws as gather_rows does, before any change.
template <element T>
void select_rows(tensor<T>& t, std::span<const std::int64_t> rows, std::int64_t used = -1) {
  const std::int64_t b = t.rank() >= 1 ? t.dim(0) : 0;
  if (t.rank() < 1 || static_cast<std::int64_t>(rows.size()) != b) {
    t = gather_rows<T>(t, rows, used);
    return;
  }
  for (const std::int64_t r : rows)
    if (r < 0 || r >= b)
      throw value_error("tformer::ops::select_rows: row " + std::to_string(r) + " is outside a batch of " + std::to_string(b));
  const std::int64_t row = b > 0 ? t.numel() / b : 0;
  const std::int64_t per_pos = t.rank() >= 2 && t.dim(1) > 0 ? row / t.dim(1) : row;
  const std::int64_t copy = used >= 0 && t.rank() >= 2 ? std::min(used, t.dim(1)) * per_pos : row;
  auto moves = [&](std::int64_t i) { return rows[static_cast<std::size_t>(i)] != i; };
  // Sources that a moving row overwrites: copied aside before any write.
  std::vector<std::int64_t> slot(static_cast<std::size_t>(b), -1);  // [b] index into aside, or -1
  std::int64_t stashed = 0;
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    if (moves(i) && moves(r) && slot[static_cast<std::size_t>(r)] < 0) slot[static_cast<std::size_t>(r)] = stashed++;
  }
  std::vector<T> aside(static_cast<std::size_t>(stashed * copy));  // [stashed, copy]
  for (std::int64_t r = 0; r < b; ++r)
    if (const std::int64_t k = slot[static_cast<std::size_t>(r)]; k >= 0)
      std::copy_n(t.data() + r * row, copy, aside.data() + k * copy);
  for (std::int64_t i = 0; i < b; ++i) {
    if (!moves(i)) continue;
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    const std::int64_t k = slot[static_cast<std::size_t>(r)];
    std::copy_n(k >= 0 ? aside.data() + k * copy : t.data() + r * row, copy, t.data() + i * row);
  }
}

}  // namespace tformer::ops
