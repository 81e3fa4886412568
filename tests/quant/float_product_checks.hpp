// Checks shared by the tests of the formats whose decode product is a float_product only
// (int8_channel, uint8_channel, int4_group<G>): a float-product path against the dot products of
// the dequantized rows (in double), and ops::linear through its decode and prefill paths. The bound
// is that of a float dot product of k terms plus one rounding of the scale:
//   |y - sum_t x_t w_t| <= (k + 2) * 2^-24 * sum_t |x_t w_t|
// (fma accumulation in any order: k roundings of partial sums bounded by the sum of magnitudes;
// the scale, applied once instead of per weight, and the dequantized weights' own rounding: two).
#pragma once

#include <tformer/ops/matmul.hpp>
#include <tformer/quant/matrix.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include "catch.hpp"
#include "support.hpp"

namespace tformer::test {

/// @brief Worst |y - ref| / bound of a product y [m, n] of x [m, k] with w, over the whole output.
template <quant::weight_format F>
double float_product_error(const tensor<float>& x, const quant::matrix<F>& w, const float* y, std::int64_t ldy) {
  const auto wf = w.to_float();  // the dequantized rows [n, k]
  const std::int64_t m = x.dim(0), k = x.dim(1), n = w.rows();
  double worst = 0;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (std::int64_t t = 0; t < k; ++t) {
        const double p = static_cast<double>(x.view()(i, t)) * wf.view()(j, t);
        ref += p;
        mag += std::fabs(p);
      }
      const double bound = static_cast<double>(k + 2) * std::ldexp(1.0, -24) * mag + 1e-37;
      const double err = std::fabs(static_cast<double>(y[i * ldy + j]) - ref) / bound;
      worst = std::isnan(err) ? INFINITY : std::max(worst, err);
    }
  return worst;
}

/// @brief Runs path (F's float_product signature) on x [m, k] and w, returns the worst error / bound.
template <quant::weight_format F, class Path>
double path_error(Path path, const tensor<float>& x, const quant::matrix<F>& w) {
  const std::int64_t m = x.dim(0), k = x.dim(1), n = w.rows();
  tensor<float> y(shape{m, n + 3}, -1.0f);  // ldy > n
  path(x.data(), k, m, k, w.data(), w.row_bytes(), n, y.data(), n + 3);
  bool untouched = true;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = n; j < n + 3; ++j) untouched = untouched && y.view()(i, j) == -1.0f;
  CHECK(untouched);
  return float_product_error(x, w, y.data(), n + 3);
}

/// @brief ops::linear with F weights for m = 1, 3 (decode: float_product) and 11 (prefill:
/// dequantized tiles, Eigen's float GEMM) against the dequantized product, bias included.
template <quant::weight_format F>
void check_linear(std::int64_t k, std::int64_t n, std::uint32_t seed) {
  const auto wsrc = random_tensor(shape{n, k}, -2.0f, 2.0f, seed);
  const auto w = quant::matrix<F>::quantize(wsrc.view());
  const auto bias = random_tensor(shape{n}, seed + 1);
  for (const std::int64_t m : {1, 3, 11}) {
    INFO(F::name << " linear m " << m << " k " << k << " n " << n);
    const auto x = random_tensor(shape{m, k}, seed + 2);
    tensor<float> y(shape{m, n});
    ops::linear(x.view(), w, y.view(), bias.view());
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) y.view()(i, j) -= bias.data()[j];
    // Eigen's blocked GEMM sums in its own order: the same bound, bias subtraction's rounding aside
    CHECK(float_product_error(x, w, y.data(), n) <= 2.0);
  }
}

}  // namespace tformer::test
