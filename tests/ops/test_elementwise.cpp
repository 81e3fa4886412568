#include <tformer/core/parallel.hpp>
#include <tformer/core/tensor.hpp>
#include <tformer/ops/elementwise.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::random_tensor;

namespace act = tformer::simd::act;
using tformer::shape;
using tformer::shape_error;
using tformer::tensor;
using tformer::tensor_view;

namespace {


bool bitwise_equal(const tensor<float>& a, const tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * 4) == 0;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("ops::add, mul and scale apply the kernels elementwise", "[ops][elementwise]") {
  const auto a = random_tensor(shape{3, 5, 17}, -10.0f, 10.0f, 1);
  const auto b = random_tensor(shape{3, 5, 17}, -10.0f, 10.0f, 2);
  tensor<float> sum(a.shape()), prod(a.shape()), scaled(a.shape());
  tformer::ops::add(a, b, sum);
  tformer::ops::mul(a, b, prod);
  tformer::ops::scale(a, 0.25f, scaled);
  bool ok = true;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data()[i], y = b.data()[i];
    ok = ok && sum.data()[i] == static_cast<float>(x + y) && prod.data()[i] == static_cast<float>(x * y) &&
         scaled.data()[i] == static_cast<float>(0.25 * x);
  }
  CHECK(ok);

  tensor<float> c = a;  // in place: out is a
  tformer::ops::add(c, b, c);
  CHECK(bitwise_equal(c, sum));
}

TEST_CASE("ops::residual_add adds x and a bias broadcast over rows", "[ops][elementwise]") {
  const auto x = random_tensor(shape{2, 3, 9}, -10.0f, 10.0f, 3);
  const auto bias = random_tensor(shape{9}, -1.0f, 1.0f, 4);
  const auto r0 = random_tensor(shape{2, 3, 9}, -10.0f, 10.0f, 5);

  tensor<float> r = r0;
  tformer::ops::residual_add(r, x, bias);
  bool ok = true;
  for (std::int64_t i = 0; i < r.numel(); ++i) {
    const float v = static_cast<float>(static_cast<double>(x.data()[i]) + bias.data()[i % 9]);  // x + bias first
    ok = ok && r.data()[i] == static_cast<float>(static_cast<double>(r0.data()[i]) + v);
  }
  CHECK(ok);

  tensor<float> r2 = r0;  // no bias
  tformer::ops::residual_add(r2, x);
  ok = true;
  for (std::int64_t i = 0; i < r2.numel(); ++i)
    ok = ok && r2.data()[i] == static_cast<float>(static_cast<double>(r0.data()[i]) + x.data()[i]);
  CHECK(ok);
}

TEST_CASE("ops::activate and ops::dot", "[ops][elementwise]") {
  const auto x = random_tensor(shape{4, 33}, -8.0f, 8.0f, 6);
  tensor<float> y(x.shape());
  tformer::ops::activate<act::gelu>(x, y);
  bool ok = true;
  for (std::int64_t i = 0; i < x.numel(); ++i) ok = ok && y.data()[i] == act::gelu{}(x.data()[i]);
  CHECK(ok);

  tensor<float> z = x;  // in place
  tformer::ops::activate<act::gelu>(z, z);
  CHECK(bitwise_equal(z, y));

  const auto a = random_tensor(shape{100}, -1.0f, 1.0f, 7);
  const auto b = random_tensor(shape{100}, -1.0f, 1.0f, 8);
  CHECK(tformer::ops::dot(a, b) == tformer::simd::dot(a.data(), b.data(), 100));
  tensor<float> ones(shape{10}, 1.0f), threes(shape{10}, 3.0f);
  CHECK(tformer::ops::dot(ones, threes) == 30.0f);
}

TEST_CASE("elementwise ops reject mismatched shapes with a shape_error naming them", "[ops][elementwise]") {
  tensor<float> a(shape{2, 3}), b(shape{2, 4}), out(shape{2, 3}), wrong_out(shape{3, 2});
  tensor<float> v3(shape{3}), v4(shape{4}), m(shape{2, 3});

  const auto msg = tformer::test::thrown_message<shape_error>([&] { tformer::ops::add(a, b, out); });
  CHECK(contains(msg, "add"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[2, 4]"));
  CHECK_THROWS_AS(tformer::ops::mul(a, a, wrong_out), shape_error);
  CHECK_THROWS_AS(tformer::ops::scale(a, 2.0f, wrong_out), shape_error);
  CHECK_THROWS_AS(tformer::ops::activate<act::relu>(a, wrong_out), shape_error);
  CHECK(contains(tformer::test::thrown_message<shape_error>([&] { tformer::ops::activate<act::silu>(a, wrong_out); }), "silu"));

  // residual_add: x must match the residual, bias must be [n]
  CHECK_THROWS_AS(tformer::ops::residual_add(a, b), shape_error);
  CHECK_THROWS_AS(tformer::ops::residual_add(a, out, v4), shape_error);
  CHECK_THROWS_AS(tformer::ops::residual_add(a, out, m), shape_error);
  const auto bias_msg = tformer::test::thrown_message<shape_error>([&] { tformer::ops::residual_add(a, out, v4); });
  CHECK(contains(bias_msg, "bias"));
  CHECK(contains(bias_msg, "[3]"));
  CHECK_NOTHROW(tformer::ops::residual_add(a, out, v3));

  // dot: two vectors of one length
  CHECK_THROWS_AS(tformer::ops::dot(v3, v4), shape_error);
  CHECK_THROWS_AS(tformer::ops::dot(m, m), shape_error);
  CHECK(contains(tformer::test::thrown_message<shape_error>([&] { tformer::ops::dot(m, v3); }), "dot"));

  // a non-contiguous innermost dimension is refused
  tensor<float> big(shape{2, 6});
  const tensor_view<float> every_other(big.data(), shape{2, 3}, std::array<std::int64_t, 4>{6, 2, 0, 0});
  CHECK_THROWS_AS(tformer::ops::add(every_other, a, out), shape_error);
  const tensor_view<const float> strided_vec(big.data(), shape{3}, std::array<std::int64_t, 4>{2, 0, 0, 0});
  CHECK_THROWS_AS(tformer::ops::dot(strided_vec, v3), shape_error);
}

TEST_CASE("elementwise ops work on views strided in their leading dimensions", "[ops][elementwise]") {
  const auto base_a = random_tensor(shape{4, 6, 10}, -5.0f, 5.0f, 9);
  const auto base_b = random_tensor(shape{4, 6, 10}, -5.0f, 5.0f, 10);
  const auto bias = random_tensor(shape{7}, -1.0f, 1.0f, 11);
  // rows 1..4 of every matrix and columns 2..8 of every row: rows are strided, inner stride 1
  auto sub = [](const tensor<float>& t) { return t.view().slice(1, 1, 5).slice(2, 2, 9); };
  const tensor_view<const float> a = sub(base_a), b = sub(base_b);
  REQUIRE_FALSE(a.is_contiguous());
  const auto pa = tensor<float>::copy_of(a), pb = tensor<float>::copy_of(b);

  tensor<float> out_strided_src(shape{4, 6, 10});
  const tensor_view<float> out = out_strided_src.view().slice(1, 1, 5).slice(2, 2, 9);
  tensor<float> expect(pa.shape());

  tformer::ops::add(a, b, out);
  tformer::ops::add(pa, pb, expect);
  CHECK(bitwise_equal(tensor<float>::copy_of(out), expect));

  tformer::ops::activate<act::gelu_tanh>(a, out);
  tformer::ops::activate<act::gelu_tanh>(pa, expect);
  CHECK(bitwise_equal(tensor<float>::copy_of(out), expect));

  tformer::ops::residual_add(out, b, bias);
  tformer::ops::residual_add(expect, pb, bias);
  CHECK(bitwise_equal(tensor<float>::copy_of(out), expect));
  // elements outside the view are untouched
  CHECK(out_strided_src(0, 0, 0) == 0.0f);
  CHECK(out_strided_src(3, 5, 9) == 0.0f);
  CHECK(out_strided_src(2, 3, 1) == 0.0f);
}

TEST_CASE("elementwise results do not depend on the thread count", "[ops][elementwise]") {
  const auto x = random_tensor(shape{3, 40, 257}, -6.0f, 6.0f, 12);
  const auto y = random_tensor(shape{3, 40, 257}, -6.0f, 6.0f, 13);
  const auto bias = random_tensor(shape{257}, -1.0f, 1.0f, 14);
  auto run = [&](int threads) {
    tformer::set_num_threads(threads);
    tensor<float> s(x.shape()), g(x.shape()), r = y;
    tformer::ops::add(x, y, s);
    tformer::ops::activate<act::silu>(s, g);
    tformer::ops::residual_add(r, g, bias);
    tformer::ops::mul(r, x, s);
    return s;
  };
  const auto one = run(1);
  const auto two = run(2);
  CHECK(bitwise_equal(one, two));
}

TEST_CASE("elementwise ops accept empty tensors", "[ops][elementwise]") {
  tensor<float> a(shape{0, 5}), out(shape{0, 5});
  CHECK_NOTHROW(tformer::ops::add(a, a, out));
  CHECK_NOTHROW(tformer::ops::activate<act::relu>(a, out));
  tensor<float> e(shape{0});
  CHECK(tformer::ops::dot(e, e) == 0.0f);
}
