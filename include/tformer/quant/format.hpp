// What a weight format is. A format is a tag type (gemma.cpp's NuqStream style) that says how a
// row of weights is stored: in blocks of block_size weights taking block_bytes each, and how a
// row of floats becomes blocks (quantize_row) and back (dequantize_row). quant::matrix<F> owns
// the packed storage of a [rows, cols] matrix in format F; ops::linear multiplies by it.
//
//   struct my_format {
//     static constexpr const char* name = "my_format";       // unique; used in files and messages
//     static constexpr std::int64_t block_size = 32;          // weights per block
//     static constexpr std::int64_t block_bytes = 18;         // bytes per block
//     static constexpr double bits_per_weight = 4.5;          // = 8 * block_bytes / block_size
//     static void quantize_row(const float* x, std::byte* blocks, std::int64_t n);    // n % block_size == 0
//     static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n);
//   };
//
// Optional members, detected by the concepts below:
//   using element = T;                       plain arrays of one element type (f32, f16, bf16):
//                                            rows are viewed as tensors, products read them directly
//   static constexpr const char* file_dtype  the safetensors dtype whose bytes are this format's
//                                            ("F32", "BF16", ...): loading copies them as they are
//   static constexpr std::uint32_t ggml_type the ggml / GGUF type id whose blocks are this format's
//                                            bytes (F32 0, F16 1, Q8_0 8, BF16 30, ...): GGUF files
//                                            load and save them as they are (io/gguf.hpp)
//   static constexpr std::int64_t row_header_bytes   bytes at the start of every row, before its
//                                            blocks (a per-row scale: int8_channel); row_bytes
//                                            counts them, quantize_row / dequantize_row and the
//                                            products get whole rows
//   static constexpr std::int64_t row_bytes_of(std::int64_t cols)
//                                            bytes of a row of cols weights, for a format whose
//                                            layout depends on the row's length (quant::fallback:
//                                            a K-quant's super-blocks where they fit, 32-weight
//                                            blocks otherwise); row_bytes returns it
//   static std::uint32_t ggml_type_of(std::int64_t cols)
//                                            the ggml type of a row of cols weights, for such a
//                                            format (see ggml_type_for)
//   static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept
//                                            sets weight i of a packed row to the code nearest x
//                                            under the scales quantize_row chose, returns its value
//                                            (requantize.hpp): GPTQ can quantize into the format
//   fused product for few activation rows (decode): see fused_format.
//   float product for few activation rows (decode): see float_product_format.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../core/dtype.hpp"
#include "../core/half.hpp"

namespace tformer::quant {

/// @brief A weight format: block geometry, bits per weight, and row conversions to and from float.
template <class F>
concept weight_format = requires {
  { F::name } -> std::convertible_to<std::string_view>;
  { F::block_size } -> std::convertible_to<std::int64_t>;
  { F::block_bytes } -> std::convertible_to<std::int64_t>;
  { F::bits_per_weight } -> std::convertible_to<double>;
} && F::block_size >= 1 && F::block_bytes >= 1 &&
    requires(const float* x, std::byte* blocks, const std::byte* packed, float* y, std::int64_t n) {
      F::quantize_row(x, blocks, n);
      F::dequantize_row(packed, y, n);
    };

/// @brief A format that stores one plain element per weight (f32, f16, bf16).
template <class F>
concept element_format = weight_format<F> && requires { typename F::element; } && element<typename F::element> &&
                         F::block_size == 1 && F::block_bytes == sizeof(typename F::element);

/// @brief A format that stores plain floats (quant::f32, and wrappers of it such as observed<f32>):
/// products read its rows in place.
template <class F>
concept float_element_format = element_format<F> && std::same_as<typename F::element, float>;

/// @brief A format with a fused product for a few rows of activations (decode), which never writes
/// dequantized weights to memory:
///   activation_bytes(m, k)                           scratch bytes for m rows of k activations
///   prepare_activations(x, ldx, m, k, acts)           x [m, k] (row stride ldx) -> acts (e.g. int8 blocks)
///   fused_product(acts, m, k, w, row_bytes, n, y, ldy)  y[i, j] = sum_k x[i, k] w[j, k], i < m, j < n,
///                                                     for n packed rows of w starting at w
/// fused_product takes any m, max_fused_rows rows at a time (one read of a weight row serves that
/// many), each row's result independent of m. ops::linear uses it for up to
/// max(max_fused_rows, ops::fused_rows_limit) activation rows when the format is wrapped in
/// int8_activations (below), and below packed_min_rows for a packed_fused_format. A format whose
/// sums overflow past some row length declares max_fused_k (optional): longer rows of W take
/// ops::linear's float path instead of the fused or packed product.
template <class F>
concept fused_format = weight_format<F> &&
    requires(const float* x, std::int64_t i, const std::byte* acts, std::byte* out, float* y) {
      { F::max_fused_rows } -> std::convertible_to<std::int64_t>;
      { F::activation_bytes(i, i) } -> std::convertible_to<std::size_t>;
      F::prepare_activations(x, i, i, i, out);
      F::fused_product(acts, i, i, acts, i, i, y, i);
    };

/// @brief Whether F's fused and packed products take rows of k weights (F::max_fused_k, if any).
template <class F>
constexpr bool fused_fits(std::int64_t k) noexcept {
  if constexpr (requires { F::max_fused_k; })
    return k <= F::max_fused_k;
  else
    return true;
}

/// @brief A fused format that also has a product for many activation rows (a GEMM: encoders,
/// prefill), with the fused product's bits, over weights it packs as it goes:
///   packed_min_rows        rows from which ops::linear uses it (0: never, e.g. where only a
///                          scalar path is compiled)
///   packed_columns         weight rows per panel: ops::linear gives a thread whole panels
///   packed_bytes(k)        scratch bytes (64-byte aligned) for rows of k weights
///   packed_product(acts, m, k, w, row_bytes, n, y, ldy, scratch)
///                          fused_product's y for n rows of w, packing them into scratch
/// Row i's prepared activations start at activation_bytes(i, k), so rows are prepared and
/// multiplied in blocks.
template <class F>
concept packed_fused_format = fused_format<F> &&
    requires(std::int64_t i, const std::byte* acts, std::byte* out, float* y) {
      { F::packed_min_rows } -> std::convertible_to<std::int64_t>;
      { F::packed_columns } -> std::convertible_to<std::int64_t>;
      { F::packed_bytes(i) } -> std::convertible_to<std::size_t>;
      F::packed_product(acts, i, i, acts, i, i, y, i, out);
    };

/// @brief A format with a product for a few rows of float activations that dequantizes its weights
/// in registers (decode without rounding the activations; ops::linear's default for up to 8 rows):
///   float_product(x, ldx, m, k, w, row_bytes, n, y, ldy)  y[i, j] = sum_k x[i, k] w[j, k], i < m, j < n
template <class F>
concept float_product_format = weight_format<F> &&
    requires(const float* x, std::int64_t i, const std::byte* w, float* y) { F::float_product(x, i, i, i, w, i, i, y, i); };

/// @brief Format F with its fused product switched on. ops::linear uses a format's fused product
/// (which rounds the activations, to int8 per block for the ggml formats) only for a format
/// wrapped like this; by default activations stay float (f32 is the oracle). Products with up to
/// ops::fused_rows_limit (64) activation rows (decode, batched or with beams), and with any
/// number from F::packed_min_rows for a packed_fused_format, then run F's integer kernels:
/// faster, within the activation rounding error F's test bounds. The bytes, the
/// name and everything else are F's, so files load as they are.
///   struct fast_spec : llama_spec { using weights = quant::int8_activations<quant::q8_0>; };
template <fused_format F>
struct int8_activations : F {
  static constexpr bool use_fused_product = true;
};

/// @brief A format whose fused product ops::linear uses (an int8_activations<F>).
template <class F>
concept uses_fused_product = fused_format<F> && requires {
  requires F::use_fused_product;
};

/// @brief A format whose bytes are those of a safetensors dtype (loaded and saved as they are).
template <class F>
concept file_dtype_format = weight_format<F> && requires {
  { F::file_dtype } -> std::convertible_to<std::string_view>;
};

/// @brief A format whose blocks are those of a ggml type (GGUF loads and saves them as they are).
template <class F>
concept ggml_format = weight_format<F> && requires {
  { F::ggml_type } -> std::convertible_to<std::uint32_t>;
};

/// @brief A format whose rows start with a header of row_header_bytes (a per-row scale).
template <class F>
concept row_header_format = weight_format<F> && requires {
  { F::row_header_bytes } -> std::convertible_to<std::int64_t>;
};

/// @brief A format whose row layout depends on the row's length (row_bytes_of, see the top).
template <class F>
concept row_length_format = weight_format<F> && requires(std::int64_t cols) {
  { F::row_bytes_of(cols) } -> std::convertible_to<std::int64_t>;
};

/// @brief A format whose rows have a ggml type that depends on their length (ggml_type_of).
template <class F>
concept ggml_row_format = weight_format<F> && requires(std::int64_t cols) {
  { F::ggml_type_of(cols) } -> std::convertible_to<std::uint32_t>;
};

/// @brief A format that can set one weight of a packed row under the scales quantize_row chose
/// (requantize_weight; see requantize.hpp): what quant::gptq needs. Rows have no header and no
/// length-dependent layout, so the weights of block b are the row's bytes of block b alone.
template <class F>
concept requantizable_format = weight_format<F> && !row_header_format<F> && !row_length_format<F> &&
    requires(std::byte* row, std::int64_t i, float x) {
      { F::requantize_weight(row, i, x) } -> std::same_as<float>;
    };

/// @brief A format that GGUF files hold: a ggml type for all rows, or one per row length.
template <class F>
concept gguf_storable = ggml_format<F> || ggml_row_format<F>;

/// @brief The ggml type of a row of cols weights in F (F::ggml_type, or F::ggml_type_of(cols)),
/// or -1 when F has none.
template <weight_format F>
constexpr long long ggml_type_for(std::int64_t cols) noexcept {
  if constexpr (ggml_format<F>)
    return static_cast<long long>(static_cast<std::uint32_t>(F::ggml_type));
  else if constexpr (ggml_row_format<F>)
    return static_cast<long long>(static_cast<std::uint32_t>(F::ggml_type_of(cols)));
  else
    return -1;
}

/// @brief Bytes of one row of cols weights in format F (cols a multiple of F::block_size): its
/// blocks, after F::row_header_bytes for a format with a row header; F::row_bytes_of(cols) for a
/// format whose layout depends on the row's length.
template <weight_format F>
constexpr std::int64_t row_bytes(std::int64_t cols) noexcept {
  if constexpr (row_length_format<F>)
    return F::row_bytes_of(cols);
  else if constexpr (row_header_format<F>)
    return static_cast<std::int64_t>(F::row_header_bytes) + cols / F::block_size * F::block_bytes;
  else
    return cols / F::block_size * F::block_bytes;
}

/// @brief quantize_row / dequantize_row of a format that stores each weight as one E (f16, bf16),
/// through tformer::convert (round to nearest even one way, exact the other).
template <class E>
struct converted_rows {
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) noexcept {
    convert(x, reinterpret_cast<E*>(blocks), static_cast<std::size_t>(n));
  }
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) noexcept {
    convert(reinterpret_cast<const E*>(blocks), y, static_cast<std::size_t>(n));
  }
};

}  // namespace tformer::quant
