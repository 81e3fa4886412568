// quant::f32: weights stored as float (the oracle every other format is measured against).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "format.hpp"

namespace tformer::quant {

/// @brief 32-bit float weights: products read them in place.
struct f32 {
  using element = float;
  static constexpr const char* name = "f32";
  static constexpr const char* file_dtype = "F32";
  static constexpr std::uint32_t ggml_type = 0;  // GGML_TYPE_F32
  static constexpr std::int64_t block_size = 1;
  static constexpr std::int64_t block_bytes = 4;
  static constexpr double bits_per_weight = 32.0;
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) noexcept {
    if (n > 0) std::memcpy(blocks, x, static_cast<std::size_t>(n) * sizeof(float));
  }
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) noexcept {
    if (n > 0) std::memcpy(y, blocks, static_cast<std::size_t>(n) * sizeof(float));
  }
};

}  // namespace tformer::quant
