// ops::layer_norm / rms_norm / add_layer_norm / add_rms_norm on views: every row equals the simd
// kernel on that row (bit for bit), optional parameters may be empty views, leading strides are
// honoured, bad shapes and eps throw, and the thread count does not matter. The kernels'
// accuracy is tested in tests/simd/test_norm.cpp.
#include <tformer/core/parallel.hpp>
#include <tformer/ops/norm.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
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

namespace {


bool same_bits(tensor_view<const float> a, tensor_view<const float> b) {
  if (!(a.shape() == b.shape())) return false;
  const auto n = static_cast<std::size_t>(a.dim(-1));
  for (std::int64_t r = 0; r < a.rows(); ++r)
    if (std::memcmp(a.row(r), b.row(r), n * sizeof(float)) != 0) return false;
  return true;
}

constexpr float eps = 1e-5f;

}  // namespace

TEST_CASE("layer_norm and rms_norm equal the row kernels, with or without parameters", "[ops][norm]") {
  for (const shape& s : {shape{100}, shape{3, 17}, shape{2, 3, 64}, shape{2, 2, 2, 33}, shape{0, 8}}) {
    const std::int64_t n = s.dim(-1);
    const auto x = random_tensor(s, -2.0f, 3.0f, 1);
    const auto w = random_tensor(shape{n}, 0.5f, 1.5f, 2);
    const auto b = random_tensor(shape{n}, -1.0f, 1.0f, 3);
    const auto un = static_cast<std::size_t>(n);
    tensor<float> out(s), expect(s);
    for (int mode = 0; mode < 4; ++mode) {
      const bool has_w = mode & 1, has_b = mode & 2;
      tformer::ops::layer_norm(x, has_w ? w.view() : tensor_view<const float>{},
                               has_b ? b.view() : tensor_view<const float>{}, eps, out);
      for (std::int64_t r = 0; r < x.view().rows(); ++r)
        tformer::simd::layer_norm(x.view().row(r), has_w ? w.data() : nullptr, has_b ? b.data() : nullptr, eps,
                                  expect.view().row(r), un);
      REQUIRE(same_bits(out, expect));
    }
    for (bool has_w : {false, true}) {
      tformer::ops::rms_norm(x, has_w ? w.view() : tensor_view<const float>{}, eps, out);
      for (std::int64_t r = 0; r < x.view().rows(); ++r)
        tformer::simd::rms_norm(x.view().row(r), has_w ? w.data() : nullptr, eps, expect.view().row(r), un);
      REQUIRE(same_bits(out, expect));
    }
  }
}

TEST_CASE("fused residual norms update the residual and equal add then normalize", "[ops][norm]") {
  const shape s{4, 5, 96};
  const auto res0 = random_tensor(s, -3.0f, 3.0f, 4);
  const auto delta = random_tensor(s, -1.0f, 1.0f, 5);
  const auto w = random_tensor(shape{96}, 0.5f, 1.5f, 6);
  const auto b = random_tensor(shape{96}, -1.0f, 1.0f, 7);
  tensor<float> sum(s);
  for (std::int64_t i = 0; i < sum.numel(); ++i) sum.data()[i] = res0.data()[i] + delta.data()[i];

  tensor<float> res = res0, out(s), expect(s);
  tformer::ops::add_layer_norm(res, delta, w, b, eps, out);
  tformer::ops::layer_norm(sum, w, b, eps, expect);
  REQUIRE(same_bits(res, sum));
  REQUIRE(same_bits(out, expect));

  res = res0;
  tformer::ops::add_rms_norm(res, delta, w, eps, out);
  tformer::ops::rms_norm(sum, w, eps, expect);
  REQUIRE(same_bits(res, sum));
  REQUIRE(same_bits(out, expect));
}

TEST_CASE("norms honour leading strides", "[ops][norm]") {
  // The hidden states of a slice of a batch, and of every other token: strided leading dims.
  auto big = random_tensor(shape{3, 10, 80}, -2.0f, 2.0f, 8);
  const auto x = big.view().slice(0, 1, 3).slice(2, 8, 72);  // [2, 10, 64], rows 80 apart
  const auto w = random_tensor(shape{64}, 0.5f, 1.5f, 9);
  tensor<float> out_big(shape{2, 10, 100}), expect(shape{2, 10, 64});
  const auto out = out_big.view().slice(2, 30, 94);
  tformer::ops::layer_norm(x, w, {}, eps, out);
  tformer::ops::layer_norm(tensor<float>::copy_of(x), w, {}, eps, expect);
  REQUIRE(same_bits(out, expect));
  tformer::ops::rms_norm(x, w, eps, out);
  tformer::ops::rms_norm(tensor<float>::copy_of(x), w, eps, expect);
  REQUIRE(same_bits(out, expect));

  // fused, with the residual itself a strided view
  auto res_big = random_tensor(shape{2, 10, 70}, -2.0f, 2.0f, 10);
  auto residual = res_big.view().slice(2, 3, 67);
  auto res_copy = tensor<float>::copy_of(residual);
  tformer::ops::add_rms_norm(residual, x, w, eps, out);
  tformer::ops::add_rms_norm(res_copy, tensor<float>::copy_of(x), w, eps, expect);
  REQUIRE(same_bits(residual, res_copy));
  REQUIRE(same_bits(out, expect));
}

TEST_CASE("norms reject bad shapes and eps", "[ops][norm]") {
  tensor<float> x(shape{2, 8}), out(shape{2, 8}), w(shape{8}), w7(shape{7}), w2(shape{1, 8}), y(shape{2, 7});
  CHECK_THROWS_AS(tformer::ops::layer_norm(x, w7, {}, eps, out), shape_error);
  CHECK_THROWS_AS(tformer::ops::layer_norm(x, w, w2, eps, out), shape_error);
  CHECK_THROWS_AS(tformer::ops::layer_norm(x, w, w, eps, y), shape_error);
  CHECK_THROWS_AS(tformer::ops::rms_norm(x, w7, eps, out), shape_error);
  CHECK_THROWS_AS(tformer::ops::rms_norm(y, w, eps, y), shape_error);
  CHECK_THROWS_AS(tformer::ops::add_layer_norm(x, y, w, w, eps, out), shape_error);
  CHECK_THROWS_AS(tformer::ops::add_rms_norm(x, x, w, eps, y), shape_error);
  CHECK_THROWS_AS(tformer::ops::layer_norm(x, w, w, -1e-5f, out), value_error);
  CHECK_THROWS_AS(tformer::ops::rms_norm(x, w, std::numeric_limits<float>::quiet_NaN(), out), value_error);
  CHECK_THROWS_AS(tformer::ops::add_rms_norm(x, x, w, -1.0f, out), value_error);
  CHECK_NOTHROW(tformer::ops::rms_norm(x, w, 0.0f, out));

  // a non-contiguous weight and a non-contiguous innermost dimension
  tensor<float> w16(shape{16});
  const tensor_view<const float> every_other(w16.data(), shape{8}, {2, 0, 0, 0});
  CHECK_THROWS_AS(tformer::ops::rms_norm(x, every_other, eps, out), shape_error);
  const tensor_view<float> cols(x.data(), shape{8, 2}, {1, 8, 0, 0});
  tensor<float> out82(shape{8, 2}), w2v(shape{2});
  CHECK_THROWS_AS(tformer::ops::layer_norm(cols, w2v, {}, eps, out82), shape_error);

  try {
    tformer::ops::layer_norm(x, w7, {}, eps, out);
    FAIL("expected shape_error");
  } catch (const shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("layer_norm") != std::string::npos);
    CHECK(msg.find("weight") != std::string::npos);
    CHECK(msg.find("[8]") != std::string::npos);
    CHECK(msg.find("[7]") != std::string::npos);
  }
  try {
    tformer::ops::add_layer_norm(x, x, w, {}, -2.0f, out);
    FAIL("expected value_error");
  } catch (const value_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("add_layer_norm") != std::string::npos);
    CHECK(msg.find("eps") != std::string::npos);
    CHECK(msg.find("-2") != std::string::npos);
  }
}

TEST_CASE("norm results do not depend on the thread count", "[ops][norm]") {
  const shape s{3, 41, 1000};
  const auto x = random_tensor(s, -2.0f, 2.0f, 11);
  const auto w = random_tensor(shape{1000}, 0.5f, 1.5f, 12);
  const auto b = random_tensor(shape{1000}, -1.0f, 1.0f, 13);
  tensor<float> out[2] = {tensor<float>(s), tensor<float>(s)}, rms[2] = {tensor<float>(s), tensor<float>(s)};
  tensor<float> res[2] = {x, x}, fused[2] = {tensor<float>(s), tensor<float>(s)};
  for (int t = 0; t < 2; ++t) {
    tformer::set_num_threads(t + 1);
    tformer::ops::layer_norm(x, w, b, eps, out[t]);
    tformer::ops::rms_norm(x, w, eps, rms[t]);
    tformer::ops::add_layer_norm(res[t], x, w, b, eps, fused[t]);
  }
  tformer::set_num_threads(1);
  REQUIRE(same_bits(out[0], out[1]));
  REQUIRE(same_bits(rms[0], rms[1]));
  REQUIRE(same_bits(res[0], res[1]));
  REQUIRE(same_bits(fused[0], fused[1]));
}
