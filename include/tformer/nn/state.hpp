// Per-layer state: what an attention block keeps between calls of an incremental decode (the
// keys and values of the tokens seen so far, or any summary of them). An attention policy names
// its state type (attention spec member `state`); the model's state holds one per layer and only
// forwards these operations to it:
//
//   S(batch, capacity, config)        an empty state for batch sequences of up to capacity tokens
//   append(k, v, counts, positions)   stores this call's keys/values [B, n, kv_heads, head_dim]:
//                                     counts[b] real tokens of sequence b, the first at absolute
//                                     position positions[b] (empty views: n tokens each, continuing
//                                     where each sequence ended)
//   keys()                            what the attention kernel reads (kv_view: float tensors, or
//                                     a reader that hands out tiles of rows as floats)
//   max_append()                      most tokens one append takes (longer calls are cut into
//                                     chunks by the block)
//   select(rows)                      keeps row rows[i] as row i (beams; finished sequences leave)
//   bytes()                           memory held
//
// Positions (what rotary, masks and biases see) and slots (where a key is stored) are separate:
// kv_view says which positions are present and how they map to slots.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>

#include "../core/tensor.hpp"
#include "attention_config.hpp"

namespace tformer::ops {
class kv_reader;  // ops/attention.hpp
}  // namespace tformer::ops

namespace tformer::nn {

/// @brief Keys and values as the attention kernel reads them: sequence b holds positions
/// [begin[b], end[b]) at slot = position (ring == 0) or position % ring. A state that stores them
/// in another form (nn::quantized_kv_cache) gives a reader, and k and v give only the shapes.
struct kv_view {
  tensor_view<const float> k, v;          ///< [B, slots, kv_heads, head_dim]
  tensor_view<const std::int32_t> begin;  ///< [B]; empty: 0
  tensor_view<const std::int32_t> end;    ///< [B]
  std::int64_t ring = 0;
  const ops::kv_reader* reader = nullptr;  ///< when set: the rows of k and v, tile by tile, as floats
};

/// @brief A per-layer attention state (see the file comment).
template <class S>
concept attention_state = std::movable<S> && std::constructible_from<S, std::int64_t, std::int64_t, const attention_config&> &&
    requires(S& s, const S& cs, tensor_view<const float> kv, tensor_view<const std::int32_t> ints,
             std::span<const std::int64_t> rows) {
      { cs.batch() } -> std::convertible_to<std::int64_t>;
      { cs.max_append() } -> std::convertible_to<std::int64_t>;
      { cs.bytes() } -> std::convertible_to<std::int64_t>;
      s.append(kv, kv, ints, ints);
      { cs.keys() } -> std::same_as<kv_view>;
      s.select(rows);
    };

}  // namespace tformer::nn
