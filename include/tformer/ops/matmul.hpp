// Matrix products through Eigen, with weights in the PyTorch / Hugging Face layout.
//
//   linear:         y[M,N] = x[M,K] * W[N,K]^T (+ bias[N]); W a float / bf16 view, or a
//                   quant::matrix<F> in any weight format
//   batched_matmul: c[b] = a[b] * op(b[b]) for every b, op = identity or transpose (attention)
//
// Threading: the output is cut into tiles whose boundaries depend only on the shape, each tile is
// an independent single-threaded Eigen product, and tformer::parallel_for spreads the tiles over
// the threads. So the result is bit-identical for any thread count. Eigen's own threading is
// switched off once, before tformer's first product (Eigen::setNbThreads(1)).
//
// Weights in a format other than f32 take one of three paths. Few activation rows (decode): the
// format's fused product when the spec opted in (quant::int8_activations<F>: activations rounded
// to int8 on the fly), otherwise each weight row is dequantized into the thread's scratch (one row,
// in L1) and dotted with every activation row in float. Many rows (prefill): each tile
// dequantizes blocks of W's rows into per-thread scratch and multiplies them in float (the
// generic path).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "../core/eigen.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../quant/f32.hpp"
#include "../simd/elementwise.hpp"
#include "../quant/format.hpp"
#include "../quant/matrix.hpp"
#include "../quant/observed.hpp"

namespace tformer::ops {

namespace detail {

// tformer parallelizes products itself; Eigen's own threads (which split K differently for
// different thread counts) stay off. Eigen keeps its thread count in a plain static: it is written
// once, here, under std::call_once, so threads that share a model never race on it. (An
// application that calls Eigen::setNbThreads itself afterwards changes Eigen's products, and may
// make tformer's results depend on Eigen's thread count: see the README's thread-safety notes.)
inline void eigen_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { Eigen::setNbThreads(1); });
}

/// Tiling of an [M, N] output: rows are cut when M is large (each tile re-packs W, so tiles are
/// tall: at least 256 rows); columns otherwise. A product of up to 8 rows (decode) reads W once and
/// is bound by reading it, so its columns are cut into up to 16 tiles of at least 16K weights (16
/// columns at a time): every linear of a small model spreads over the threads. Between 9 and 511
/// rows (prefill, encoders) the columns are cut into up to 16 tiles of at least 128 columns (each
/// an Eigen GEMM that packs x's rows again: 128 columns keep that under about a tenth of the
/// work), so the q, k, v and o products of a small model split over the threads too. The tiles
/// depend on the shapes alone, never on the thread count, so results do not either. Tile sizes
/// measured in bench/README.md.
struct tiling {
  std::int64_t row_block, col_block, row_tiles, col_tiles;
};
inline tiling tile_output(std::int64_t m, std::int64_t n, std::int64_t k = 0) noexcept {
  constexpr std::int64_t max_tiles = 16;  // enough parallelism for 16 threads
  constexpr std::int64_t min_decode_tile = std::int64_t{1} << 14;  // weights
  tiling t{m, n, 1, 1};
  if (m >= 512) {
    t.row_block = std::max<std::int64_t>(256, (m + max_tiles - 1) / max_tiles);
    t.row_block = (t.row_block + 7) / 8 * 8;
  } else if (m <= 8 && k > 0) {
    t.col_block = std::max<std::int64_t>((n + max_tiles - 1) / max_tiles, (min_decode_tile + k - 1) / k);
    t.col_block = std::min(n, (t.col_block + 15) / 16 * 16);
  } else if (n > 128) {
    t.col_block = std::max<std::int64_t>(128, (n + max_tiles - 1) / max_tiles);
    t.col_block = std::min(n, (t.col_block + 15) / 16 * 16);
  }
  t.row_tiles = (m + t.row_block - 1) / t.row_block;
  t.col_tiles = (n + t.col_block - 1) / t.col_block;
  return t;
}

inline std::string shapes(const char* a, const shape& sa, const char* b, const shape& sb) {
  return std::string(a) + " " + sa.to_string() + ", " + b + " " + sb.to_string();
}

}  // namespace detail

namespace detail {

inline void check_linear(const tensor_view<const float>& x, const shape& w, const tensor_view<float>& y,
                         const tensor_view<const float>& bias) {
  if (x.rank() != 2 || w.rank() != 2 || y.rank() != 2)
    throw shape_error("tformer::ops::linear: expected rank-2 x, W, y; got " + shapes("x", x.shape(), "W", w) + ", y " +
                      y.shape().to_string());
  const std::int64_t m = x.dim(0), k = x.dim(1), n = w[0];
  if (w[1] != k)
    throw shape_error("tformer::ops::linear: x has " + std::to_string(k) + " features but W [out, in] expects " +
                      std::to_string(w[1]) + " (" + shapes("x", x.shape(), "W", w) + ")");
  if (y.dim(0) != m || y.dim(1) != n)
    throw shape_error("tformer::ops::linear: y must be [" + std::to_string(m) + ", " + std::to_string(n) + "], got " +
                      y.shape().to_string());
  if (bias.data() != nullptr && (bias.rank() != 1 || bias.dim(0) != n || (n > 1 && bias.stride(0) != 1)))
    throw shape_error("tformer::ops::linear: bias must be a contiguous [" + std::to_string(n) + "], got " +
                      bias.shape().to_string());
  if (x.dim(1) > 1 && x.stride(1) != 1) throw shape_error("tformer::ops::linear: rows of x must be contiguous");
  if (y.dim(1) > 1 && y.stride(1) != 1) throw shape_error("tformer::ops::linear: rows of y must be contiguous");
}
template <class W>
void check_linear(const tensor_view<const float>& x, const tensor_view<const W>& w, const tensor_view<float>& y,
                  const tensor_view<const float>& bias) {
  if (w.rank() != 2)
    throw shape_error("tformer::ops::linear: expected rank-2 x, W, y; got " + shapes("x", x.shape(), "W", w.shape()) +
                      ", y " + y.shape().to_string());
  check_linear(x, w.shape(), y, bias);
  if (w.dim(1) > 1 && w.stride(1) != 1) throw shape_error("tformer::ops::linear: rows of W must be contiguous");
}

// The shared body: tiles of y, each computed by single-threaded Eigen products of x's rows with
// W's rows. weight_rows(c0, cols, scratch, emit) supplies W's rows [c0, c0 + cols) as float
// matrix expressions by calling emit(offset, Wt) once per block of them (Wt: [block, K], for
// output columns c0 + offset ...); scratch holds scratch_per_thread floats of the running thread.
template <class WeightRows>
void linear_tiles(tensor_view<const float> x, std::int64_t n, tensor_view<float> y, tensor_view<const float> bias,
                  WeightRows&& weight_rows, std::int64_t scratch_per_thread = 0, workspace* ws = nullptr) {
  const std::int64_t m = x.dim(0), k = x.dim(1);
  if (m == 0 || n == 0) return;
  const auto X = as_matrix(x);
  auto Y = as_matrix(y);
  eigen_single_threaded();
  const auto t = tile_output(m, n, k);
  const std::int64_t tiles = t.row_tiles * t.col_tiles;
  const std::int64_t cost = t.row_block * t.col_block * std::max<std::int64_t>(k, 1) / 8;  // ~8 multiply-adds per element op
  const int threads = loop_threads(tiles, cost);
  workspace_ref scratch_ws(ws);
  const auto scope = scratch_ws->open();
  float* scratch = scratch_per_thread > 0 ? scratch_ws->take_raw<float>(static_cast<std::size_t>(threads * scratch_per_thread)) : nullptr;
  parallel_for_slots(threads, tiles, [&](std::int64_t tile, int slot) {
    const std::int64_t r0 = (tile / t.col_tiles) * t.row_block, c0 = (tile % t.col_tiles) * t.col_block;
    const std::int64_t rows = std::min(t.row_block, m - r0), cols = std::min(t.col_block, n - c0);
    auto out = Y.block(r0, c0, rows, cols);
    if (k == 0)
      out.setZero();
    else
      weight_rows(c0, cols, scratch ? scratch + slot * scratch_per_thread : nullptr, [&](std::int64_t offset, const auto& Wt) {
        out.middleCols(offset, Wt.rows()).noalias() = X.middleRows(r0, rows) * Wt.transpose();
      });
    if (bias.data() != nullptr) out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data() + c0, cols);
  });
}

// Rows of W dequantized per block of this many rows (the scratch of one thread: block x K floats).
inline constexpr std::int64_t dequantize_block_rows = 256;

}  // namespace detail

/// @brief y = x * W^T (+ bias): x [M, K], W [N, K] (PyTorch Linear layout), bias [N] or empty, y [M, N].
/// Rows of x, W and y must be contiguous (unit inner stride); leading strides are free.
inline void linear(tensor_view<const float> x, tensor_view<const float> w, tensor_view<float> y,
                   tensor_view<const float> bias = {}) {
  detail::check_linear(x, w, y, bias);
  const auto W = as_matrix(w);
  detail::linear_tiles(x, w.dim(0), y, bias, [&](std::int64_t c0, std::int64_t cols, float*, auto&& emit) {
    emit(0, W.middleRows(c0, cols));
  });
}

/// @brief y = x * W^T (+ bias) with W stored as bfloat16 [N, K]; each tile widens its rows of W
/// to float (exact) and multiplies in float, so the result equals linear() on the widened W.
inline void linear(tensor_view<const float> x, tensor_view<const bf16> w, tensor_view<float> y,
                   tensor_view<const float> bias = {}, workspace* ws = nullptr) {
  detail::check_linear(x, w, y, bias);
  const std::int64_t k = x.dim(1);
  const std::int64_t block = std::min(detail::dequantize_block_rows, w.dim(0));
  detail::linear_tiles(
      x, w.dim(0), y, bias,
      [&](std::int64_t c0, std::int64_t cols, float* scratch, auto&& emit) {
        for (std::int64_t b0 = 0; b0 < cols; b0 += block) {
          const std::int64_t rows = std::min(block, cols - b0);
          for (std::int64_t r = 0; r < rows; ++r) convert(w.row(c0 + b0 + r), scratch + r * k, static_cast<std::size_t>(k));
          emit(b0, Eigen::Map<const row_matrix<float>>(scratch, rows, k));
        }
      },
      block * k, ws);
}

/// @brief Activation rows up to which a product in a packed format runs row by row (decode).
inline constexpr std::int64_t few_rows = 8;
/// @brief Activation rows up to which an int8_activations<F> product runs F's fused integer kernel
/// (batched decode, beams), which takes them F::max_fused_rows at a time; more rows dequantize
/// tiles of W into the float GEMM, unless F has a packed product (quant::packed_fused_format),
/// which then takes every row count from F::packed_min_rows. Each group of rows reads the weights of a column tile again
/// (from cache when the tile fits), but nothing is dequantized: with few rows the dequantizing
/// dominates the float path (at 128 rows bench_quant's prefill_int8 is already 0.9-1.0x that path
/// on one thread and 1.2-1.3x on two).
inline constexpr std::int64_t fused_rows_limit = 64;

namespace detail {

/// @brief ops::linear through a packed_fused_format's packed product (many rows, K > 0): the
/// activations prepared in blocks of rows, then tiles of rows (all m up to 384, else 256) x
/// (whole panels of F::packed_columns columns, 1 to 8), each packing its panels of W into its
/// thread's scratch as it goes. A panel of int8_channel is 64 rows of W, k x 64 bytes (48 KiB at k = 768), in L2
/// while every row of the tile runs against it.
template <quant::packed_fused_format F>
void linear_packed(tensor_view<const float> x, const quant::matrix<F>& w, tensor_view<float> y,
                   tensor_view<const float> bias, workspace* ws) {
  const std::int64_t m = x.dim(0), k = x.dim(1), n = w.rows();
  workspace_ref scratch(ws);
  const auto scope = scratch->open();
  std::byte* acts = scratch->take_raw<std::byte>(F::activation_bytes(m, k));  // m prepared rows
  constexpr std::int64_t prepare_rows = 32;
  parallel_for((m + prepare_rows - 1) / prepare_rows, [&](std::int64_t b) {
    const std::int64_t r0 = b * prepare_rows;
    F::prepare_activations(x.data() + r0 * x.stride(0), x.stride(0), std::min(prepare_rows, m - r0), k,
                           acts + F::activation_bytes(r0, k));
  }, prepare_rows * k);
  // column tiles of whole panels: panels / (2 threads) of them, 1 to 8 (a tile of several panels
  // prefetches its next panel while it multiplies one; with fewer than 2 panels per thread each
  // tile is one panel); the bits do not depend on the tiling
  const std::int64_t panels = (n + F::packed_columns - 1) / F::packed_columns;
  const std::int64_t cols_per_tile = std::clamp<std::int64_t>(panels / (2 * num_threads()), 1, 8) * F::packed_columns;
  const std::int64_t row_block = m <= 384 ? m : 256;
  const std::int64_t col_tiles = (n + cols_per_tile - 1) / cols_per_tile, row_tiles = (m + row_block - 1) / row_block;
  const int threads = loop_threads(row_tiles * col_tiles, row_block * cols_per_tile * k / 32);
  const std::size_t panel_bytes = (F::packed_bytes(k) + 63) / 64 * 64;
  std::byte* panel = scratch->take_raw<std::byte>(static_cast<std::size_t>(threads) * panel_bytes);  // one per thread
  parallel_for_slots(threads, row_tiles * col_tiles, [&](std::int64_t tile, int slot) {
    const std::int64_t r0 = tile / col_tiles * row_block, c0 = tile % col_tiles * cols_per_tile;
    const std::int64_t rows = std::min(row_block, m - r0), cols = std::min(cols_per_tile, n - c0);
    float* out = y.data() + r0 * y.stride(0) + c0;
    F::packed_product(acts + F::activation_bytes(r0, k), rows, k, w.row(c0), w.row_bytes(), cols, out, y.stride(0),
                      panel + static_cast<std::size_t>(slot) * panel_bytes);
    if (bias.data() != nullptr)  // while the tile is in cache; the same sums as adding it after
      for (std::int64_t r = 0; r < rows; ++r)
        simd::add(out + r * y.stride(0), bias.data() + c0, out + r * y.stride(0), static_cast<std::size_t>(cols));
  });
}

}  // namespace detail

/// @brief y = x * W^T (+ bias) with W [N, K] a quant::matrix in any weight format: f32 reads W in
/// place; an int8_activations<F> format takes F's packed product from F::packed_min_rows rows of
/// x when F has one (a packed_fused_format), else its fused product up to fused_rows_limit rows
/// (decode, batched or with beams); otherwise up to few_rows rows take F's float_product (weights
/// dequantized in registers) when it has one, or else dot each
/// dequantized row of W with x in float; more rows dequantize tiles of W into the
/// float GEMM. ws supplies the scratch (activations, dequantized rows); without one it comes from
/// the heap.
template <quant::weight_format F>
void linear(tensor_view<const float> x, const quant::matrix<F>& w, tensor_view<float> y,
            tensor_view<const float> bias = {}, workspace* ws = nullptr) {
  if constexpr (quant::observed_format<F>) F::observe(&w, x);  // calibration (quant/observed.hpp)
  if constexpr (quant::float_element_format<F>) {
    linear(x, w.view(), y, bias);
  } else {
    if (w.rank() != 2) throw shape_error("tformer::ops::linear: the weight matrix is empty (rank 0)");
    detail::check_linear(x, w.shape(), y, bias);
    const std::int64_t m = x.dim(0), k = x.dim(1), n = w.rows();
    if (m == 0 || n == 0) return;
    auto add_bias = [&](std::int64_t c0, std::int64_t cols) {
      if (bias.data() != nullptr)
        for (std::int64_t r = 0; r < m; ++r)
          for (std::int64_t c = 0; c < cols; ++c) y.data()[r * y.stride(0) + c0 + c] += bias.data()[c0 + c];
    };
    if constexpr (quant::uses_fused_product<F> && quant::packed_fused_format<F>) {
      if (F::packed_min_rows > 0 && m >= F::packed_min_rows && k > 0 && quant::fused_fits<F>(k)) {
        detail::linear_packed<F>(x, w, y, bias, ws);
        return;
      }
    }
    if constexpr (quant::uses_fused_product<F>) {
      if (m <= std::max<std::int64_t>(F::max_fused_rows, fused_rows_limit) && k > 0 && quant::fused_fits<F>(k)) {
        workspace_ref scratch(ws);
        const auto scope = scratch->open();
        std::byte* acts = scratch->take_raw<std::byte>(F::activation_bytes(m, k));
        F::prepare_activations(x.data(), x.stride(0), m, k, acts);
        const auto t = detail::tile_output(m, n, k);  // m < 512: column tiles only
        // F::fused_product takes the rows F::max_fused_rows at a time, each group reading the
        // tile's weight rows.
        parallel_for(t.col_tiles, [&](std::int64_t tile) {
          const std::int64_t c0 = tile * t.col_block, cols = std::min(t.col_block, n - c0);
          F::fused_product(acts, m, k, w.row(c0), w.row_bytes(), cols, y.data() + c0, y.stride(0));
          add_bias(c0, cols);
        }, t.col_block * k * ((m + F::max_fused_rows - 1) / F::max_fused_rows) / 4);
        return;
      }
    }
    if constexpr (quant::float_product_format<F>) {
      if (m <= few_rows && k > 0) {  // decode: weights dequantized in registers, float products
        const auto t = detail::tile_output(m, n, k);
        parallel_for(t.col_tiles, [&](std::int64_t tile) {
          const std::int64_t c0 = tile * t.col_block, cols = std::min(t.col_block, n - c0);
          F::float_product(x.data(), x.stride(0), m, k, w.row(c0), w.row_bytes(), cols, y.data() + c0, y.stride(0));
          add_bias(c0, cols);
        }, t.col_block * k * m / 4);
        return;
      }
    } else if constexpr (!quant::element_format<F>) {
      if (m <= few_rows && k > 0) {  // decode: one dequantized row of W at a time, float products
        const auto t = detail::tile_output(m, n, k);
        const std::int64_t cost = t.col_block * k * (m + 2) / 8;
        const int threads = loop_threads(t.col_tiles, cost);
        const std::int64_t row_floats = (k + 15) / 16 * 16;
        workspace_ref scratch(ws);
        const auto scope = scratch->open();
        float* rows = scratch->take_raw<float>(static_cast<std::size_t>(threads * row_floats));
        parallel_for_slots(threads, t.col_tiles, [&](std::int64_t tile, int slot) {
          const std::int64_t c0 = tile * t.col_block, cols = std::min(t.col_block, n - c0);
          float* wr = rows + slot * row_floats;  // W's row j as floats: [K]
          for (std::int64_t j = c0; j < c0 + cols; ++j) {
            F::dequantize_row(w.row(j), wr, k);
            for (std::int64_t r = 0; r < m; ++r)
              y.data()[r * y.stride(0) + j] = simd::dot(x.data() + r * x.stride(0), wr, static_cast<std::size_t>(k));
          }
          add_bias(c0, cols);
        });
        return;
      }
    }
    const std::int64_t block = std::min(detail::dequantize_block_rows, n);
    detail::linear_tiles(
        x, n, y, bias,
        [&](std::int64_t c0, std::int64_t cols, float* scratch, auto&& emit) {
          for (std::int64_t b0 = 0; b0 < cols; b0 += block) {
            const std::int64_t rows = std::min(block, cols - b0);
            w.dequantize(c0 + b0, rows, scratch);
            emit(b0, Eigen::Map<const row_matrix<float>>(scratch, rows, k));
          }
        },
        block * k, ws);
  }
}

/// @brief How batched_matmul reads its right operand.
enum class transpose : bool { no = false, yes = true };

/// @brief c[i] = a[i] * b[i] (or a[i] * b[i]^T) for every i of the leading dimension.
/// a [B, M, K]; b [B, K, N] (transpose::no) or [B, N, K] (transpose::yes); c [B, M, N].
inline void batched_matmul(tensor_view<const float> a, tensor_view<const float> b, tensor_view<float> c,
                           transpose tb = transpose::no) {
  if (a.rank() != 3 || b.rank() != 3 || c.rank() != 3)
    throw shape_error("tformer::ops::batched_matmul: expected rank-3 a, b, c; got " +
                      detail::shapes("a", a.shape(), "b", b.shape()) + ", c " + c.shape().to_string());
  const std::int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2);
  const std::int64_t bk = tb == transpose::yes ? b.dim(2) : b.dim(1);
  const std::int64_t n = tb == transpose::yes ? b.dim(1) : b.dim(2);
  if (b.dim(0) != batch || bk != k || c.dim(0) != batch || c.dim(1) != m || c.dim(2) != n)
    throw shape_error(std::string("tformer::ops::batched_matmul: shapes do not fit (") +
                      (tb == transpose::yes ? "c = a b^T" : "c = a b") + "): " +
                      detail::shapes("a", a.shape(), "b", b.shape()) + ", c " + c.shape().to_string());
  detail::eigen_single_threaded();
  parallel_for(batch, [&](std::int64_t i) {
    auto C = as_matrix(c[i]);
    if (k == 0) {
      C.setZero();
      return;
    }
    const auto A = as_matrix(a[i]);
    const auto Bm = as_matrix(b[i]);
    if (tb == transpose::yes)
      C.noalias() = A * Bm.transpose();
    else
      C.noalias() = A * Bm;
  }, m * n * std::max<std::int64_t>(k, 1) / 8);
}

}  // namespace tformer::ops
