// quant::quantize_linear, dequantize_linear and dynamic_quantize_linear against ONNX's reference
// evaluator (tests/data/onnx_quant.safetensors, written by tools/make_onnx_quant_fixtures.py):
// every fixture case bit for bit (per tensor, per axis with positive and negative axes, uint8 and
// int8, with and without zero points, ties, saturation, NaN), then round half to even against
// std::nearbyint and under other FPU rounding modes, saturation of infinities (the one place
// tformer follows the operator definition rather than the evaluator), strided views, the zero
// scale rule, and typed errors naming the input that does not fit. Tolerance: none, every check
// is exact.
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/quantize_linear.hpp>

#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
using quant::detail::onnx_quant::round_half_even;

namespace {

io::safetensors_file fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/onnx_quant.safetensors");
}
nlohmann::json cases(const io::safetensors_file& f, const char* op) {
  return nlohmann::json::parse(f.metadata().at("cases")).at(op);
}

/// Index of the first element where a and b differ (bitwise for floats), or -1.
template <class T>
std::int64_t first_difference(const tensor<T>& a, const tensor<T>& b) {
  if (!(a.shape() == b.shape())) return 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(a.data() + i, b.data() + i, sizeof(T)) != 0) return i;
  return -1;
}

template <class Q>
tensor<Q> quantize_case(const io::safetensors_file& f, const std::string& p, bool has_zp, int axis) {
  const auto x = f.load<float>(p + ".x");
  const auto s = f.load<float>(p + ".scale");
  tensor<Q> y(x.shape());
  if (has_zp) {
    const auto z = f.load<Q>(p + ".zp");
    quant::quantize_linear(x.view(), s.view(), z.view(), y.view(), axis);
  } else {
    quant::quantize_linear(x.view(), s.view(), y.view(), axis);
  }
  return y;
}

template <class Q>
tensor<float> dequantize_case(const io::safetensors_file& f, const std::string& p, bool has_zp, int axis) {
  const auto x = f.load<Q>(p + ".x");
  const auto s = f.load<float>(p + ".scale");
  tensor<float> y(x.shape());
  if (has_zp) {
    const auto z = f.load<Q>(p + ".zp");
    quant::dequantize_linear(x.view(), s.view(), z.view(), y.view(), axis);
  } else {
    quant::dequantize_linear(x.view(), s.view(), y.view(), axis);
  }
  return y;
}

}  // namespace

TEST_CASE("quantize_linear equals ONNX's reference evaluator on every fixture case", "[quant][quantize_linear]") {
  const auto f = fixture();
  const auto all = cases(f, "quantize_linear");
  REQUIRE(all.size() >= 12);
  for (const auto& c : all) {
    const std::string p = "ql." + c.at("name").get<std::string>();
    const int axis = c.at("axis").get<int>();
    const bool zp = c.at("zp").get<bool>();
    INFO(p << " axis " << axis);
    if (c.at("type") == "uint8") {
      const auto y = quantize_case<std::uint8_t>(f, p, zp, axis);
      CHECK(first_difference(y, f.load<std::uint8_t>(p + ".y")) == -1);
    } else {
      const auto y = quantize_case<std::int8_t>(f, p, zp, axis);
      CHECK(first_difference(y, f.load<std::int8_t>(p + ".y")) == -1);
    }
  }
}

TEST_CASE("dequantize_linear equals ONNX's reference evaluator on every fixture case", "[quant][quantize_linear]") {
  const auto f = fixture();
  const auto all = cases(f, "dequantize_linear");
  REQUIRE(all.size() >= 6);
  for (const auto& c : all) {
    const std::string p = "dql." + c.at("name").get<std::string>();
    const int axis = c.at("axis").get<int>();
    const bool zp = c.at("zp").get<bool>();
    INFO(p << " axis " << axis);
    const auto y = c.at("type") == "uint8" ? dequantize_case<std::uint8_t>(f, p, zp, axis)
                                           : dequantize_case<std::int8_t>(f, p, zp, axis);
    CHECK(first_difference(y, f.load<float>(p + ".y")) == -1);
  }
}

TEST_CASE("dynamic_quantize_linear equals ONNX's reference evaluator: scale, zero point, values", "[quant][quantize_linear]") {
  const auto f = fixture();
  const auto all = cases(f, "dynamic_quantize_linear");
  REQUIRE(all.size() >= 8);
  for (const auto& c : all) {
    const std::string p = "dyn." + c.at("name").get<std::string>();
    INFO(p);
    const auto x = f.load<float>(p + ".x");
    tensor<std::uint8_t> y(x.shape());
    const auto q = quant::dynamic_quantize_linear(x.view(), y.view());
    CHECK(std::bit_cast<std::uint32_t>(q.scale) == std::bit_cast<std::uint32_t>(f.load<float>(p + ".scale").data()[0]));
    CHECK(q.zero_point == f.load<std::uint8_t>(p + ".zp").data()[0]);
    CHECK(first_difference(y, f.load<std::uint8_t>(p + ".y")) == -1);
  }
}

TEST_CASE("round_half_even is numpy's rint: ties to even, whatever the FPU's rounding mode", "[quant][quantize_linear]") {
  // every half-integer and its neighbours up to 2^12, both signs, then large values and specials
  std::int64_t bad = -1;
  std::int64_t i = 0;
  for (int k = -4096; k <= 4096; ++k, ++i) {
    const float h = static_cast<float>(k) + 0.5f;
    for (const float v : {h, std::nextafter(h, 0.0f), std::nextafter(h, 1e9f), std::nextafter(h, -1e9f),
                          static_cast<float>(k)})
      if (round_half_even(v) != std::nearbyint(v) && bad < 0) bad = i;
  }
  CHECK(bad == -1);
  CHECK(round_half_even(2.5f) == 2.0f);
  CHECK(round_half_even(3.5f) == 4.0f);
  CHECK(round_half_even(-2.5f) == -2.0f);
  CHECK(round_half_even(-0.5f) == 0.0f);
  CHECK(std::signbit(round_half_even(-0.5f)));
  CHECK(round_half_even(8388607.5f) == 8388608.0f);
  CHECK(round_half_even(16777216.0f) == 16777216.0f);
  CHECK(std::isinf(round_half_even(std::numeric_limits<float>::infinity())));
  CHECK(std::isnan(round_half_even(std::numeric_limits<float>::quiet_NaN())));
  // rounding modes other than to-nearest change nearbyint, not round_half_even
  const int saved = std::fegetround();
  for (const int mode : {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    std::fesetround(mode);
    volatile float a = 2.5f, b = -3.5f, c = 0.49999997f;
    CHECK(round_half_even(a) == 2.0f);
    CHECK(round_half_even(b) == -4.0f);
    CHECK(round_half_even(c) == 0.0f);
  }
  std::fesetround(saved);
}

TEST_CASE("quantize_linear saturates: infinities and huge quotients to the range's ends, NaN to qmin",
          "[quant][quantize_linear]") {
  const float inf = std::numeric_limits<float>::infinity();
  tensor<float> x(shape{7});
  const float vals[] = {inf, -inf, 3e38f, -3e38f, std::numeric_limits<float>::quiet_NaN(), 1e10f, -1e10f};
  std::copy(std::begin(vals), std::end(vals), x.data());
  tensor<float> s(shape{}, 1e-30f);  // x / s overflows to inf for the 3e38s
  tensor<std::uint8_t> zu(shape{}, std::uint8_t{3});
  tensor<std::int8_t> zi(shape{}, std::int8_t{-3});
  tensor<std::uint8_t> yu(x.shape());
  tensor<std::int8_t> yi(x.shape());
  quant::quantize_linear(x.view(), s.view(), zu.view(), yu.view());
  quant::quantize_linear(x.view(), s.view(), zi.view(), yi.view());
  const std::uint8_t want_u[] = {255, 0, 255, 0, 0, 255, 0};
  const std::int8_t want_i[] = {127, -128, 127, -128, -128, 127, -128};
  for (int i = 0; i < 7; ++i) {
    INFO("element " << i);
    CHECK(yu.data()[i] == want_u[i]);
    CHECK(yi.data()[i] == want_i[i]);
  }
  // at the edges: 255 - 3 + 0.5 rounds to 252 (even) + 3 = 255; one more saturates
  tensor<float> e(shape{4});
  const float ev[] = {252.5f, 253.0f, -3.5f, -4.0f};
  std::copy(std::begin(ev), std::end(ev), e.data());
  tensor<float> one(shape{}, 1.0f);
  tensor<std::uint8_t> ye(e.shape());
  quant::quantize_linear(e.view(), one.view(), zu.view(), ye.view());
  CHECK(ye.data()[0] == 255);
  CHECK(ye.data()[1] == 255);
  CHECK(ye.data()[2] == 0);  // -4 + 3 = -1 -> 0
  CHECK(ye.data()[3] == 0);
}

TEST_CASE("quantize_linear per axis: negative axes, strided views and scalars agree", "[quant][quantize_linear]") {
  const auto x = test::random_tensor(shape{3, 4, 5}, -50.0f, 50.0f, 7);
  tensor<float> s(shape{4});
  tensor<std::int8_t> z(shape{4});
  for (int c = 0; c < 4; ++c) {
    s.data()[c] = 0.1f + 0.3f * static_cast<float>(c);
    z.data()[c] = static_cast<std::int8_t>(10 * c - 15);
  }
  tensor<std::int8_t> y1(x.shape()), y2(x.shape());
  quant::quantize_linear(x.view(), s.view(), z.view(), y1.view(), 1);
  quant::quantize_linear(x.view(), s.view(), z.view(), y2.view(), -2);
  CHECK(first_difference(y1, y2) == -1);
  // element by element: the channel of (i, c, j) is c
  std::int64_t bad = -1;
  for (std::int64_t i = 0; i < 3 && bad < 0; ++i)
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t j = 0; j < 5; ++j) {
        const float r = round_half_even(x.view()(i, c, j) / s.data()[c]) + static_cast<float>(z.data()[c]);
        const auto want = static_cast<std::int8_t>(std::fmin(127.0f, std::fmax(-128.0f, r)));
        if (y1.view()(i, c, j) != want && bad < 0) bad = (i * 4 + c) * 5 + j;
      }
  CHECK(bad == -1);
  // a strided view (every other row of a wider tensor) gives the contiguous result, and so does dequantize
  tensor<float> wide(shape{3, 4, 10});
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t j = 0; j < 5; ++j) wide.view()(i, c, j) = x.view()(i, c, j);
  const auto xs = wide.view().slice(2, 0, 5);
  tensor<std::int8_t> ywide(shape{3, 4, 10});
  const auto ys = ywide.view().slice(2, 0, 5);
  quant::quantize_linear(tensor_view<const float>(xs), s.view(), z.view(), ys, 1);
  bad = -1;
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t j = 0; j < 5; ++j)
        if (ys(i, c, j) != y1.view()(i, c, j) && bad < 0) bad = (i * 4 + c) * 5 + j;
  CHECK(bad == -1);
  tensor<float> d1(x.shape()), d2(x.shape());
  quant::dequantize_linear(y1.view(), s.view(), z.view(), d1.view(), 1);
  quant::dequantize_linear(y1.view(), s.view(), z.view(), d2.view(), -2);
  CHECK(first_difference(d1, d2) == -1);
  CHECK(d1.view()(1, 2, 3) == (static_cast<float>(y1.view()(1, 2, 3)) - static_cast<float>(z.data()[2])) * s.data()[2]);
  // a one-element 1-D scale is per tensor: any axis, even one out of range, is ignored
  tensor<float> s1(shape{1}, 0.5f);
  tensor<float> s0(shape{}, 0.5f);
  tensor<std::uint8_t> u1(x.shape()), u0(x.shape());
  quant::quantize_linear(x.view(), s1.view(), u1.view(), 7);
  quant::quantize_linear(x.view(), s0.view(), u0.view());
  CHECK(first_difference(u1, u0) == -1);
}

TEST_CASE("quantize_linear rejects zero and non-finite scales; dequantize_linear takes them", "[quant][quantize_linear]") {
  const auto x = test::random_tensor(shape{2, 3}, 1);
  tensor<float> s(shape{3}, 1.0f);
  s.data()[1] = 0.0f;
  tensor<std::uint8_t> y(x.shape());
  const auto msg = test::thrown_message<value_error>([&] { quant::quantize_linear(x.view(), s.view(), y.view(), 1); });
  CHECK(msg.find("y_scale[1]") != std::string::npos);
  CHECK(msg.find("nonzero") != std::string::npos);
  s.data()[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quant::quantize_linear(x.view(), s.view(), y.view(), 1), value_error);
  s.data()[1] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(quant::quantize_linear(x.view(), s.view(), y.view(), 1), value_error);
  // dequantize: a zero scale gives zeros (as in the reference; the fixture's axis0_u8_zero_scale case too)
  s.data()[1] = 0.0f;
  tensor<std::uint8_t> q(x.shape(), std::uint8_t{200});
  tensor<float> d(x.shape());
  quant::dequantize_linear(q.view(), s.view(), d.view(), 1);
  CHECK(d.view()(0, 1) == 0.0f);
  CHECK(d.view()(1, 0) == 200.0f);
}

TEST_CASE("quantize operators throw typed errors naming the input that does not fit", "[quant][quantize_linear]") {
  const auto x = test::random_tensor(shape{2, 3, 4}, 3);
  tensor<std::uint8_t> y(x.shape());
  tensor<float> dq(x.shape());
  auto has = [](const std::string& msg, const char* what) {
    INFO(msg);
    CHECK(msg.find(what) != std::string::npos);
  };
  const tensor<float> s2(shape{3, 1}, 1.0f), s4(shape{4}, 1.0f), s3(shape{3}, 1.0f), empty(shape{0});
  const tensor<std::uint8_t> z4(shape{4}), z3(shape{3}), z1(shape{1});
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), s2.view(), y.view(), 1); }),
      "y_scale must be a scalar or a 1-D tensor");
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), s4.view(), y.view(), 1); }),
      "y_scale [4] must have x.dim(axis) = 3");
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), empty.view(), y.view(), 1); }),
      "y_scale is empty");
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), s3.view(), z4.view(), y.view(), 1); }),
      "y_zero_point [4] must have the shape of y_scale [3]");
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), s3.view(), z1.view(), y.view(), 1); }),
      "y_zero_point [1]");
  has(test::thrown_message<value_error>([&] { quant::quantize_linear(x.view(), s3.view(), y.view(), 3); }),
      "axis 3 is out of range");
  has(test::thrown_message<value_error>([&] { quant::quantize_linear(x.view(), s3.view(), y.view(), -4); }),
      "axis in [-3, 2]");
  tensor<std::uint8_t> small(shape{2, 3, 3});
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(x.view(), s3.view(), small.view(), 1); }),
      "y [2, 3, 3] must have the shape of x [2, 3, 4]");
  has(test::thrown_message<shape_error>([&] { quant::dequantize_linear(y.view(), s4.view(), dq.view(), 1); }),
      "x_scale [4]");
  has(test::thrown_message<shape_error>([&] { quant::dequantize_linear(y.view(), s3.view(), z4.view(), dq.view(), 1); }),
      "x_zero_point [4] must have the shape of x_scale [3]");
  tensor<std::uint8_t> yd(x.shape());
  has(test::thrown_message<shape_error>([&] { quant::dynamic_quantize_linear(x.view(), small.view()); }),
      "dynamic_quantize_linear: y [2, 3, 3]");
  // the inner stride must be 1
  const tensor_view<const float> t(x.data(), shape{2, 3, 2}, {12, 4, 2});
  tensor<std::uint8_t> y2(shape{2, 3, 2});
  has(test::thrown_message<shape_error>([&] { quant::quantize_linear(t, s3.view(), y2.view(), 1); }),
      "x's rows must be contiguous");
}

TEST_CASE("dynamic_quantize_linear: the range includes 0, zeros, and non-finite input", "[quant][quantize_linear]") {
  // 0 quantizes to the zero point exactly, and every value comes back within half a step
  for (std::uint32_t seed = 1; seed <= (test::slow_build ? 4u : 40u); ++seed) {
    const float lo = -static_cast<float>(seed % 7) * 0.9f, hi = static_cast<float>(seed % 5) * 1.3f + 0.01f;
    auto x = test::random_tensor(shape{64}, lo, hi, seed);
    x.data()[5] = 0.0f;
    tensor<std::uint8_t> y(x.shape());
    const auto q = quant::dynamic_quantize_linear(x.view(), y.view());
    INFO("seed " << seed);
    CHECK(y.data()[5] == q.zero_point);
    double worst = 0;
    for (std::int64_t i = 0; i < 64; ++i) {
      const double back = (static_cast<double>(y.data()[i]) - q.zero_point) * q.scale;
      worst = std::max(worst, std::fabs(back - x.data()[i]) / q.scale);
    }
    // half a step; a whole one at most at the range's ends, where the rounded zero point can push
    // the extreme value past 0 or 255 and saturation takes off up to another half step
    CHECK(worst <= 1.0);
  }
  tensor<float> zeros(shape{3, 2});
  tensor<std::uint8_t> yz(zeros.shape(), std::uint8_t{9});
  const auto qz = quant::dynamic_quantize_linear(zeros.view(), yz.view());
  CHECK(qz.scale == 1.0f / 255.0f);
  CHECK(qz.zero_point == 0);
  CHECK(yz.data()[4] == 0);
  tensor<float> bad(shape{2, 2});
  bad.data()[3] = std::numeric_limits<float>::infinity();
  tensor<std::uint8_t> yb(bad.shape());
  const auto msg = test::thrown_message<value_error>([&] { quant::dynamic_quantize_linear(bad.view(), yb.view()); });
  CHECK(msg.find("flat index 3") != std::string::npos);
  bad.data()[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quant::dynamic_quantize_linear(bad.view(), yb.view()), value_error);
}
