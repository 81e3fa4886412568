// quant::f16: weights stored as IEEE binary16 (the dtype of many released checkpoints; products
// widen tiles to float exactly).
#pragma once

#include <cstdint>

#include "../core/half.hpp"
#include "format.hpp"

namespace tformer::quant {

/// @brief binary16 weights, rounded to nearest even from float (overflow to infinity, as IEEE).
struct f16 : converted_rows<tformer::f16> {
  using element = tformer::f16;
  static constexpr const char* name = "f16";
  static constexpr const char* file_dtype = "F16";
  static constexpr std::uint32_t ggml_type = 1;  // GGML_TYPE_F16
  static constexpr std::int64_t block_size = 1;
  static constexpr std::int64_t block_bytes = 2;
  static constexpr double bits_per_weight = 16.0;
};

}  // namespace tformer::quant
