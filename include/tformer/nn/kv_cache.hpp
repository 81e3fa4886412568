// nn::kv_cache: the full key/value cache of one attention layer, the default attention state.
// Position p of sequence b is stored at slot p of [B, capacity, kv_heads, head_dim] buffers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../ops/gather.hpp"
#include "attention_config.hpp"
#include "state.hpp"

namespace tformer::nn {

namespace detail {
// Checks an append's arguments against a state of batch B, kv_heads H, head_dim D.
inline void check_append(const char* who, const tensor_view<const float>& k, const tensor_view<const float>& v,
                         const tensor_view<const std::int32_t>& counts, const tensor_view<const std::int32_t>& positions,
                         std::int64_t B, std::int64_t H, std::int64_t D) {
  auto fail = [&](const std::string& why) { throw shape_error(std::string("tformer::nn::") + who + ": " + why); };
  if (k.rank() != 4 || !(k.shape() == v.shape()) || k.dim(0) != B || k.dim(2) != H || k.dim(3) != D)
    fail("keys and values must both be [" + std::to_string(B) + ", n, " + std::to_string(H) + ", " + std::to_string(D) +
         "], got k " + k.shape().to_string() + ", v " + v.shape().to_string());
  if ((D > 1 && (k.stride(3) != 1 || v.stride(3) != 1)))
    fail("the head dimension of keys and values must be contiguous");
  for (const auto* t : {&counts, &positions})
    if (t->data() && (t->rank() != 1 || t->dim(0) != B))
      fail("counts and positions must be [" + std::to_string(B) + "], got " + t->shape().to_string());
  if (counts.data())
    for (std::int64_t b = 0; b < B; ++b)
      if (counts(b) < 0 || counts(b) > k.dim(1))
        throw value_error(std::string("tformer::nn::") + who + ": counts[" + std::to_string(b) + "] = " +
                          std::to_string(counts(b)) + " is outside [0, " + std::to_string(k.dim(1)) + "]");
}
// Checks that sequence b, holding positions [0, end), may store n positions from position p of a
// cache of capacity positions: no gap (p <= end) and room (p + n <= capacity).
inline void check_room(const char* who, std::int64_t b, std::int64_t p, std::int64_t n, std::int64_t end,
                       std::int64_t capacity) {
  if (p < 0 || p > end)
    throw value_error(std::string("tformer::nn::") + who + ": sequence " + std::to_string(b) + " continues at position " +
                      std::to_string(p) + " but holds positions [0, " + std::to_string(end) + ")");
  if (p + n > capacity)
    throw value_error(std::string("tformer::nn::") + who + ": sequence " + std::to_string(b) + " needs " +
                      std::to_string(p + n) + " cached positions but the KV cache holds " + std::to_string(capacity));
}
// Copies token i of sequence b of k/v [B, n, H, D] to the slot rows of dst k/v [B, slots, H, D].
inline void copy_token(const tensor_view<const float>& k, const tensor_view<const float>& v, std::int64_t b, std::int64_t i,
                       tensor_view<float> dk, tensor_view<float> dv, std::int64_t slot) {
  const std::int64_t H = k.dim(2), D = k.dim(3);
  for (std::int64_t h = 0; h < H; ++h) {
    std::copy_n(k.data() + b * k.stride(0) + i * k.stride(1) + h * k.stride(2), D,
                dk.data() + b * dk.stride(0) + slot * dk.stride(1) + h * dk.stride(2));
    std::copy_n(v.data() + b * v.stride(0) + i * v.stride(1) + h * v.stride(2), D,
                dv.data() + b * dv.stride(0) + slot * dv.stride(1) + h * dv.stride(2));
  }
}
}  // namespace detail

/// @brief Every key and value of up to capacity positions per sequence.
class kv_cache {
 public:
  kv_cache() = default;
  /// @brief An empty cache for batch sequences of up to capacity positions (c: a resolved config).
  kv_cache(std::int64_t batch, std::int64_t capacity, const attention_config& c)
      : k_(shape{batch, capacity, c.kv_heads, c.head_dim}), v_(k_.shape()), end_(shape{batch}) {}

  std::int64_t batch() const noexcept { return end_.rank() == 1 ? end_.dim(0) : 0; }
  std::int64_t capacity() const noexcept { return k_.rank() == 4 ? k_.dim(1) : 0; }
  std::int64_t max_append() const noexcept { return capacity(); }
  std::int64_t bytes() const noexcept {
    return static_cast<std::int64_t>(sizeof(float)) * (k_.numel() + v_.numel()) + 4 * end_.numel();
  }
  /// @brief Positions held by sequence b (one past the last).
  std::int64_t end(std::int64_t b) const { return end_(b); }

  /// @brief Stores this call's keys and values (see nn/state.hpp).
  void append(tensor_view<const float> k, tensor_view<const float> v, tensor_view<const std::int32_t> counts = {},
              tensor_view<const std::int32_t> positions = {}) {
    const std::int64_t B = batch();
    detail::check_append("kv_cache", k, v, counts, positions, B, k_.dim(2), k_.dim(3));
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t p = positions.data() ? positions(b) : end_(b), n = counts.data() ? counts(b) : k.dim(1);
      detail::check_room("kv_cache", b, p, n, end_(b), capacity());
      for (std::int64_t i = 0; i < n; ++i) detail::copy_token(k, v, b, i, k_, v_, p + i);
      end_(b) = static_cast<std::int32_t>(p + n);
    }
  }

  /// @brief Positions [0, end[b]) at slot = position.
  kv_view keys() const noexcept { return {k_.view(), v_.view(), {}, end_.view(), 0}; }

  /// @brief Keeps rows[i] of the batch as row i.
  void select(std::span<const std::int64_t> rows) {
    std::int64_t used = 0;
    for (std::int64_t b = 0; b < batch(); ++b) used = std::max<std::int64_t>(used, end_(b));
    ops::select_rows(k_, rows, used);
    ops::select_rows(v_, rows, used);
    ops::select_rows(end_, rows);
  }

 private:
  tensor<float> k_, v_;         // [B, capacity, kv_heads, head_dim]
  tensor<std::int32_t> end_;    // [B] positions held
};

static_assert(attention_state<kv_cache>);

}  // namespace tformer::nn
