// ops::argmax / ops::top_k on views: output shapes, strided views, shape and k checks, and
// thread-count independence. The selection order itself is tested in tests/simd/test_reduce.cpp.
#include <tformer/core/parallel.hpp>
#include <tformer/ops/reduce.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::random_tensor;

using tformer::shape;
using tformer::shape_error;
using tformer::tensor;
using tformer::tensor_view;
using tformer::value_error;

TEST_CASE("argmax writes one index per row, in the leading shape", "[ops][reduce]") {
  const auto x = random_tensor(shape{2, 3, 50}, -5.0f, 5.0f, 1);
  tensor<std::int32_t> idx(shape{2, 3});
  tformer::ops::argmax(x, idx);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      REQUIRE(static_cast<std::size_t>(idx(i, j)) == tformer::simd::argmax(x.view()[i][j].data(), 50));

  // rank-1 x: a rank-0 indices view, or shape [1]
  const auto v = random_tensor(shape{1000}, -5.0f, 5.0f, 2);
  const auto want = static_cast<std::int32_t>(tformer::simd::argmax(v.data(), 1000));
  tensor<std::int32_t> scalar(shape{}), one(shape{1});
  tformer::ops::argmax(v, scalar);
  tformer::ops::argmax(v, one);
  REQUIRE(*scalar.data() == want);
  REQUIRE(one(0) == want);
}

TEST_CASE("argmax honours strided inputs and outputs", "[ops][reduce]") {
  auto big = random_tensor(shape{4, 6, 40}, -5.0f, 5.0f, 3);
  const auto x = big.view().slice(0, 1, 3).slice(2, 5, 37);  // [2, 6, 32]
  tensor<std::int32_t> idx_big(shape{2, 12}, -1);
  const tensor_view<std::int32_t> idx(idx_big.data() + 1, shape{2, 6}, {12, 2, 0, 0});  // every other slot
  tformer::ops::argmax(x, idx);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 6; ++j) {
      REQUIRE(static_cast<std::size_t>(idx(i, j)) == tformer::simd::argmax(x[i][j].data(), 32));
      REQUIRE(idx_big(i, 2 * j) == -1);  // untouched
    }
}

TEST_CASE("top_k writes [..., k] values and indices", "[ops][reduce]") {
  auto big = random_tensor(shape{3, 4, 120}, -5.0f, 5.0f, 4);
  const auto x = big.view().slice(2, 10, 110);  // [3, 4, 100], strided rows
  for (std::int64_t k : {1, 5, 100}) {
    tensor<float> values(shape{3, 4, k});
    tensor<std::int32_t> indices(shape{3, 4, k});
    tformer::ops::top_k(x, k, values, indices);
    std::vector<float> ev(static_cast<std::size_t>(k));
    std::vector<std::int32_t> ei(static_cast<std::size_t>(k));
    for (std::int64_t r = 0; r < x.rows(); ++r) {
      tformer::simd::top_k(x.row(r), 100, static_cast<std::size_t>(k), ev.data(), ei.data());
      REQUIRE(std::memcmp(values.view().row(r), ev.data(), ev.size() * sizeof(float)) == 0);
      REQUIRE(std::memcmp(indices.view().row(r), ei.data(), ei.size() * sizeof(std::int32_t)) == 0);
      for (std::int64_t j = 1; j < k; ++j) REQUIRE(values.view().row(r)[j - 1] >= values.view().row(r)[j]);
    }
  }
}

TEST_CASE("argmax and top_k reject bad shapes and k", "[ops][reduce]") {
  const tensor<float> x(shape{2, 8});
  tensor<std::int32_t> i2(shape{2}), i3(shape{3}), i21(shape{2, 1}), i2k(shape{2, 3});
  tensor<float> v2k(shape{2, 3}), v2k4(shape{2, 4});
  CHECK_NOTHROW(tformer::ops::argmax(x, i2));
  CHECK_THROWS_AS(tformer::ops::argmax(x, i3), shape_error);
  CHECK_THROWS_AS(tformer::ops::argmax(x, i21), shape_error);
  CHECK_THROWS_AS(tformer::ops::argmax(tensor<float>(shape{8}), tensor_view<std::int32_t>{}), shape_error);
  CHECK_THROWS_AS(tformer::ops::argmax(tensor<float>(shape{}), i2), shape_error);
  CHECK_THROWS_AS(tformer::ops::argmax(tensor<float>(shape{2, 0}), i2), value_error);

  CHECK_NOTHROW(tformer::ops::top_k(x, 3, v2k, i2k));
  CHECK_THROWS_AS(tformer::ops::top_k(x, 0, v2k, i2k), value_error);
  CHECK_THROWS_AS(tformer::ops::top_k(x, 9, v2k, i2k), value_error);
  CHECK_THROWS_AS(tformer::ops::top_k(x, -1, v2k, i2k), value_error);
  CHECK_THROWS_AS(tformer::ops::top_k(x, 3, v2k4, i2k), shape_error);
  CHECK_THROWS_AS(tformer::ops::top_k(x, 3, v2k, i21), shape_error);

  try {
    tformer::ops::top_k(x, 9, v2k, i2k);
    FAIL("expected value_error");
  } catch (const value_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("top_k") != std::string::npos);
    CHECK(msg.find("[1, 8]") != std::string::npos);
    CHECK(msg.find("9") != std::string::npos);
  }
  try {
    tformer::ops::argmax(x, i3);
    FAIL("expected shape_error");
  } catch (const shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("argmax") != std::string::npos);
    CHECK(msg.find("[2]") != std::string::npos);
    CHECK(msg.find("[3]") != std::string::npos);
  }
}

TEST_CASE("argmax and top_k do not depend on the thread count", "[ops][reduce]") {
  auto x = random_tensor(shape{64, 5000}, -3.0f, 3.0f, 5);
  for (std::int64_t i = 0; i < x.numel(); i += 17) x.data()[i] = 3.0f;  // ties
  tensor<std::int32_t> a[2] = {tensor<std::int32_t>(shape{64}), tensor<std::int32_t>(shape{64})};
  tensor<float> v[2] = {tensor<float>(shape{64, 40}), tensor<float>(shape{64, 40})};
  tensor<std::int32_t> i[2] = {tensor<std::int32_t>(shape{64, 40}), tensor<std::int32_t>(shape{64, 40})};
  for (int t = 0; t < 2; ++t) {
    tformer::set_num_threads(t + 1);
    tformer::ops::argmax(x, a[t]);
    tformer::ops::top_k(x, 40, v[t], i[t]);
  }
  tformer::set_num_threads(1);
  REQUIRE(std::memcmp(a[0].data(), a[1].data(), 64 * sizeof(std::int32_t)) == 0);
  REQUIRE(std::memcmp(v[0].data(), v[1].data(), 64 * 40 * sizeof(float)) == 0);
  REQUIRE(std::memcmp(i[0].data(), i[1].data(), 64 * 40 * sizeof(std::int32_t)) == 0);
}
