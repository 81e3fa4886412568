// The plumbing that ggml's 4- and 5-bit block formats (q4_0, q4_1, q5_0, q5_1, iq4_nl) share: a
// row is quantized block by block, the fused product runs with q8_activations' int8 activations
// (q4_1 and q5_1 add their block sums, and declare their own activation_bytes and
// prepare_activations), and the products forward to the kernels' ggml_dot paths. Each format's
// struct derives from ggml_block_format and names (and documents) the members it takes from it.
// Internal: include a format header (q4_0.hpp, q5_0.hpp, ...).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "q8_activations.hpp"

namespace tformer::quant::detail {

/// @brief The members of a ggml block format that only forward to its kernels: BlockBytes bytes per
/// block of q8_activations::block weights, QuantizeBlock(x, blk) quantizing one block, Dot and
/// FloatDot the kernels' ggml_dot::dot and ggml_dot::float_dot.
template <std::int64_t BlockBytes, auto QuantizeBlock, class Dot, class FloatDot>
struct ggml_block_format {
  /// @brief x [n] -> n / 32 blocks, one QuantizeBlock each; n % 32 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    constexpr std::int64_t block = q8_activations::block;
    TFORMER_ASSERT(n % block == 0);
    for (std::int64_t b = 0; b < n / block; ++b) QuantizeBlock(x + b * block, blocks + b * BlockBytes);
  }
  /// @brief Scratch bytes for m rows of k activations (q8_activations::activations).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept { return q8_activations::bytes(m, k); }
  /// @brief x [m, k] (row stride ldx) -> acts: int8 per block of 32 as ggml's Q8_0. k % 32 == 0.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    q8_activations::prepare(x, ldx, m, k, acts);
  }
  /// @brief Dot::best: the fused product's best path compiled in (best_path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    Dot::best(acts, m, k, w, row_bytes, n, y, ldy);
  }
  /// @brief FloatDot::best: the float-activation product's best path compiled in (best_float_path).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    FloatDot::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

}  // namespace tformer::quant::detail
