#include <tformer/simd/activation.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numbers>
#include <tuple>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace act = tformer::simd::act;
using tformer::test::kernel_lengths;
using tformer::test::random_floats;
using tformer::test::ulp_error;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// Scalar double-precision references: the exact function of the float input to far better than
// float precision (the limits at -inf written out where the formula gives inf * 0).
double ref_relu(double x) { return x < 0.0 ? 0.0 : x; }
double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_silu(double x) { return x == -inf ? -0.0 : x / (1.0 + std::exp(-x)); }
double ref_tanh(double x) { return std::tanh(x); }
double ref_gelu(double x) { return x == -inf ? -0.0 : 0.5 * x * std::erfc(-x / std::numbers::sqrt2); }
double ref_gelu_tanh(double x) {
  if (x == -inf) return -0.0;
  const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
  return x / (1.0 + std::exp(-2.0 * u));  // = 0.5 x (1 + tanh(u)), without cancellation
}

// Each activation with its reference and the bound checked, in ulp of the exact result (the
// spacing of floats at it, 2^-149 for subnormal results: no absolute floor is needed). Measured
// maxima over every 4th float with |x| <= 20 (110 for sigmoid and silu), on fma3<avx2> and
// avx512bw / on sse2 (no FMA: Dekker products, and the compiler may or may not contract):
//   sigmoid 0.98 / 0.98, silu 1.08 / 1.11, tanh 1.35 / 1.35 (xsimd's), gelu 1.46 / 1.79,
//   gelu_tanh 1.56 / 1.56.
// The bounds are those rounded up by about 0.2 ulp.
struct relu_case {
  using type = act::relu;
  static double ref(double x) { return ref_relu(x); }
  static constexpr double bound_ulp = 0.0;  // exact
};
struct sigmoid_case {
  using type = act::sigmoid;
  static double ref(double x) { return ref_sigmoid(x); }
  static constexpr double bound_ulp = 1.25;
};
struct silu_case {
  using type = act::silu;
  static double ref(double x) { return ref_silu(x); }
  static constexpr double bound_ulp = 1.25;
};
struct tanh_case {
  using type = act::tanh;
  static double ref(double x) { return ref_tanh(x); }
  static constexpr double bound_ulp = 1.5;
};
struct gelu_case {
  using type = act::gelu;
  static double ref(double x) { return ref_gelu(x); }
  static constexpr double bound_ulp = 2.0;
};
struct gelu_tanh_case {
  using type = act::gelu_tanh;
  static double ref(double x) { return ref_gelu_tanh(x); }
  static constexpr double bound_ulp = 1.75;
};
using cases = std::tuple<relu_case, sigmoid_case, silu_case, tanh_case, gelu_case, gelu_tanh_case>;

template <class F>
void for_each_case(F&& f) {
  std::apply([&](auto... c) { (f(c), ...); }, cases{});
}

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

// Inputs for the sweeps: a dense grid over [-20, 20], random values over [-110, 110] (the far
// tails of sigmoid and silu, subnormal results included), and small magnitudes down to subnormal.
std::vector<float> sweep_inputs() {
  std::vector<float> x;
  constexpr int grid = 1 << 16;
  for (int i = 0; i <= grid; ++i) x.push_back(-20.0f + 40.0f * static_cast<float>(i) / grid);
  const auto wide = random_floats(8192, -110.0f, 110.0f, 42);
  x.insert(x.end(), wide.begin(), wide.end());
  for (float m = 1.0f; m > 1e-44f; m *= 0.37f) {
    x.push_back(m);
    x.push_back(-m);
  }
  return x;
}

// Max error in ulp of act<Act, A> over x (inputs whose exact result is NaN must give NaN).
template <class C, class A>
double max_ulp(const std::vector<float>& x, float* worst_x = nullptr) {
  std::vector<float> out(x.size());
  tformer::simd::activate<typename C::type, A>(x.data(), out.data(), x.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = ulp_error(out[i], C::ref(x[i]));
    if (!(e <= worst)) {  // NaN counts as a failure too
      worst = std::isnan(e) ? inf : e;
      if (worst_x) *worst_x = x[i];
    }
  }
  return worst;
}

// Values where activations saturate, underflow or overflow, and the IEEE specials.
std::vector<float> special_inputs() {
  const float fmax = std::numeric_limits<float>::max(), fmin = std::numeric_limits<float>::min();
  const float dmin = std::numeric_limits<float>::denorm_min(), finf = std::numeric_limits<float>::infinity();
  std::vector<float> x;
  for (float v :
       {0.0f, dmin, fmin, 1e-30f, 0.7f, 3.0f, 15.99f, 16.0f, 20.0f, 88.7f, 100.0f, 1000.0f, 1e30f, fmax, finf})
    x.insert(x.end(), {v, -v});
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  return x;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("activations are within their ulp bounds", "[simd][activation]", tformer::test::archs) {
  using A = TestType;
  const auto sweep = sweep_inputs();
  for_each_case([&](auto c) {
    using C = decltype(c);
    for (std::size_t n : kernel_lengths) {
      const auto x = random_floats(n, -10.0f, 10.0f, static_cast<std::uint32_t>(n));
      INFO(C::type::name << " on " << A::name() << ", n = " << n << ", bound " << C::bound_ulp << " ulp");
      CHECK(max_ulp<C, A>(x) <= C::bound_ulp);
    }
    float at = 0.0f;
    const double worst = max_ulp<C, A>(sweep, &at);
    INFO(C::type::name << " on " << A::name() << " sweep: " << worst << " ulp at x = " << at << ", bound "
                       << C::bound_ulp);
    CHECK(worst <= C::bound_ulp);
  });
}

TEMPLATE_LIST_TEST_CASE("activations saturate without NaN and propagate NaN", "[simd][activation]",
                        tformer::test::archs) {
  using A = TestType;
  const auto x = special_inputs();
  for_each_case([&](auto c) {
    using C = decltype(c);
    std::vector<float> out(x.size());
    tformer::simd::activate<typename C::type, A>(x.data(), out.data(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO(C::type::name << " on " << A::name() << " at x = " << x[i] << ": got " << out[i] << ", exact "
                         << C::ref(x[i]));
      CHECK(std::isnan(out[i]) == std::isnan(x[i]));
      CHECK(ulp_error(out[i], C::ref(x[i])) <= C::bound_ulp);  // infinities must match exactly
    }
  });
  // the cases named in the design: tiny or zero, signed zeros, saturation
  const float finf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  auto one = [](auto f, float v) {
    float out = 0.0f;
    tformer::simd::activate<decltype(f), A>(&v, &out, 1);
    return out;
  };
  CHECK((one(act::sigmoid{}, -100.0f) >= 0.0f && one(act::sigmoid{}, -100.0f) < 1e-40f));
  CHECK(bits(one(act::silu{}, -1000.0f)) == bits(-0.0f));
  CHECK(bits(one(act::silu{}, -finf)) == bits(-0.0f));
  CHECK(bits(one(act::gelu{}, -1e30f)) == bits(-0.0f));
  CHECK(bits(one(act::gelu_tanh{}, -1e30f)) == bits(-0.0f));
  CHECK(one(act::gelu{}, 1e30f) == 1e30f);
  CHECK(one(act::tanh{}, finf) == 1.0f);
  CHECK(one(act::tanh{}, -finf) == -1.0f);
  CHECK(one(act::sigmoid{}, finf) == 1.0f);
  CHECK(std::isnan(one(act::relu{}, nan)));
  CHECK(std::isnan(one(act::sigmoid{}, nan)));
}

TEMPLATE_LIST_TEST_CASE("an activation's result does not depend on the element's position",
                        "[simd][activation]", tformer::test::archs) {
  using A = TestType;
  for_each_case([&](auto c) {
    using Act = typename decltype(c)::type;
    for (std::size_t n : kernel_lengths) {
      INFO(Act::name << " on " << A::name() << ", n = " << n);
      const auto x = random_floats(n, -12.0f, 12.0f, static_cast<std::uint32_t>(n + 99));
      std::vector<float> out(n), in_place(x);
      tformer::simd::activate<Act, A>(x.data(), out.data(), n);
      tformer::simd::activate<Act, A>(in_place.data(), in_place.data(), n);  // out == x
      bool same = true;
      for (std::size_t i = 0; i < n; ++i) {
        float single = 0.0f;  // x[i] alone: one zero-padded tail batch
        tformer::simd::activate<Act, A>(&x[i], &single, 1);
        same = same && bits(single) == bits(out[i]) && bits(in_place[i]) == bits(out[i]);
      }
      CHECK(same);
    }
  });
}

TEST_CASE("the scalar call returns the default architecture's bits", "[simd][activation]") {
  using A = tformer::simd::default_arch;
  auto x = random_floats(1000, -12.0f, 12.0f, 7);
  const auto special = special_inputs();
  x.insert(x.end(), special.begin(), special.end());
  for_each_case([&](auto c) {
    using Act = typename decltype(c)::type;
    std::vector<float> out(x.size());
    tformer::simd::activate<Act, A>(x.data(), out.data(), x.size());
    bool same = true;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float s = Act{}(x[i]);
      same = same && (std::isnan(s) ? std::isnan(out[i]) : bits(s) == bits(out[i]));
    }
    INFO(Act::name);
    CHECK(same);
  });
}

namespace {
struct unnamed {
  float operator()(float x) const { return x; }
};
struct scalar_only {
  static constexpr const char* name = "scalar_only";
  float operator()(float x) const { return x; }
};
}  // namespace

TEST_CASE("activation policies satisfy the activation concept", "[simd][activation]") {
  using tformer::simd::activation;
  STATIC_REQUIRE(activation<act::relu>);
  STATIC_REQUIRE(activation<act::gelu>);
  STATIC_REQUIRE(activation<act::gelu_tanh>);
  STATIC_REQUIRE(activation<act::silu>);
  STATIC_REQUIRE(activation<act::sigmoid>);
  STATIC_REQUIRE(activation<act::tanh>);
  STATIC_REQUIRE_FALSE(activation<unnamed>);
  STATIC_REQUIRE_FALSE(activation<scalar_only>);
  STATIC_REQUIRE_FALSE(activation<int>);
  CHECK(std::strcmp(act::gelu::name, "gelu") == 0);
  CHECK(std::strcmp(act::gelu_tanh::name, "gelu_tanh") == 0);
  CHECK(std::strcmp(act::silu::name, "silu") == 0);
}

// Prints the measured maximum error of every activation on every architecture over a scan of every
// 64th float with |x| <= 20 (110 for sigmoid and silu). Hidden: run with the tag [report].
TEMPLATE_LIST_TEST_CASE("activation accuracy report", "[.][report]", tformer::test::archs) {
  using A = TestType;
  for_each_case([&](auto c) {
    using C = decltype(c);
    const float lim = (std::is_same_v<C, sigmoid_case> || std::is_same_v<C, silu_case>) ? 110.0f : 20.0f;
    std::vector<float> x;
    for (std::uint32_t u = 0; u <= std::bit_cast<std::uint32_t>(lim); u += 64) {
      x.push_back(std::bit_cast<float>(u));
      x.push_back(-std::bit_cast<float>(u));
    }
    float at = 0.0f;
    const double worst = max_ulp<C, A>(x, &at);
    std::printf("%-10s %-10s max %.3f ulp at x = %.9g (bound %.2f)\n", C::type::name, A::name(), worst,
                static_cast<double>(at), C::bound_ulp);
    CHECK(worst <= C::bound_ulp);
  });
}
