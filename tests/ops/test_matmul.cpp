// ops::linear and ops::batched_matmul against a double-precision scalar reference.
// Bound: |y - ref| <= 1e-5 * sum_k |x_k w_k| (+ |b|): float accumulation over K terms in
// blocked order has error ~ K * 2^-24 in the worst case, far below this for K <= 1024.
#include <tformer/core/eigen.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/q8_0.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::thread_guard;

using tformer::test::random_tensor;

using tformer::shape;
using tformer::tensor;

namespace {


// y[m,n] = sum_k x[m,k] w[n,k] + b[n] in double; also the sum of magnitudes for the bound.
void reference_linear(const tensor<float>& x, const tensor<float>& w, const float* b, std::vector<double>& y,
                      std::vector<double>& mag) {
  const auto M = x.dim(0), K = x.dim(1), N = w.dim(0);
  y.assign(static_cast<std::size_t>(M * N), 0.0);
  mag.assign(y.size(), 0.0);
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0, a = b ? std::fabs(b[n]) : 0.0;
      for (std::int64_t k = 0; k < K; ++k) {
        s += static_cast<double>(x(m, k)) * w(n, k);
        a += std::fabs(static_cast<double>(x(m, k)) * w(n, k));
      }
      y[static_cast<std::size_t>(m * N + n)] = s;
      mag[static_cast<std::size_t>(m * N + n)] = a;
    }
}

}  // namespace

TEST_CASE("linear computes x W^T + b for tiled and untiled shapes", "[matmul]") {
  // Shapes below, at and above the tiling thresholds (512 rows / 768 columns), odd sizes.
  const std::vector<std::array<std::int64_t, 3>> shapes = {{1, 1, 1},     {1, 300, 17},   {3, 7, 5},     {17, 1000, 33},
                                                           {1, 767, 9},   {2, 769, 9},    {300, 300, 64}, {511, 40, 100},
                                                           {513, 40, 100}, {1100, 5, 7}, {4, 4, 0}};
  std::uint32_t seed = 1;
  for (auto [M, N, K] : shapes) {
    for (bool with_bias : {false, true}) {
      auto x = random_tensor(shape{M, K}, seed++);
      auto w = random_tensor(shape{N, K}, seed++);
      auto b = random_tensor(shape{N}, seed++);
      tensor<float> y(shape{M, N}, 99.0f);
      if (with_bias)
        tformer::ops::linear(x, w, y, b);
      else
        tformer::ops::linear(x, w, y);
      std::vector<double> ref, mag;
      reference_linear(x, w, with_bias ? b.data() : nullptr, ref, mag);
      INFO("M=" << M << " N=" << N << " K=" << K << " bias=" << with_bias);
      for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(y.data()[i] - ref[i]) <= 1e-5 * mag[i] + 1e-30);
    }
  }
}

TEST_CASE("linear over every kernel length as K and as N", "[matmul]") {
  std::uint32_t seed = 100;
  for (const std::size_t len : tformer::test::kernel_lengths) {
    const auto L = static_cast<std::int64_t>(len);
    for (auto [M, N, K] : std::vector<std::array<std::int64_t, 3>>{{2, 3, L}, {2, L, 5}}) {
      auto x = random_tensor(shape{M, K}, seed++);
      auto w = random_tensor(shape{N, K}, seed++);
      auto b = random_tensor(shape{N}, seed++);
      tensor<float> y(shape{M, N});
      tformer::ops::linear(x, w, y, b);
      std::vector<double> ref, mag;
      reference_linear(x, w, b.data(), ref, mag);
      INFO("M=" << M << " N=" << N << " K=" << K);
      for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(y.data()[i] - ref[i]) <= 1e-5 * mag[i] + 1e-30);
    }
  }
}

TEST_CASE("linear gives identical bits for any thread count", "[matmul][parallel]") {
  thread_guard guard;
  for (auto [M, N, K] : std::vector<std::array<std::int64_t, 3>>{{1, 3072, 768}, {600, 520, 300}, {64, 96, 1024}}) {
    auto x = random_tensor(shape{M, K}, 11);
    auto w = random_tensor(shape{N, K}, 12);
    tensor<float> y1(shape{M, N}), y2(shape{M, N}), y3(shape{M, N});
    tformer::set_num_threads(1);
    tformer::ops::linear(x, w, y1);
    tformer::set_num_threads(2);
    tformer::ops::linear(x, w, y2);
    tformer::set_num_threads(5);
    tformer::ops::linear(x, w, y3);
    REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(y1.numel()) * 4) == 0);
    REQUIRE(std::memcmp(y1.data(), y3.data(), static_cast<std::size_t>(y1.numel()) * 4) == 0);
  }
}

TEST_CASE("linear with bf16 weights equals linear with the widened float weights", "[matmul][bf16]") {
  for (auto [M, N, K] : std::vector<std::array<std::int64_t, 3>>{{1, 300, 40}, {5, 17, 9}, {300, 40, 33}}) {
    auto x = random_tensor(shape{M, K}, 31);
    auto wf = random_tensor(shape{N, K}, 32);
    auto b = random_tensor(shape{N}, 33);
    tensor<tformer::bf16> wb(shape{N, K});
    tformer::convert(wf.data(), wb.data(), static_cast<std::size_t>(wf.numel()));
    tformer::convert(wb.data(), wf.data(), static_cast<std::size_t>(wf.numel()));  // wf = widened bf16 values
    tensor<float> y1(shape{M, N}), y2(shape{M, N});
    tformer::ops::linear(x, wb, y1, b);
    tformer::ops::linear(x, wf, y2, b);
    REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(y1.numel()) * 4) == 0);
  }
  tensor<float> x(shape{2, 3}), y(shape{2, 4});
  tensor<tformer::bf16> w(shape{4, 5});
  CHECK_THROWS_AS(tformer::ops::linear(x, w, y), tformer::shape_error);
}

TEST_CASE("linear works on views with padded rows", "[matmul]") {
  auto big = random_tensor(shape{6, 10}, 5);
  auto w = random_tensor(shape{3, 4}, 6);
  auto x = big.view().slice(1, 2, 6);  // [6, 4] with row stride 10
  tensor<float> y(shape{6, 3});
  tformer::ops::linear(x, w, y);
  for (std::int64_t m = 0; m < 6; ++m)
    for (std::int64_t n = 0; n < 3; ++n) {
      double s = 0;
      for (std::int64_t k = 0; k < 4; ++k) s += static_cast<double>(big(m, k + 2)) * w(n, k);
      REQUIRE(std::fabs(y(m, n) - s) <= 1e-6);
    }
}

TEST_CASE("linear rejects mismatched shapes with the shapes in the message", "[matmul]") {
  tensor<float> x(shape{2, 3}), w(shape{4, 5}), y(shape{2, 4}), b(shape{3});
  try {
    tformer::ops::linear(x, w, y);
    FAIL("expected shape_error");
  } catch (const tformer::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("linear") != std::string::npos);
    CHECK(msg.find("[2, 3]") != std::string::npos);
    CHECK(msg.find("[4, 5]") != std::string::npos);
  }
  tensor<float> w2(shape{4, 3}), y_bad(shape{3, 4});
  CHECK_THROWS_AS(tformer::ops::linear(x, w2, y_bad), tformer::shape_error);
  CHECK_THROWS_AS(tformer::ops::linear(x, w2, y, b), tformer::shape_error);  // bias [3] != [4]
  tensor<float> x3(shape{1, 2, 3});
  CHECK_THROWS_AS(tformer::ops::linear(x3, w2, y), tformer::shape_error);
}

TEST_CASE("batched_matmul multiplies each batch item, with and without transpose", "[matmul]") {
  const std::int64_t B = 3, M = 5, K = 7, N = 4;
  auto a = random_tensor(shape{B, M, K}, 21);
  auto bn = random_tensor(shape{B, K, N}, 22);
  auto bt = random_tensor(shape{B, N, K}, 23);
  tensor<float> c1(shape{B, M, N}), c2(shape{B, M, N});
  tformer::ops::batched_matmul(a, bn, c1);
  tformer::ops::batched_matmul(a, bt, c2, tformer::ops::transpose::yes);
  for (std::int64_t i = 0; i < B; ++i)
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        double s1 = 0, s2 = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          s1 += static_cast<double>(a(i, m, k)) * bn(i, k, n);
          s2 += static_cast<double>(a(i, m, k)) * bt(i, n, k);
        }
        REQUIRE(std::fabs(c1(i, m, n) - s1) <= 1e-5);
        REQUIRE(std::fabs(c2(i, m, n) - s2) <= 1e-5);
      }
  CHECK_THROWS_AS(tformer::ops::batched_matmul(a, bt, c1), tformer::shape_error);  // [B,N,K] is not [B,K,N]
}

TEST_CASE("as_matrix maps row-major views without copying", "[eigen]") {
  tensor<float> t(shape{2, 3});
  auto m = tformer::as_matrix(t);
  m(1, 2) = 4.0f;
  CHECK(t(1, 2) == 4.0f);
  CHECK(m.data() == t.data());
  tensor<float> t3(shape{2, 3, 4});
  CHECK_THROWS_AS(tformer::as_matrix(t3.view()), tformer::shape_error);
  tformer::tensor_view<float> columns(t.data(), shape{3, 2}, {1, 3, 0, 0});  // transposed: inner stride 3
  CHECK_THROWS_AS(tformer::as_matrix(columns), tformer::shape_error);
}

TEST_CASE("linear with packed weights and few rows keeps the activations in float", "[matmul][quant]") {
  thread_guard guard;
  const std::int64_t k = 96, n = 900;
  const auto wq = tformer::quant::matrix<tformer::quant::q8_0>::quantize(random_tensor(shape{n, k}, 21));
  const auto wd = wq.to_float();
  const auto bias = random_tensor(shape{n}, 22);
  for (std::int64_t m : {1, 3, 8}) {
    const auto x = random_tensor(shape{m, k}, 23);
    tensor<float> y1(shape{m, n}), y2(shape{m, n}), ref(shape{m, n});
    tformer::set_num_threads(1);
    tformer::ops::linear(x, wq, y1, bias);
    tformer::set_num_threads(2);
    tformer::ops::linear(x, wq, y2, bias);
    tformer::ops::linear(x, wd, ref, bias);  // float weights: Eigen's product
    REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
    for (std::int64_t i = 0; i < y1.numel(); ++i)  // float products of the same weights: summation order only
      REQUIRE(std::fabs(y1.data()[i] - ref.data()[i]) <= 1e-5f * (1.0f + std::fabs(ref.data()[i])));
  }
}
