// Hadamard rotations (QuaRot, QuIP#): an orthogonal transform Q that spreads a vector's outliers
// over all of its coordinates, so that a block of weights or activations has a smaller maximum
// for the same norm and quantizes with less error. A linear layer keeps its product in exact
// arithmetic when its weight rows and its input are rotated alike: y = W x = (W Q^T)(Q x).
//
// The transform. For a block size B (a power of two) and positions t = 0, 1, ... of a row,
//
//   Q = (1 / sqrt(B)) * blockdiag(H_B, H_B, ...) * D,     D = diag(s_0, s_1, ...), s_t = +-1
//
// with H_B the Sylvester Hadamard matrix (H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]]) applied
// to each run of B coordinates by the fast Walsh-Hadamard transform (B log2 B additions), and
// s_t random signs: bit t % 64 of splitmix64(Seed + t / 64) set means s_t = -1. Q is orthogonal,
// Q^T = D * blockdiag(H_B) / sqrt(B). A row of any length that is a multiple of B can be rotated
// (block-diagonal for sizes that are not a power of two: SmolLM2's 576 = 9 x 64); the rows of a
// matrix all use the same Q, so a weight row and an activation row line up. For B a power of 4
// (16, 64, 256, ...) the scale 1 / sqrt(B) is a power of two and only the additions round.
//
//   quant::hadamard_rotation<B, Seed>   the transform: rotate / unrotate a row, rotate rows of a
//                                       tensor (an activation, the keys of a KV cache)
//   quant::hadamard<F, B>               a weight format: F's bytes of the rotated rows (W Q^T). Its
//                                       products rotate the activations online (Q x) before F's
//                                       float or int8 product; dequantize_row undoes the rotation
//                                       (prefill's dequantized tiles and to_float give W back, to
//                                       F's rounding). Use it as any format:
//                                         struct spec : llama_spec { using weights = quant::hadamard<quant::q4_0>; };
//
// The rotated format has no ggml_type and no file_dtype: its bytes are not those of F's file type (a
// reader without the rotation would take them for W), so GGUF files do not hold it. tformer's own
// safetensors files do, under its name ("hadamard64_q4_0" in the tformer.formats metadata), and a
// model with the same format loads them as they are. It is not in quant::known: a file of it does
// not load into a model of another format.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/memory.hpp"
#include "../core/tensor.hpp"
#include "../simd/elementwise.hpp"
#include "format.hpp"

namespace tformer::quant {

/// @brief x [b] <- H_b x in place: the unnormalized fast Walsh-Hadamard transform (Sylvester
/// order), b a power of two. b log2 b additions and subtractions, in place.
inline void walsh_hadamard(float* x, std::int64_t b) noexcept {
  TFORMER_ASSERT(b >= 1 && (b & (b - 1)) == 0);
  for (std::int64_t h = 1; h < b; h *= 2)
    for (std::int64_t i = 0; i < b; i += 2 * h)
      for (std::int64_t j = i; j < i + h; ++j) {
        const float a = x[j], c = x[j + h];
        x[j] = a + c;
        x[j + h] = a - c;
      }
}

namespace detail {
constexpr std::uint64_t splitmix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// @brief Per-thread float scratch of at least n floats (grown, never shrunk: no allocation once
/// a thread has seen its largest size).
inline float* rotation_scratch(std::size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}
}  // namespace detail

/// @brief The rotation Q = blockdiag(H_Block) D / sqrt(Block) with the random signs D of Seed
/// (see the top of hadamard.hpp).
/// @tparam Block the Hadamard block, a power of two >= 2; rows are multiples of it.
/// @tparam Seed the signs' seed.
template <std::int64_t Block = 64, std::uint64_t Seed = 0x5eed'0f'4ada'3a2dull>
struct hadamard_rotation {
  static_assert(Block >= 2 && (Block & (Block - 1)) == 0, "the Hadamard block must be a power of two >= 2");
  static constexpr std::int64_t block = Block;
  static constexpr std::uint64_t seed = Seed;

  /// @brief True when s_t = -1.
  static bool negated(std::int64_t t) noexcept {
    return (detail::splitmix64(Seed + static_cast<std::uint64_t>(t / 64)) >> (t % 64)) & 1u;
  }

  /// @brief x [n] <- Q x; n % Block == 0.
  static void rotate(float* x, std::int64_t n) noexcept {
    TFORMER_ASSERT(n % Block == 0);
    const float scale = inverse_sqrt_block();
    for (std::int64_t c = 0; c < n; c += Block) {
      float* v = x + c;
      apply_signs(v, c);
      walsh_hadamard(v, Block);
      for (std::int64_t t = 0; t < Block; ++t) v[t] *= scale;
    }
  }

  /// @brief x [n] <- Q^T x (the inverse of rotate); n % Block == 0.
  static void unrotate(float* x, std::int64_t n) noexcept {
    TFORMER_ASSERT(n % Block == 0);
    const float scale = inverse_sqrt_block();
    for (std::int64_t c = 0; c < n; c += Block) {
      float* v = x + c;
      walsh_hadamard(v, Block);
      for (std::int64_t t = 0; t < Block; ++t) v[t] *= scale;
      apply_signs(v, c);
    }
  }

  /// @brief Rotates every row of x [..., n] in place (an activation, the keys of a cache: queries
  /// rotated alike keep their dot products). Throws shape_error unless n is a multiple of Block.
  static void rotate_rows(tensor_view<float> x) {
    const std::int64_t n = check_rows(x, "rotate_rows");
    for_each_row(x, [&](float* row) { rotate(row, n); });
  }
  /// @brief The inverse of rotate_rows.
  static void unrotate_rows(tensor_view<float> x) {
    const std::int64_t n = check_rows(x, "unrotate_rows");
    for_each_row(x, [&](float* row) { unrotate(row, n); });
  }

 private:
  static float inverse_sqrt_block() noexcept { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(Block))); }
  // v [Block] at row position c: v_t <- s_{c + t} v_t
  static void apply_signs(float* v, std::int64_t c) noexcept {
    for (std::int64_t t = 0; t < Block; ++t)
      if (negated(c + t)) v[t] = -v[t];
  }
  static std::int64_t check_rows(const tensor_view<float>& x, const char* what) {
    if (x.rank() < 1) throw shape_error(std::string("tformer::quant::hadamard_rotation::") + what + ": a scalar has no rows");
    const std::int64_t n = x.dim(x.rank() - 1);
    if (n % Block != 0)
      throw shape_error(std::string("tformer::quant::hadamard_rotation::") + what + ": rows of " + std::to_string(n) +
                        " are not a multiple of the Hadamard block " + std::to_string(Block) + " (tensor " +
                        x.shape().to_string() + ")");
    if (x.numel() > 0 && x.stride(x.rank() - 1) != 1)
      throw shape_error(std::string("tformer::quant::hadamard_rotation::") + what + ": rows must be contiguous");
    return n;
  }
  // fn(row) for every row of x (any rank, any outer strides)
  template <class Fn>
  static void for_each_row(tensor_view<float>& x, Fn&& fn) {
    if (x.numel() == 0) return;
    const int r = x.rank();
    std::vector<std::int64_t> idx(static_cast<std::size_t>(r), 0);
    while (true) {
      std::int64_t off = 0;
      for (int d = 0; d + 1 < r; ++d) off += idx[static_cast<std::size_t>(d)] * x.stride(d);
      fn(x.data() + off);
      int d = r - 2;
      for (; d >= 0; --d) {
        if (++idx[static_cast<std::size_t>(d)] < x.dim(d)) break;
        idx[static_cast<std::size_t>(d)] = 0;
      }
      if (d < 0) return;
    }
  }
};

namespace detail {
// "hadamard<B>_<F::name>", as a null-terminated constant
template <std::int64_t B, weight_format F>
constexpr auto hadamard_name_chars() {
  constexpr std::string_view head = "hadamard", inner = F::name;
  constexpr std::size_t digits = [] {
    std::size_t d = 1;
    for (std::int64_t v = B; v >= 10; v /= 10) ++d;
    return d;
  }();
  std::array<char, head.size() + digits + 1 + inner.size() + 1> s{};
  std::size_t i = 0;
  for (const char c : head) s[i++] = c;
  std::int64_t v = B;
  for (std::size_t d = digits; d > 0; --d, v /= 10) s[i + d - 1] = static_cast<char>('0' + v % 10);
  i += digits;
  s[i++] = '_';
  for (const char c : inner) s[i++] = c;
  s[i] = '\0';
  return s;
}
template <std::int64_t B, weight_format F>
inline constexpr auto hadamard_name = hadamard_name_chars<B, F>();
}  // namespace detail

/// @brief Format F on Hadamard-rotated rows (see the top of hadamard.hpp): quantize_row stores
/// F(Q w), the products multiply F's bytes with Q x, dequantize_row returns Q^T F^-1(bytes). With
/// F = f32 every product equals W x to float rounding; with a low-bit F the rotation spreads the
/// rows' outliers before F's blocks are scaled. F's fused int8 product stays available:
/// int8_activations<hadamard<q8_0>> rotates, then quantizes the activations.
/// @tparam F the format of the rotated rows.
/// @tparam Block the Hadamard block (a power of two); rows are multiples of lcm(Block, F's block).
template <weight_format F, std::int64_t Block = 64, class R = hadamard_rotation<Block>>
struct hadamard {
  static_assert(!requires { typename F::rotation; }, "a rotated format inside quant::hadamard: rotate once");
  using inner = F;
  using rotation = R;
  static constexpr const char* name = detail::hadamard_name<Block, F>.data();
  static constexpr std::int64_t block_size = std::lcm(Block, static_cast<std::int64_t>(F::block_size));
  static constexpr std::int64_t block_bytes = block_size / F::block_size * F::block_bytes;
  static constexpr double bits_per_weight = F::bits_per_weight;
  /// @brief F's row bytes (a row header, a layout that depends on the row's length included).
  static constexpr std::int64_t row_bytes_of(std::int64_t cols) noexcept { return row_bytes<F>(cols); }

  /// @brief x [n] -> F's blocks of Q x; n % block_size == 0.
  static void quantize_row(const float* x, std::byte* blocks, std::int64_t n) {
    float* r = detail::rotation_scratch(static_cast<std::size_t>(n));  // [n]
    std::memcpy(r, x, static_cast<std::size_t>(n) * sizeof(float));
    R::rotate(r, n);
    F::quantize_row(r, blocks, n);
  }
  /// @brief F's blocks -> y [n] = Q^T F^-1(blocks): the weights in their own (unrotated) basis.
  static void dequantize_row(const std::byte* blocks, float* y, std::int64_t n) {
    F::dequantize_row(blocks, y, n);
    R::unrotate(y, n);
  }

  /// @brief y[i, j] = sum_t (Q x_i)[t] (Q w_j)[t] = x_i . w_j: x [m, k] (row stride ldx) rotated
  /// into per-thread scratch, then F's float_product (or, for a format without one, its dequantized
  /// rows in the rotated basis dotted in float).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t kk = (k + 15) / 16 * 16;
    float* xr = detail::rotation_scratch(static_cast<std::size_t>((m + 1) * kk));  // [m, kk] rotated rows, then one row of W
    rotate_activations(x, ldx, m, k, xr, kk);
    if constexpr (float_product_format<F>) {
      F::float_product(xr, kk, m, k, w, row_bytes, n, y, ldy);
    } else {
      float* wr = xr + m * kk;  // [k]: W's row j, rotated basis
      for (std::int64_t j = 0; j < n; ++j) {
        F::dequantize_row(w + j * row_bytes, wr, k);
        for (std::int64_t i = 0; i < m; ++i) y[i * ldy + j] = simd::dot(xr + i * kk, wr, static_cast<std::size_t>(k));
      }
    }
  }

  // F's fused int8 product, on rotated activations (present when F has one)
  static constexpr std::int64_t max_fused_rows = [] {
    if constexpr (fused_format<F>) return static_cast<std::int64_t>(F::max_fused_rows);
    else return std::int64_t{0};
  }();
  /// @brief F's scratch for m rows of k activations.
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept
    requires fused_format<F>
  {
    return F::activation_bytes(m, k);
  }
  /// @brief x [m, k] (row stride ldx) -> Q x -> F's prepared activations.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts)
    requires fused_format<F>
  {
    float* xr = detail::rotation_scratch(static_cast<std::size_t>(m * k));  // [m, k]
    rotate_activations(x, ldx, m, k, xr, k);
    F::prepare_activations(xr, k, m, k, acts);
  }
  /// @brief F's fused product (the activations were rotated by prepare_activations).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy)
    requires fused_format<F>
  {
    F::fused_product(acts, m, k, w, row_bytes, n, y, ldy);
  }

 private:
  // x [m, k] (row stride ldx) -> out [m, k] (row stride ldo), each row rotated
  static void rotate_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, float* out,
                                 std::int64_t ldo) {
    for (std::int64_t i = 0; i < m; ++i) {
      std::memcpy(out + i * ldo, x + i * ldx, static_cast<std::size_t>(k) * sizeof(float));
      R::rotate(out + i * ldo, k);
    }
  }
};

}  // namespace tformer::quant
