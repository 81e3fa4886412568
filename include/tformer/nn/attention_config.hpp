// The runtime settings of an attention block, and the description of one call (which tokens are
// real, where they sit, which scratch memory to use).
#pragma once

#include <cstdint>
#include <optional>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"

namespace tformer::nn {

/// @brief Sizes and switches of an attention block (runtime data).
struct attention_config {
  std::int64_t d_model = 0;
  std::int64_t heads = 0;     ///< query heads
  std::int64_t kv_heads = 0;  ///< key/value heads; 0 means heads (MHA); 1 is MQA
  std::int64_t head_dim = 0;  ///< 0 means d_model / heads
  bool qkv_bias = true;
  bool out_bias = true;
  std::optional<float> scale;  ///< logit scale; empty means 1/sqrt(head_dim); 1.0f for T5
  float qk_norm_eps = 1e-6f;   ///< eps of the QK-norm, when the block has one
  std::int64_t window = 0;     ///< sliding window of this block (a query sees the last `window` positions); 0: none
};

/// @brief One call of a block on [B, S, ...]: sequence b has lengths[b] real tokens (padding after
/// them), the first at absolute position positions[b] (for rotary positions, masks, biases and
/// the place in a state). scratch supplies temporaries (the model's state owns one); without it
/// they come from the heap.
struct sequence_info {
  tensor_view<const std::int32_t> lengths;    ///< [B]; empty: every sequence has S tokens
  tensor_view<const std::int32_t> positions;  ///< [B]; empty: all start at position 0
  workspace* scratch = nullptr;
};

}  // namespace tformer::nn
