// nn::sliding_window_cache: the attention state of a sliding-window layer (Mistral, the local
// layers of Gemma 2): a ring buffer that holds only the positions a query can still see, so its
// memory is O(window) however long the sequence grows.
//
//   struct local { using rope = nn::rotary; using state = nn::sliding_window_cache; };
//   nn::attention<local>                       with attention_config::window = W
//
// A query at position q sees keys q - W + 1 .. q. The ring has W - 1 + chunk slots; position p
// lives at slot p % slots. An append of up to `chunk` tokens keeps every key its queries need
// (the block cuts longer calls into chunks), and the kernel reads the ring as it is: keys() says
// which positions are present and that slots wrap (ops::attention_mask::ring).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../ops/gather.hpp"
#include "attention_config.hpp"
#include "kv_cache.hpp"
#include "state.hpp"

namespace tformer::nn {

/// @brief A ring buffer of the last window - 1 + chunk keys and values of each sequence.
class sliding_window_cache {
 public:
  /// @brief Tokens one append takes at most (longer calls are processed in chunks of this many).
  static constexpr std::int64_t default_chunk = 64;

  sliding_window_cache() = default;
  /// @brief An empty ring for batch sequences (c: a resolved config with c.window > 0). capacity
  /// bounds the positions stored at once: a sequence shorter than the window needs no more.
  sliding_window_cache(std::int64_t batch, std::int64_t capacity, const attention_config& c) : window_(c.window) {
    if (c.window < 1)
      throw value_error("tformer::nn::sliding_window_cache: the attention block needs a window (attention_config::window "
                        ">= 1), got " + std::to_string(c.window));
    if (capacity < 1)
      throw value_error("tformer::nn::sliding_window_cache: capacity must be >= 1, got " + std::to_string(capacity));
    const std::int64_t slots = std::min(capacity, window_ - 1 + default_chunk);
    k_ = tensor<float>(shape{batch, slots, c.kv_heads, c.head_dim});
    v_ = tensor<float>(k_.shape());
    begin_ = tensor<std::int32_t>(shape{batch});
    end_ = tensor<std::int32_t>(shape{batch});
  }

  std::int64_t batch() const noexcept { return end_.rank() == 1 ? end_.dim(0) : 0; }
  /// @brief Slots of the ring per sequence.
  std::int64_t slots() const noexcept { return k_.rank() == 4 ? k_.dim(1) : 0; }
  std::int64_t window() const noexcept { return window_; }
  /// @brief Tokens one append may take: slots - (window - 1), whose queries all find their window
  /// in the ring; a ring smaller than the window (capacity < window) holds whole sequences of up to
  /// `slots` positions, like a full cache.
  std::int64_t max_append() const noexcept { return slots() > window_ - 1 ? slots() - (window_ - 1) : slots(); }
  std::int64_t bytes() const noexcept {
    return static_cast<std::int64_t>(sizeof(float)) * (k_.numel() + v_.numel()) + 4 * (begin_.numel() + end_.numel());
  }

  /// @brief Stores this call's keys and values (see nn/state.hpp). A sequence may continue at its
  /// end or go back (rewrite) as long as the window of its first new token is still held.
  void append(tensor_view<const float> k, tensor_view<const float> v, tensor_view<const std::int32_t> counts = {},
              tensor_view<const std::int32_t> positions = {}) {
    const std::int64_t B = batch(), S = slots();
    detail::check_append("sliding_window_cache", k, v, counts, positions, B, k_.dim(2), k_.dim(3));
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t n = counts.data() ? counts(b) : k.dim(1);
      if (n == 0) continue;
      const std::int64_t p = positions.data() ? positions(b) : end_(b);
      const std::int64_t first_needed = std::max<std::int64_t>(0, p - window_ + 1);  // oldest key the first query sees
      if (p < 0 || p > end_(b) || first_needed < begin_(b))
        throw value_error("tformer::nn::sliding_window_cache: sequence " + std::to_string(b) + " continues at position " +
                          std::to_string(p) + " but holds positions [" + std::to_string(begin_(b)) + ", " +
                          std::to_string(end_(b)) + ")");
      if (p + n - first_needed > S)
        throw value_error("tformer::nn::sliding_window_cache: " + std::to_string(n) + " tokens at position " +
                          std::to_string(p) + " need positions [" + std::to_string(first_needed) + ", " +
                          std::to_string(p + n) + ") but the ring holds " + std::to_string(S) + " (window " +
                          std::to_string(window_) + ")");
      for (std::int64_t i = 0; i < n; ++i) detail::copy_token(k, v, b, i, k_, v_, (p + i) % S);
      end_(b) = static_cast<std::int32_t>(p + n);
      begin_(b) = static_cast<std::int32_t>(std::max<std::int64_t>({begin_(b), std::int64_t{0}, p + n - S}));
    }
  }

  /// @brief Positions [begin[b], end[b]) at slot = position % slots.
  kv_view keys() const noexcept { return {k_.view(), v_.view(), begin_.view(), end_.view(), slots()}; }

  /// @brief Keeps rows[i] of the batch as row i.
  void select(std::span<const std::int64_t> rows) {
    ops::select_rows(k_, rows);
    ops::select_rows(v_, rows);
    ops::select_rows(begin_, rows);
    ops::select_rows(end_, rows);
  }

 private:
  std::int64_t window_ = 0;
  tensor<float> k_, v_;              // [B, slots, kv_heads, head_dim]: position p at slot p % slots
  tensor<std::int32_t> begin_, end_; // [B] positions held: [begin, end)
};

static_assert(attention_state<sliding_window_cache>);

}  // namespace tformer::nn
