// Matrix products through Eigen, with weights in the PyTorch / Hugging Face layout.
//
//   linear:         y[M,N] = x[M,K] * W[N,K]^T (+ bias[N])
//   batched_matmul: c[b] = a[b] * op(b[b]) for every b, op = identity or transpose (attention)
//
// Threading: the output is cut into tiles whose boundaries depend only on the shape, each tile is
// an independent single-threaded Eigen product, and tformer::parallel_for spreads the tiles over
// the threads. So the result is bit-identical for any thread count. Eigen's own threading is
// switched off (Eigen::setNbThreads(1)) whenever a product runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include <Eigen/Core>

#include "../core/eigen.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

namespace tformer::ops {

namespace detail {

// tformer parallelizes products itself; Eigen's own threads (which split K differently for
// different thread counts) stay off. Checked on every call, so a later Eigen::setNbThreads(n) by
// the application cannot make results depend on the thread count.
inline void eigen_single_threaded() {
  if (Eigen::nbThreads() != 1) Eigen::setNbThreads(1);
}

/// Tiling of an [M, N] output: rows are cut when M is large (each tile re-packs W, so tiles are
/// tall: at least 256 rows), columns otherwise (GEMV and small-batch decode: each tile reads its
/// own rows of W; at least 384 of them). Tile sizes measured in bench/README.md.
struct tiling {
  std::int64_t row_block, col_block, row_tiles, col_tiles;
};
inline tiling tile_output(std::int64_t m, std::int64_t n) noexcept {
  constexpr std::int64_t max_tiles = 16;  // enough parallelism for 16 threads
  tiling t{m, n, 1, 1};
  if (m >= 512) {
    t.row_block = std::max<std::int64_t>(256, (m + max_tiles - 1) / max_tiles);
    t.row_block = (t.row_block + 7) / 8 * 8;
  } else if (n >= 768) {
    t.col_block = std::max<std::int64_t>(384, (n + max_tiles - 1) / max_tiles);
    t.col_block = (t.col_block + 15) / 16 * 16;
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

template <class W>
void check_linear(const tensor_view<const float>& x, const tensor_view<const W>& w, const tensor_view<float>& y,
                  const tensor_view<const float>& bias) {
  if (x.rank() != 2 || w.rank() != 2 || y.rank() != 2)
    throw shape_error("tformer::ops::linear: expected rank-2 x, W, y; got " + shapes("x", x.shape(), "W", w.shape()) +
                      ", y " + y.shape().to_string());
  const std::int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  if (w.dim(1) != k)
    throw shape_error("tformer::ops::linear: x has " + std::to_string(k) + " features but W [out, in] expects " +
                      std::to_string(w.dim(1)) + " (" + shapes("x", x.shape(), "W", w.shape()) + ")");
  if (y.dim(0) != m || y.dim(1) != n)
    throw shape_error("tformer::ops::linear: y must be [" + std::to_string(m) + ", " + std::to_string(n) + "], got " +
                      y.shape().to_string());
  if (bias.data() != nullptr && (bias.rank() != 1 || bias.dim(0) != n || (n > 1 && bias.stride(0) != 1)))
    throw shape_error("tformer::ops::linear: bias must be a contiguous [" + std::to_string(n) + "], got " +
                      bias.shape().to_string());
  if (w.dim(1) > 1 && w.stride(1) != 1) throw shape_error("tformer::ops::linear: rows of W must be contiguous");
}

// The shared body: tiles of y, each computed by one single-threaded Eigen product of x's rows with
// W's rows, where W's rows come from weight_rows(c0, cols) as a float matrix expression.
template <class WeightRows>
void linear_tiles(tensor_view<const float> x, std::int64_t n, tensor_view<float> y, tensor_view<const float> bias,
                  WeightRows&& weight_rows) {
  const std::int64_t m = x.dim(0), k = x.dim(1);
  if (m == 0 || n == 0) return;
  const auto X = as_matrix(x);
  auto Y = as_matrix(y);
  eigen_single_threaded();
  const auto t = tile_output(m, n);
  parallel_for(t.row_tiles * t.col_tiles, [&](std::int64_t tile) {
    const std::int64_t r0 = (tile / t.col_tiles) * t.row_block, c0 = (tile % t.col_tiles) * t.col_block;
    const std::int64_t rows = std::min(t.row_block, m - r0), cols = std::min(t.col_block, n - c0);
    auto out = Y.block(r0, c0, rows, cols);
    if (k == 0)
      out.setZero();
    else
      weight_rows(c0, cols, [&](const auto& Wt) { out.noalias() = X.middleRows(r0, rows) * Wt.transpose(); });
    if (bias.data() != nullptr) out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data() + c0, cols);
  }, t.row_block * t.col_block * std::max<std::int64_t>(k, 1) / 8);  // ~8 multiply-adds cost one element op
}

}  // namespace detail

/// @brief y = x * W^T (+ bias): x [M, K], W [N, K] (PyTorch Linear layout), bias [N] or empty, y [M, N].
/// Rows of x, W and y must be contiguous (unit inner stride); leading strides are free.
inline void linear(tensor_view<const float> x, tensor_view<const float> w, tensor_view<float> y,
                   tensor_view<const float> bias = {}) {
  detail::check_linear(x, w, y, bias);
  const auto W = as_matrix(w);
  detail::linear_tiles(x, w.dim(0), y, bias, [&](std::int64_t c0, std::int64_t cols, auto&& product) {
    product(W.middleRows(c0, cols));
  });
}

/// @brief y = x * W^T (+ bias) with W stored as bfloat16 [N, K]; each tile widens its rows of W
/// to float (exact) and multiplies in float, so the result equals linear() on the widened W.
inline void linear(tensor_view<const float> x, tensor_view<const bf16> w, tensor_view<float> y,
                   tensor_view<const float> bias = {}) {
  detail::check_linear(x, w, y, bias);
  const std::int64_t k = x.dim(1);
  detail::linear_tiles(x, w.dim(0), y, bias, [&](std::int64_t c0, std::int64_t cols, auto&& product) {
    row_matrix<float> wt(cols, k);  // [cols, K] widened rows of W
    for (std::int64_t r = 0; r < cols; ++r) convert(w.row(c0 + r), wt.row(r).data(), static_cast<std::size_t>(k));
    product(wt);
  });
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
