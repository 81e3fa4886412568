// quant/lowfloat.hpp against its references: every E4M3, E5M2, E8M0 and E2M1 code decodes to
// ml_dtypes' value bit for bit; float -> code conversions equal ml_dtypes' casts (non-saturating)
// and its casts of clamped inputs (saturating) on every midpoint between neighbouring codes and its
// float neighbours, the range ends, subnormals, zeros, infinities and NaN (the fixture
// tests/data/lowfloat_quants.safetensors, written by tools/make_lowfloat_fixtures.py); conversions
// also equal a brute-force nearest-even search written here on a sweep of floats; every compiled
// bulk-decode path equals the scalar table bit for bit.
#include <tformer/quant/lowfloat.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "lowfloat_test_support.hpp"
#include "support.hpp"

using namespace tformer;
using quant::overflow;
namespace lf = tformer::test::lowfloat;
using lf::same_float;

namespace {

/// The fixture's code values for element name (e4m3, e5m2, e8m0, e2m1).
std::vector<float> fixture_values(const std::string& name) {
  const auto t = lf::fixture().load<float>(name + ".values");
  return std::vector<float>(t.data(), t.data() + t.numel());
}

/// Checks encode(x) against the fixture's codes name.suffix for the fixture's inputs name.input.
template <class Encode>
void check_conversions(const std::string& name, const std::string& suffix, Encode encode) {
  const auto x = lf::fixture().load<float>(name + ".input");
  const auto want = lf::fixture().load<std::uint8_t>(name + "." + suffix);
  REQUIRE(want.numel() == x.numel());
  lf::mismatch bad;
  for (std::int64_t i = 0; i < x.numel(); ++i) bad.add(i, encode(x.data()[i]) == want.data()[i]);
  INFO(name << "." << suffix << ": " << bad.count << " of " << x.numel() << " differ; the first at " << bad.first
            << (bad.first >= 0 ? " (x = " + std::to_string(x.data()[bad.first]) + ", got " +
                                     std::to_string(encode(x.data()[bad.first])) + ", want " +
                                     std::to_string(want.data()[bad.first]) + ")"
                               : std::string()));
  REQUIRE(bad.count == 0);
}

/// The nearest-even code of x by brute force over the positive finite codes (values from the
/// fixture, in double), for a format with sign bit `sign`: ties go to the code whose last bit is 0;
/// beyond the largest finite value the virtual next value (max + its step, code max_code + 1) takes
/// part in the search and means overflow (-1 returned).
int nearest_even(float x, const std::vector<float>& values, int max_code, int sign) {
  const double a = std::fabs(static_cast<double>(x));
  const double step = static_cast<double>(values[static_cast<std::size_t>(max_code)]) - values[static_cast<std::size_t>(max_code - 1)];
  int best = 0;
  double best_err = a;
  for (int c = 1; c <= max_code + 1; ++c) {
    const double v = c <= max_code ? static_cast<double>(values[static_cast<std::size_t>(c)])
                                   : static_cast<double>(values[static_cast<std::size_t>(max_code)]) + step;
    const double err = std::fabs(v - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  if (best == max_code + 1) return -1;
  return best | (std::signbit(x) ? sign : 0);
}

}  // namespace

TEST_CASE("every low-float code decodes to ml_dtypes' value", "[quant][lowfloat]") {
  const auto e4 = fixture_values("e4m3"), e5 = fixture_values("e5m2"), e8 = fixture_values("e8m0"), e2 = fixture_values("e2m1");
  REQUIRE(e4.size() == 256);
  REQUIRE(e5.size() == 256);
  REQUIRE(e8.size() == 256);
  REQUIRE(e2.size() == 16);
  lf::mismatch b4, b5, b8, b2;
  for (int c = 0; c < 256; ++c) {
    const auto u = static_cast<std::uint8_t>(c);
    b4.add(c, same_float(quant::from_e4m3(u), e4[u]) && same_float(quant::e4m3_values.v[u], e4[u]));
    b5.add(c, same_float(quant::from_e5m2(u), e5[u]) && same_float(quant::e5m2_values.v[u], e5[u]));
    b8.add(c, same_float(quant::from_e8m0(u), e8[u]) && same_float(quant::e8m0_values.v[u], e8[u]));
    b2.add(c, same_float(quant::from_e2m1(u), e2[u & 15]));
  }
  INFO("first mismatch: e4m3 " << b4.first << ", e5m2 " << b5.first << ", e8m0 " << b8.first << ", e2m1 " << b2.first);
  CHECK(b4.count == 0);
  CHECK(b5.count == 0);
  CHECK(b8.count == 0);
  CHECK(b2.count == 0);
  // the definitions' landmarks
  CHECK(std::isnan(quant::from_e4m3(0x7F)));
  CHECK(std::isnan(quant::from_e4m3(0xFF)));
  CHECK(quant::from_e4m3(0x7E) == 448.0f);
  CHECK(quant::from_e4m3(0x01) == 0x1p-9f);
  CHECK(std::isinf(quant::from_e5m2(0x7C)));
  CHECK(quant::from_e5m2(0xFC) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(quant::from_e5m2(0x7D)));
  CHECK(quant::from_e5m2(0x7B) == 57344.0f);
  CHECK(quant::from_e5m2(0x01) == 0x1p-16f);
  CHECK(quant::from_e8m0(0) == 0x1p-127f);
  CHECK(quant::from_e8m0(127) == 1.0f);
  CHECK(quant::from_e8m0(254) == 0x1p127f);
  CHECK(std::isnan(quant::from_e8m0(255)));
  CHECK(quant::from_e2m1(7) == 6.0f);
  CHECK(std::bit_cast<std::uint32_t>(quant::from_e2m1(8)) == 0x80000000u);  // -0
}

TEST_CASE("every compiled FP8 bulk-decode path equals the scalar table bit for bit", "[quant][lowfloat]") {
  std::vector<std::uint8_t> codes(256 * 3 + 17);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>((i * 37 + i / 256) % 256);
  const auto run = [&](auto tag) {
    using E = decltype(tag);
    using D = quant::fp8_decode<E>;
    std::vector<std::pair<std::string, void (*)(const std::uint8_t*, float*, std::size_t)>> paths{{"scalar", &D::scalar}};
#if defined(TFORMER_LOWFLOAT_AVX2)
    paths.emplace_back("avx2", &D::avx2);
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
    paths.emplace_back("avx512", &D::avx512);
#endif
    paths.emplace_back("fp8_to_float", &quant::fp8_to_float<E>);
    for (const auto& [name, fn] : paths)
      for (const std::size_t off : {std::size_t{0}, std::size_t{1}, std::size_t{7}})
        for (const std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{16}, std::size_t{33}, std::size_t{256 * 3}}) {
          std::vector<float> y(n + 1, -7.0f);
          fn(codes.data() + off, y.data(), n);
          lf::mismatch bad;
          for (std::size_t t = 0; t < n; ++t) bad.add(static_cast<std::int64_t>(t), same_float(y[t], quant::from_fp8<E>(codes[off + t])));
          INFO(E::name << " path " << name << " offset " << off << " n " << n << ": first mismatch " << bad.first);
          REQUIRE(bad.count == 0);
          REQUIRE(y[n] == -7.0f);  // nothing written past n
        }
    INFO("best path " << quant::lowfloat_best_path);
    CHECK(std::string(quant::lowfloat_best_path).size() > 0);
  };
  run(quant::e4m3{});
  run(quant::e5m2{});
}

TEST_CASE("float -> E4M3 / E5M2 / E8M0 / E2M1 equals ml_dtypes, saturating and not", "[quant][lowfloat]") {
  check_conversions("e4m3", "nonsat", [](float x) { return quant::to_e4m3(x); });
  check_conversions("e4m3", "sat", [](float x) { return quant::to_e4m3(x, overflow::saturate); });
  check_conversions("e5m2", "nonsat", [](float x) { return quant::to_e5m2(x); });
  check_conversions("e5m2", "sat", [](float x) { return quant::to_e5m2(x, overflow::saturate); });
  check_conversions("e8m0", "nonsat", [](float x) { return quant::to_e8m0(x); });
  check_conversions("e8m0", "sat", [](float x) { return quant::to_e8m0(x, overflow::saturate); });
  check_conversions("e2m1", "sat", [](float x) { return quant::to_e2m1(x); });
  // the bulk form is the same conversion
  const auto x = lf::fixture().load<float>("e4m3.input");
  const auto want = lf::fixture().load<std::uint8_t>("e4m3.sat");
  std::vector<std::uint8_t> got(static_cast<std::size_t>(x.numel()));
  quant::float_to_fp8<quant::e4m3>(x.data(), got.data(), got.size(), overflow::saturate);
  CHECK(std::equal(got.begin(), got.end(), want.data()));
}

TEST_CASE("low-float conversions: round trips, NaN, infinities, overflow, ties", "[quant][lowfloat]") {
  for (int c = 0; c < 256; ++c) {
    const auto u = static_cast<std::uint8_t>(c);
    for (const overflow mode : {overflow::non_saturating, overflow::saturate}) {
      INFO("code " << c << " saturate " << (mode == overflow::saturate));
      REQUIRE(quant::to_e4m3(quant::from_e4m3(u), mode) == u);  // NaN codes: NaN of that sign
      if ((c & 0x7F) <= 0x7C) REQUIRE(quant::to_e5m2(quant::from_e5m2(u), mode) == (mode == overflow::saturate && (c & 0x7F) == 0x7C ? (c & 0x80) | 0x7B : c));
      if (c < 255) REQUIRE(quant::to_e8m0(quant::from_e8m0(u), mode) == u);
    }
    if (c < 16) REQUIRE(quant::to_e2m1(quant::from_e2m1(u)) == u);
  }
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // NaN stays NaN, with its sign
  CHECK(quant::to_e4m3(nan) == 0x7F);
  CHECK(quant::to_e4m3(-nan, overflow::saturate) == 0xFF);
  CHECK(quant::to_e5m2(nan, overflow::saturate) == 0x7E);
  CHECK(quant::to_e8m0(nan, overflow::saturate) == 0xFF);
  CHECK(quant::to_e2m1(nan) == 0x0);  // E2M1 has no NaN
  // infinities and overflow
  CHECK(quant::to_e4m3(inf) == 0x7F);
  CHECK(quant::to_e4m3(-inf, overflow::saturate) == 0xFE);
  CHECK(quant::to_e4m3(464.0f) == 0x7E);  // the tie between 448 and 480 goes to the even 448
  CHECK(quant::to_e4m3(std::nextafter(464.0f, 1e9f)) == 0x7F);
  CHECK(quant::to_e4m3(std::nextafter(464.0f, 1e9f), overflow::saturate) == 0x7E);
  CHECK(quant::to_e5m2(inf) == 0x7C);
  CHECK(quant::to_e5m2(-inf, overflow::saturate) == 0xFB);
  CHECK(quant::to_e5m2(61440.0f) == 0x7C);  // the tie between 57344 (odd) and 65536 goes up: inf
  CHECK(quant::to_e5m2(std::nextafter(61440.0f, 0.0f)) == 0x7B);
  CHECK(quant::to_e5m2(61440.0f, overflow::saturate) == 0x7B);
  CHECK(quant::to_e2m1(7.0f) == 7);
  CHECK(quant::to_e2m1(-inf) == 15);
  CHECK(quant::to_e8m0(inf) == 0xFF);
  CHECK(quant::to_e8m0(inf, overflow::saturate) == 0xFE);
  CHECK(quant::to_e8m0(0x1.8p127f) == 0xFF);
  CHECK(quant::to_e8m0(0x1.8p127f, overflow::saturate) == 0xFE);
  // zeros, subnormals, the E8M0 bottom
  CHECK(quant::to_e4m3(-0.0f) == 0x80);
  CHECK(quant::to_e4m3(0x1p-10f) == 0x00);           // half the smallest subnormal: ties to even 0
  CHECK(quant::to_e4m3(-0x1.000002p-10f) == 0x81);  // just above it
  CHECK(quant::to_e4m3(0x1.8p-9f) == 0x02);          // 1.5 steps: ties to even 2
  CHECK(quant::to_e5m2(0x1p-17f) == 0x00);
  CHECK(quant::to_e2m1(0.25f) == 0);
  CHECK(quant::to_e2m1(0.75f) == 2);
  CHECK(quant::to_e2m1(2.5f) == 4);
  CHECK(quant::to_e2m1(5.0f) == 6);
  CHECK(quant::to_e8m0(0.0f) == 0xFF);
  CHECK(quant::to_e8m0(-1.0f) == 0xFF);
  CHECK(quant::to_e8m0(0x1p-149f) == 0);
  CHECK(quant::to_e8m0(0x1.8p-127f) == 1);
  CHECK(quant::to_e8m0(0x1.2p-127f) == 0);  // nearest (ml_dtypes rounds float subnormals above 2^-127 up)
  CHECK(quant::to_e8m0(3.0f) == 129);  // 1.5 * 2: ties up, to 4
}

TEST_CASE("float -> E4M3 / E5M2 / E2M1 is the nearest code, ties to even, on a sweep of floats", "[quant][lowfloat]") {
  const auto e4 = fixture_values("e4m3"), e5 = fixture_values("e5m2"), e2 = fixture_values("e2m1");
  const std::uint32_t stride = test::slow_build ? 40009 : 4001;
  lf::mismatch b4, b5, b2;
  std::int64_t i = 0;
  // every stride-th float from 2^-20 to 2^17 (both signs), and every float near the E2M1 grid
  for (std::uint32_t u = std::bit_cast<std::uint32_t>(0x1p-20f); u < std::bit_cast<std::uint32_t>(0x1p17f); u += stride, ++i) {
    for (const float x : {std::bit_cast<float>(u), -std::bit_cast<float>(u)}) {
      const int w4 = nearest_even(x, e4, 0x7E, 0x80), w5 = nearest_even(x, e5, 0x7B, 0x80), w2 = nearest_even(x, e2, 7, 8);
      b4.add(i, quant::to_e4m3(x) == (w4 < 0 ? (std::signbit(x) ? 0xFF : 0x7F) : w4));
      b5.add(i, quant::to_e5m2(x) == (w5 < 0 ? (std::signbit(x) ? 0xFC : 0x7C) : w5));
      b2.add(i, quant::to_e2m1(x) == (w2 < 0 ? (std::signbit(x) ? 15 : 7) : w2));
    }
  }
  INFO(i << " floats; first mismatch: e4m3 " << b4.first << ", e5m2 " << b5.first << ", e2m1 " << b2.first);
  CHECK(b4.count == 0);
  CHECK(b5.count == 0);
  CHECK(b2.count == 0);
}
