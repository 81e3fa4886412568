#include <tformer/simd/elementwise.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::kernel_lengths;
using tformer::test::random_floats;
using tformer::test::ulp_error;

namespace {

// Scalar double-precision references. A sum or product of two floats is exact in double, so
// rounding it to float gives the correctly rounded result the kernels must return.
double ref_add(float a, float b) { return static_cast<double>(a) + static_cast<double>(b); }
double ref_mul(float a, float b) { return static_cast<double>(a) * static_cast<double>(b); }
// residual_add's defined order: the sublayer output x + bias is rounded first, then added.
double ref_residual(float r, float x, const float* bias, std::size_t i) {
  const float v = bias ? static_cast<float>(ref_add(x, bias[i])) : x;
  return ref_add(r, v);
}

// The 0.5 ulp bound of add, mul, scale and residual_add: correctly rounded.
constexpr double exact_bound_ulp = 0.5;

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

std::uint32_t seed_for(std::size_t n, std::uint32_t salt) { return static_cast<std::uint32_t>(n * 7919u + salt); }

}  // namespace

TEMPLATE_LIST_TEST_CASE("add, mul and scale are correctly rounded", "[simd][elementwise]", tformer::test::archs) {
  using A = TestType;
  for (std::size_t n : kernel_lengths) {
    INFO("arch " << A::name() << ", n = " << n);
    const auto a = random_floats(n, -10.0f, 10.0f, seed_for(n, 1));
    const auto b = random_floats(n, -10.0f, 10.0f, seed_for(n, 2));
    const float s = 0.3f;
    std::vector<float> sum(n), prod(n), scaled(n);
    tformer::simd::add<A>(a.data(), b.data(), sum.data(), n);
    tformer::simd::mul<A>(a.data(), b.data(), prod.data(), n);
    tformer::simd::scale<A>(a.data(), s, scaled.data(), n);
    double worst = 0.0;
    bool bitwise = true;
    for (std::size_t i = 0; i < n; ++i) {
      worst = std::max({worst, ulp_error(sum[i], ref_add(a[i], b[i])), ulp_error(prod[i], ref_mul(a[i], b[i])),
                        ulp_error(scaled[i], ref_mul(s, a[i]))});
      bitwise = bitwise && sum[i] == static_cast<float>(ref_add(a[i], b[i])) &&
                prod[i] == static_cast<float>(ref_mul(a[i], b[i])) && scaled[i] == static_cast<float>(ref_mul(s, a[i]));
    }
    CHECK(worst <= exact_bound_ulp);
    CHECK(bitwise);
  }
}

TEMPLATE_LIST_TEST_CASE("outputs may alias an input", "[simd][elementwise]", tformer::test::archs) {
  using A = TestType;
  for (std::size_t n : kernel_lengths) {
    INFO("arch " << A::name() << ", n = " << n);
    const auto a = random_floats(n, -10.0f, 10.0f, seed_for(n, 3));
    const auto b = random_floats(n, -10.0f, 10.0f, seed_for(n, 4));
    std::vector<float> x = a;
    tformer::simd::add<A>(x.data(), b.data(), x.data(), n);  // out == a
    std::vector<float> y = b;
    tformer::simd::mul<A>(a.data(), y.data(), y.data(), n);  // out == b
    std::vector<float> z = a;
    tformer::simd::scale<A>(z.data(), -2.0f, z.data(), n);
    std::vector<float> w = b;
    tformer::simd::axpy<A>(0.5f, w.data(), w.data(), n);  // y += alpha * y
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i)
      ok = ok && x[i] == static_cast<float>(ref_add(a[i], b[i])) && y[i] == static_cast<float>(ref_mul(a[i], b[i])) &&
           z[i] == -2.0f * a[i] && w[i] == static_cast<float>(1.5 * static_cast<double>(b[i]));
    CHECK(ok);
  }
}

TEMPLATE_LIST_TEST_CASE("residual_add adds x (+ bias) to the residual stream", "[simd][elementwise]",
                        tformer::test::archs) {
  using A = TestType;
  for (std::size_t n : kernel_lengths) {
    const auto x = random_floats(n, -10.0f, 10.0f, seed_for(n, 5));
    const auto bias = random_floats(n, -1.0f, 1.0f, seed_for(n, 6));
    const auto r0 = random_floats(n, -100.0f, 100.0f, seed_for(n, 7));
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      INFO("arch " << A::name() << ", n = " << n << (b ? ", with bias" : ", no bias"));
      std::vector<float> r = r0;
      tformer::simd::residual_add<A>(x.data(), b, r.data(), n);
      double worst = 0.0;
      bool bitwise = true;
      for (std::size_t i = 0; i < n; ++i) {
        const double ref = ref_residual(r0[i], x[i], b, i);
        worst = std::max(worst, ulp_error(r[i], ref));
        bitwise = bitwise && r[i] == static_cast<float>(ref);
      }
      CHECK(worst <= exact_bound_ulp);
      CHECK(bitwise);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("dot is within the summation error bound", "[simd][elementwise]", tformer::test::archs) {
  using A = TestType;
  constexpr std::size_t W = tformer::simd::fbatch<A>::size;
  for (std::size_t n : kernel_lengths) {
    INFO("arch " << A::name() << ", n = " << n);
    const auto a = random_floats(n, -10.0f, 10.0f, seed_for(n, 8));
    const auto b = random_floats(n, -10.0f, 10.0f, seed_for(n, 9));
    long double ref = 0.0L, abs_sum = 0.0L;
    for (std::size_t i = 0; i < n; ++i) {
      ref += static_cast<long double>(a[i]) * b[i];
      abs_sum += std::fabs(static_cast<long double>(a[i]) * b[i]);
    }
    // Bound: |got - exact| <= depth * 2^-24 * sum |a_i b_i|, depth = the longest chain of roundings:
    // ceil(n / W) accumulations per lane, one product rounding where FMA is not fused, two levels
    // combining the accumulators and log2(W) in the horizontal sum.
    const double depth = std::ceil(static_cast<double>(n) / W) + 1.0 + 2.0 + std::log2(static_cast<double>(W));
    const double bound = depth * std::ldexp(1.0, -24) * static_cast<double>(abs_sum);
    const float got = tformer::simd::dot<A>(a.data(), b.data(), n);
    INFO("got " << got << ", exact " << static_cast<double>(ref) << ", bound " << bound);
    CHECK(std::fabs(static_cast<double>(got) - static_cast<double>(ref)) <= bound);
  }
  // Exactly representable partial sums: the result is exact.
  const std::vector<float> ones(1000, 1.0f), twos(1000, 2.0f);
  CHECK(tformer::simd::dot<A>(ones.data(), twos.data(), 1000) == 2000.0f);
  CHECK(tformer::simd::dot<A>(ones.data(), twos.data(), 0) == 0.0f);
}

TEMPLATE_LIST_TEST_CASE("axpy is within two roundings of alpha x + y", "[simd][elementwise]", tformer::test::archs) {
  using A = TestType;
  const float alpha = -0.7f;
  for (std::size_t n : kernel_lengths) {
    INFO("arch " << A::name() << ", n = " << n);
    const auto x = random_floats(n, -10.0f, 10.0f, seed_for(n, 10));
    const auto y0 = random_floats(n, -10.0f, 10.0f, seed_for(n, 11));
    std::vector<float> y = y0;
    tformer::simd::axpy<A>(alpha, x.data(), y.data(), n);
    // Bound: |got - exact| <= 2 * 2^-24 * (|alpha x_i| + |y_i|), one rounding with a fused FMA and
    // two (product, then sum) without.
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i) {
      const double ax = static_cast<double>(alpha) * x[i];
      const double bound = 2.0 * std::ldexp(1.0, -24) * (std::fabs(ax) + std::fabs(static_cast<double>(y0[i])));
      ok = ok && std::fabs(static_cast<double>(y[i]) - (ax + y0[i])) <= bound;
    }
    CHECK(ok);
  }
}

TEMPLATE_LIST_TEST_CASE("an element's result does not depend on its position", "[simd][elementwise]",
                        tformer::test::archs) {
  using A = TestType;
  for (std::size_t n : kernel_lengths) {
    INFO("arch " << A::name() << ", n = " << n);
    // the same pair at index 0 (full batch or tail) and at n - 1 (tail when n % W != 0)
    auto a = random_floats(n, -10.0f, 10.0f, seed_for(n, 12));
    auto b = random_floats(n, -10.0f, 10.0f, seed_for(n, 13));
    a[n - 1] = a[0];
    b[n - 1] = b[0];
    std::vector<float> sum(n), prod(n), y(b);
    tformer::simd::add<A>(a.data(), b.data(), sum.data(), n);
    tformer::simd::mul<A>(a.data(), b.data(), prod.data(), n);
    tformer::simd::axpy<A>(3.0f, a.data(), y.data(), n);
    CHECK(bits(sum[0]) == bits(sum[n - 1]));
    CHECK(bits(prod[0]) == bits(prod[n - 1]));
    CHECK(bits(y[0]) == bits(y[n - 1]));
  }
}

TEMPLATE_LIST_TEST_CASE("elementwise kernels follow IEEE rules on special values", "[simd][elementwise]",
                        tformer::test::archs) {
  using A = TestType;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> a = {1e30f, -1e30f, inf, -inf, nan, 0.0f, 3e38f};
  const std::vector<float> b = {1e30f, 1e30f, 1.0f, inf, 1.0f, -0.0f, 3e38f};
  const std::size_t n = a.size();
  std::vector<float> sum(n), prod(n);
  tformer::simd::add<A>(a.data(), b.data(), sum.data(), n);
  tformer::simd::mul<A>(a.data(), b.data(), prod.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const float es = a[i] + b[i], ep = a[i] * b[i];
    INFO("arch " << A::name() << ", a = " << a[i] << ", b = " << b[i]);
    CHECK((std::isnan(es) ? std::isnan(sum[i]) : bits(sum[i]) == bits(es)));
    CHECK((std::isnan(ep) ? std::isnan(prod[i]) : bits(prod[i]) == bits(ep)));
  }
}
