// quant::bf16: weights stored as bfloat16 (half the bytes of f32; products widen tiles to float,
// exactly, so a product equals the f32 product on the widened weights).
#pragma once

#include <cstdint>

#include "../core/half.hpp"
#include "format.hpp"

namespace tformer::quant {

/// @brief bfloat16 weights, rounded to nearest even from float (subnormals kept).
struct bf16 : converted_rows<tformer::bf16> {
  using element = tformer::bf16;
  static constexpr const char* name = "bf16";
  static constexpr const char* file_dtype = "BF16";
  static constexpr std::uint32_t ggml_type = 30;  // GGML_TYPE_BF16
  static constexpr std::int64_t block_size = 1;
  static constexpr std::int64_t block_bytes = 2;
  static constexpr double bits_per_weight = 16.0;
};

}  // namespace tformer::quant
