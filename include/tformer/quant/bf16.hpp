// quant::bf16: weights stored as bfloat16 (half the bytes of f32). Products widen the weights to
// float exactly: many activation rows widen tiles into the float GEMM, a few (decode) widen in
// registers (quant/element_dot.hpp); either equals the f32 product on the widened weights up to
// the order of the float sums.
#pragma once

#include <cstdint>

#include "../core/half.hpp"
#include "element_dot.hpp"
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

  /// @brief Decode product (ops::linear, up to 8 activation rows): each weight widened to float
  /// in registers, sums in float (quant/element_dot.hpp).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::element_dot::product<tformer::bf16>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

}  // namespace tformer::quant
