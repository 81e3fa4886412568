// quant::f16: weights stored as IEEE binary16 (the dtype of many released checkpoints). Products
// widen the weights to float exactly, as quant::bf16's do (tiles into the float GEMM; in
// registers for decode, quant/element_dot.hpp).
#pragma once

#include <cstdint>

#include "../core/half.hpp"
#include "element_dot.hpp"
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

  /// @brief Decode product (ops::linear, up to 8 activation rows): each weight widened to float
  /// in registers, sums in float (quant/element_dot.hpp).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::element_dot::product<tformer::f16>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

}  // namespace tformer::quant
