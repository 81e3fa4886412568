// quant::fallback<Primary, Secondary>: Primary for rows that are whole Primary blocks, Secondary
// for the others, as llama.cpp's quantizer stores a tensor whose rows do not divide into a
// 256-weight super-block (llama-quant.cpp's tensor_type_fallback): a "Q4_K" SmolLM2-135M holds its
// 576-wide rows (q, k, v, gate, up, and o) in Q5_0 and only ffn_down's 1536-wide rows in Q4_K.
//
// The choice is made per matrix from its row length, so a matrix's rows are all in one of the two
// formats: row_bytes_of(cols) and ggml_type_of(cols) say which, and quantize_row, dequantize_row
// and the products (which all receive the row length) dispatch on it. A GGUF tensor loads as it is
// when its type is the one for its row length (a llama.cpp "Q4_K" file: Q5_0 tensors of 576
// columns, Q4_K tensors of 1536), and is converted otherwise.
//
// The fallbacks llama.cpp uses are named below (q4_k_or_q5_0, ...) and registered in quant::known.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format.hpp"
#include "iq4_nl.hpp"
#include "iq4_xs.hpp"
#include "q2_k.hpp"
#include "q3_k.hpp"
#include "q4_0.hpp"
#include "q4_k.hpp"
#include "q5_0.hpp"
#include "q5_1.hpp"
#include "q5_k.hpp"
#include "q6_k.hpp"
#include "q8_0.hpp"

namespace tformer::quant {

namespace detail {
// "<Primary::name>_or_<Secondary::name>", as a null-terminated constant
template <weight_format P, weight_format S>
constexpr auto fallback_name_chars() {
  constexpr std::string_view p = P::name, s = S::name, mid = "_or_";
  std::array<char, p.size() + mid.size() + s.size() + 1> out{};
  std::size_t i = 0;
  for (const char c : p) out[i++] = c;
  for (const char c : mid) out[i++] = c;
  for (const char c : s) out[i++] = c;
  out[i] = '\0';
  return out;
}
template <weight_format P, weight_format S>
inline constexpr auto fallback_name = fallback_name_chars<P, S>();
}  // namespace detail

/// @brief Primary's layout for rows of a multiple of Primary::block_size weights, Secondary's for
/// other rows (see the top of fallback.hpp).
template <weight_format Primary, weight_format Secondary>
struct fallback {
  static_assert(Primary::block_size % Secondary::block_size == 0, "the fallback's blocks must divide the primary's");
  using primary = Primary;
  using secondary = Secondary;
  static constexpr const char* name = detail::fallback_name<Primary, Secondary>.data();
  static constexpr std::int64_t block_size = Secondary::block_size;   // rows are multiples of this
  static constexpr std::int64_t block_bytes = Secondary::block_bytes;  // nominal: see row_bytes_of
  static constexpr double bits_per_weight = Primary::bits_per_weight;

  /// @brief True when rows of cols weights are stored in Primary.
  static constexpr bool uses_primary(std::int64_t cols) noexcept { return cols % Primary::block_size == 0; }
  /// @brief Bytes of a row of cols weights.
  static constexpr std::int64_t row_bytes_of(std::int64_t cols) noexcept {
    return uses_primary(cols) ? row_bytes<Primary>(cols) : row_bytes<Secondary>(cols);
  }
  /// @brief The ggml type of a row of cols weights (when both formats are ggml types).
  static constexpr std::uint32_t ggml_type_of(std::int64_t cols) noexcept
    requires ggml_format<Primary> && ggml_format<Secondary>
  {
    return uses_primary(cols) ? static_cast<std::uint32_t>(Primary::ggml_type) : static_cast<std::uint32_t>(Secondary::ggml_type);
  }

  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    if (uses_primary(n)) Primary::quantize_row(x, blocks, n);
    else Secondary::quantize_row(x, blocks, n);
  }
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    if (uses_primary(n)) Primary::dequantize_row(blocks, y, n);
    else Secondary::dequantize_row(blocks, y, n);
  }

  /// @brief The float product of the format rows of k weights are in.
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy)
    requires float_product_format<Primary> && float_product_format<Secondary>
  {
    if (uses_primary(k)) Primary::float_product(x, ldx, m, k, w, row_bytes, n, y, ldy);
    else Secondary::float_product(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }

  // the fused int8 product of the format rows of k weights are in (when both have one)
  static constexpr std::int64_t max_fused_rows = [] {
    if constexpr (fused_format<Primary> && fused_format<Secondary>)
      return static_cast<std::int64_t>(Primary::max_fused_rows) < static_cast<std::int64_t>(Secondary::max_fused_rows)
                 ? static_cast<std::int64_t>(Primary::max_fused_rows)
                 : static_cast<std::int64_t>(Secondary::max_fused_rows);
    else
      return std::int64_t{0};
  }();
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept
    requires fused_format<Primary> && fused_format<Secondary>
  {
    return uses_primary(k) ? Primary::activation_bytes(m, k) : Secondary::activation_bytes(m, k);
  }
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts)
    requires fused_format<Primary> && fused_format<Secondary>
  {
    if (uses_primary(k)) Primary::prepare_activations(x, ldx, m, k, acts);
    else Secondary::prepare_activations(x, ldx, m, k, acts);
  }
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy)
    requires fused_format<Primary> && fused_format<Secondary>
  {
    if (uses_primary(k)) Primary::fused_product(acts, m, k, w, row_bytes, n, y, ldy);
    else Secondary::fused_product(acts, m, k, w, row_bytes, n, y, ldy);
  }
};

/// @brief llama.cpp's fallbacks for rows that are not whole 256-weight super-blocks.
using q4_k_or_q5_0 = fallback<q4_k, q5_0>;
using q5_k_or_q5_1 = fallback<q5_k, q5_1>;
using q6_k_or_q8_0 = fallback<q6_k, q8_0>;
using q3_k_or_q4_0 = fallback<q3_k, q4_0>;
using q2_k_or_q4_0 = fallback<q2_k, q4_0>;
using iq4_xs_or_iq4_nl = fallback<iq4_xs, iq4_nl>;

static_assert(weight_format<q4_k_or_q5_0> && row_length_format<q4_k_or_q5_0> && ggml_row_format<q4_k_or_q5_0>);
static_assert(fused_format<q4_k_or_q5_0> && float_product_format<q4_k_or_q5_0>);

}  // namespace tformer::quant
