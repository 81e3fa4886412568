// ops::softmax / ops::log_softmax on views: every row equals the simd kernel on that row (bit for
// bit), leading strides are honoured, shapes are checked, and the thread count does not matter.
// The kernels' accuracy is tested in tests/simd/test_softmax.cpp.
#include <tformer/core/parallel.hpp>
#include <tformer/ops/softmax.hpp>

#include <algorithm>
#include <array>
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

namespace {


// Every row of out equals kernel(row of x), bit for bit.
template <class Kernel>
void require_rowwise(tensor_view<const float> x, tensor_view<const float> out, Kernel kernel) {
  const auto n = static_cast<std::size_t>(x.dim(-1));
  std::vector<float> expect(n);
  for (std::int64_t r = 0; r < x.rows(); ++r) {
    kernel(x.row(r), expect.data(), n);
    REQUIRE(std::memcmp(out.row(r), expect.data(), n * sizeof(float)) == 0);
  }
}

void simd_softmax(const float* x, float* out, std::size_t n) { tformer::simd::softmax(x, out, n); }
void simd_log_softmax(const float* x, float* out, std::size_t n) { tformer::simd::log_softmax(x, out, n); }

}  // namespace

TEST_CASE("softmax and log_softmax run every row of any rank", "[ops][softmax]") {
  for (const shape& s : {shape{17}, shape{3, 100}, shape{2, 3, 15}, shape{2, 2, 3, 16}, shape{4, 0}, shape{0, 5}}) {
    auto x = random_tensor(s, -6.0f, 6.0f, 1);
    tensor<float> p(s), lp(s);
    tformer::ops::softmax(x, p);
    tformer::ops::log_softmax(x, lp);
    require_rowwise(x, p, simd_softmax);
    require_rowwise(x, lp, simd_log_softmax);
    // in place: out is x
    tformer::ops::softmax(x, x);
    if (s.numel() > 0)
      REQUIRE(std::memcmp(x.data(), p.data(), static_cast<std::size_t>(s.numel()) * sizeof(float)) == 0);
  }
}

TEST_CASE("softmax honours leading strides", "[ops][softmax]") {
  // Attention scores [batch, heads, q, kv] viewed through slices: rows stay contiguous but the
  // leading strides are those of the larger tensor.
  auto big = random_tensor(shape{2, 3, 5, 40}, -4.0f, 4.0f, 2);
  for (std::int64_t i = 0; i < big.numel(); i += 7) big.data()[i] = -std::numeric_limits<float>::infinity();
  const auto x = big.view().slice(1, 1, 3).slice(3, 3, 36);  // [2, 2, 5, 33]
  tensor<float> out_big(shape{2, 2, 5, 50});
  const auto out = out_big.view().slice(3, 10, 43);
  tformer::ops::softmax(x, out);
  require_rowwise(x, out, simd_softmax);
  tformer::ops::log_softmax(x, out);
  require_rowwise(x, out, simd_log_softmax);
}

TEST_CASE("softmax rejects bad shapes with messages naming the op and shapes", "[ops][softmax]") {
  tensor<float> x(shape{2, 8}), y(shape{2, 7}), z(shape{8});
  CHECK_THROWS_AS(tformer::ops::softmax(x, y), shape_error);
  CHECK_THROWS_AS(tformer::ops::log_softmax(x, z), shape_error);
  try {
    tformer::ops::log_softmax(x, y);
    FAIL("expected shape_error");
  } catch (const shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("log_softmax") != std::string::npos);
    CHECK(msg.find("[2, 8]") != std::string::npos);
    CHECK(msg.find("[2, 7]") != std::string::npos);
  }
  // a rank-0 view and a non-contiguous innermost dimension
  tensor<float> scalar(shape{});
  CHECK_THROWS_AS(tformer::ops::softmax(scalar, scalar), shape_error);
  const tensor_view<float> cols(x.data(), shape{8, 2}, {1, 8, 0, 0});  // x transposed
  tensor<float> out(shape{8, 2});
  CHECK_THROWS_AS(tformer::ops::softmax(cols, out), shape_error);
  CHECK_THROWS_AS(tformer::ops::softmax(out, cols), shape_error);
}

TEST_CASE("softmax results do not depend on the thread count", "[ops][softmax]") {
  auto x = random_tensor(shape{3, 37, 1000}, -10.0f, 10.0f, 3);
  tensor<float> one(x.shape()), two(x.shape()), lone(x.shape()), ltwo(x.shape());
  tformer::set_num_threads(1);
  tformer::ops::softmax(x, one);
  tformer::ops::log_softmax(x, lone);
  tformer::set_num_threads(2);
  tformer::ops::softmax(x, two);
  tformer::ops::log_softmax(x, ltwo);
  tformer::set_num_threads(1);
  const auto bytes = static_cast<std::size_t>(x.numel()) * sizeof(float);
  REQUIRE(std::memcmp(one.data(), two.data(), bytes) == 0);
  REQUIRE(std::memcmp(lone.data(), ltwo.data(), bytes) == 0);
}
