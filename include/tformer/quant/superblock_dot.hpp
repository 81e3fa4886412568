// The loops of the float-activation products of ggml's super-block formats (tq2_0, iq4_xs, q2_k,
// q3_k: 256 weights a block), written once: y[i, j] = sum_t x[i, t] w[j, t] for up to 8 activation
// rows at a time, the weights of each super-block dequantized in registers exactly as the
// format's dequantize_row makes them and never written to memory. What differs per format is a
// block policy (see `block_policy` below) that decodes one super-block, 8 or 16 weights at a time;
// the loops are ggml_dot::float_loops (AVX-512, AVX2 + FMA, and a scalar reference that defines
// the result). Internal: include a format header (tq2_0.hpp, ...).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "ggml_dot.hpp"  // float_loops, the path macros and names

namespace tformer::quant::detail::superblock_dot {

inline constexpr std::int64_t block = 256;  // weights per super-block
using ggml_dot::best_float_path;

/// @brief A super-block of a ggml format, as the float product sees it: a ggml_dot::float_decoder
/// of 256 weights (bytes, dequantize, decode_avx2, decode_avx512).
template <class B>
concept block_policy = ggml_dot::float_decoder<B>;

/// @brief y[i * ldy + j] = sum_t x[i * ldx + t] w_j[t] for i < m, j < n: x [m, k] floats (row
/// stride ldx), k % 256 == 0; w -> n packed rows of row_bytes each (ggml_dot::float_loops' paths).
template <block_policy B>
using float_dot = ggml_dot::float_loops<block, B>;

/// @brief The members of a super-block format that only forward: QuantizeBlock(x, blk) quantizes one
/// super-block of 256 floats into B::bytes bytes. Each format's struct derives from it and names
/// (and documents) the members it takes.
template <block_policy B, auto QuantizeBlock>
struct format_base {
  /// @brief x [n] -> n / 256 super-blocks, one QuantizeBlock each; n % 256 == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    TFORMER_ASSERT(n % block == 0);
    for (std::int64_t b = 0; b < n / block; ++b) QuantizeBlock(x + b * block, blocks + b * B::bytes);
  }
  /// @brief n / 256 super-blocks -> y [n], each as B::dequantize makes it; n % 256 == 0.
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    TFORMER_ASSERT(n % block == 0);
    for (std::int64_t b = 0; b < n / block; ++b) B::dequantize(blocks + b * B::bytes, y + b * block);
  }
  /// @brief float_dot<B>::best: the float-activation product's best path (best_float_path).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    float_dot<B>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

}  // namespace tformer::quant::detail::superblock_dot
