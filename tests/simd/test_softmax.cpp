// simd::softmax and simd::log_softmax against a double-precision reference, on every kernel
// length and every compiled architecture.
//
// Bound: |got - ref| <= 1e-6 * |ref| + floor, with floor = FLT_MIN for softmax and n * FLT_MIN
// for log_softmax. 1e-6 is ~8 ulp: the kernels' own error (exp ~1 ulp, the sum, one division)
// stays a few ulp because x - max is carried exactly into exp. The floor is there only because
// xsimd's exp flushes results below FLT_MIN to 0, so an output (or, for log_softmax, each term of
// the sum) below FLT_MIN may be lost; it is 0.0 for every output above ~1e-32.
#include <tformer/simd/softmax.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::kernel_lengths;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
constexpr double rel_bound = 1e-6;

// Reference softmax in double, for rows with at least one finite entry (-inf allowed).
std::vector<double> ref_softmax(const std::vector<float>& x) {
  double m = -INFINITY;
  for (float v : x) m = std::max(m, static_cast<double>(v));
  std::vector<double> e(x.size());
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += e[i] = std::exp(static_cast<double>(x[i]) - m);
  for (double& v : e) v /= s;
  return e;
}

// Reference log_softmax in double: (x - m) - log(c + r), the log taken as log(c) + log1p(r / c)
// (c = entries equal to the max, r = the rest) so that values near 0 keep their digits.
std::vector<double> ref_log_softmax(const std::vector<float>& x) {
  double m = -INFINITY;
  for (float v : x) m = std::max(m, static_cast<double>(v));
  double c = 0, r = 0;
  for (float v : x) {
    if (static_cast<double>(v) == m)
      c += 1;
    else
      r += std::exp(static_cast<double>(v) - m);
  }
  const double lse = std::log(c) + std::log1p(r / c);
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = (static_cast<double>(x[i]) - m) - lse;
  return out;
}

// Largest |got - ref| / |ref| seen by the tests (for the report), per kernel and arch.
void report(const char* what, const char* arch, double worst) {
  if (std::getenv("TFORMER_TEST_REPORT")) std::printf("max rel error %-12s %-10s %.3g\n", what, arch, worst);
}

// Checks got against ref within the bound; returns the largest relative error among outputs
// whose |ref| is above 1e-30 (below that the floor governs).
double check_close(const std::vector<float>& got, const std::vector<double>& ref, double floor,
                   const std::string& what) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i];
    if (std::isinf(r)) {
      INFO(what << " i=" << i);
      REQUIRE(g == r);
      continue;
    }
    // Beyond float's range the correctly rounded result is the infinity of the same sign.
    if (std::fabs(r) > FLT_MAX && std::isinf(g) && (g < 0) == (r < 0)) continue;
    const double err = std::fabs(g - r);
    if (!(err <= rel_bound * std::fabs(r) + floor)) {
      INFO(what << " i=" << i << " got " << g << " ref " << r << " err " << err);
      REQUIRE(err <= rel_bound * std::fabs(r) + floor);
    }
    if (std::fabs(r) > 1e-30) worst = std::max(worst, err / std::fabs(r));
  }
  return worst;
}

// Rows of several shapes for length n: moderate, wide (many outputs far below 1), offset,
// and masked (a quarter of the entries -inf, never all).
std::vector<std::vector<float>> test_rows(std::size_t n) {
  const auto seed = static_cast<std::uint32_t>(n);
  std::vector<std::vector<float>> rows = {tformer::test::random_floats(n, -10.0f, 10.0f, seed),
                                          tformer::test::random_floats(n, -60.0f, 60.0f, seed + 1),
                                          tformer::test::random_floats(n, 990.0f, 1010.0f, seed + 2),
                                          tformer::test::random_floats(n, -1e-3f, 1e-3f, seed + 3)};
  auto masked = tformer::test::random_floats(n, -5.0f, 5.0f, seed + 4);
  for (std::size_t i = 1; i < n; i += 4) masked[i] = -inf;
  rows.push_back(masked);
  // A near-uniform row: thousands of alike terms, where a plain running sum loses ~1e-6.
  rows.push_back(tformer::test::random_floats(n, -3e-6f, 3e-6f, seed + 6));
  // A confident row: one entry 25 above the rest, so its log-probability is about -1e-11 * n.
  auto confident = tformer::test::random_floats(n, -1.0f, 1.0f, seed + 5);
  confident[n / 2] = 25.0f;
  rows.push_back(confident);
  return rows;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("softmax matches a double reference", "[simd][softmax]", tformer::test::archs) {
  double worst = 0;
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      std::vector<float> out(n);
      tformer::simd::softmax<TestType>(x.data(), out.data(), n);
      worst = std::max(worst, check_close(out, ref_softmax(x), FLT_MIN, "softmax n=" + std::to_string(n)));
    }
  }
  report("softmax", TestType::name(), worst);
}

TEMPLATE_LIST_TEST_CASE("log_softmax matches a double reference", "[simd][softmax]", tformer::test::archs) {
  double worst = 0;
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      std::vector<float> out(n);
      tformer::simd::log_softmax<TestType>(x.data(), out.data(), n);
      const double floor = static_cast<double>(n) * FLT_MIN;
      worst = std::max(worst, check_close(out, ref_log_softmax(x), floor, "log_softmax n=" + std::to_string(n)));
    }
  }
  report("log_softmax", TestType::name(), worst);
}

TEMPLATE_LIST_TEST_CASE("softmax rows sum to 1 and agree with exp(log_softmax)", "[simd][softmax]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      std::vector<float> p(n), lp(n);
      tformer::simd::softmax<TestType>(x.data(), p.data(), n);
      tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
      double sum = 0;
      for (float v : p) sum += v;
      // Each output is within 1e-6 relative (+ FLT_MIN), so the sum is within 1e-6 of 1.
      CHECK(std::fabs(sum - 1.0) <= 1e-6);
      // exp(lp) carries lp's absolute error |lp| * 1e-6 as a relative error, plus the two bounds.
      for (std::size_t i = 0; i < n; ++i) {
        if (lp[i] == -inf) {
          CHECK(p[i] == 0.0f);
          continue;
        }
        const double e = std::exp(static_cast<double>(lp[i]));
        CHECK(std::fabs(e - p[i]) <= (2e-6 + 1e-6 * std::fabs(lp[i])) * e + 2 * FLT_MIN);
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("an all -inf row gives zeros and -inf, never NaN", "[simd][softmax]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    const std::vector<float> x(n, -inf);
    std::vector<float> p(n, 7.0f), lp(n, 7.0f);
    tformer::simd::softmax<TestType>(x.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(p[i] == 0.0f);
      REQUIRE(lp[i] == -inf);
      REQUIRE(std::exp(lp[i]) == p[i]);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("mixed -inf entries get weight 0", "[simd][softmax]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    // A causal-mask row: the first half visible, the rest -inf; and a single visible entry last.
    auto x = tformer::test::random_floats(n, -3.0f, 3.0f, 7);
    for (std::size_t i = (n + 1) / 2; i < n; ++i) x[i] = -inf;
    std::vector<float> p(n), lp(n);
    tformer::simd::softmax<TestType>(x.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
    check_close(p, ref_softmax(x), FLT_MIN, "causal");
    check_close(lp, ref_log_softmax(x), n * FLT_MIN, "causal log");
    for (std::size_t i = (n + 1) / 2; i < n; ++i) REQUIRE((p[i] == 0.0f && lp[i] == -inf));

    std::vector<float> one(n, -inf);
    one[n - 1] = -1e30f;
    tformer::simd::softmax<TestType>(one.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(one.data(), lp.data(), n);
    for (std::size_t i = 0; i + 1 < n; ++i) REQUIRE((p[i] == 0.0f && lp[i] == -inf));
    REQUIRE(p[n - 1] == 1.0f);
    REQUIRE(lp[n - 1] == 0.0f);
  }
}

TEMPLATE_LIST_TEST_CASE("huge and very negative finite inputs", "[simd][softmax]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (float big : {FLT_MAX, 1e30f, -1e30f, -FLT_MAX}) {
      // A constant huge row is uniform.
      const std::vector<float> flat(n, big);
      std::vector<float> p(n), lp(n);
      tformer::simd::softmax<TestType>(flat.data(), p.data(), n);
      tformer::simd::log_softmax<TestType>(flat.data(), lp.data(), n);
      check_close(p, ref_softmax(flat), FLT_MIN, "flat");
      check_close(lp, ref_log_softmax(flat), n * FLT_MIN, "flat log");
    }
    // Extremes mixed: FLT_MAX twice, the rest spread down to -FLT_MAX (differences overflow).
    auto x = tformer::test::random_floats(n, -1e30f, 1e30f, 3);
    x[0] = -FLT_MAX;
    x[n / 3] = FLT_MAX;
    x[n - 1] = FLT_MAX;
    std::vector<float> p(n), lp(n);
    tformer::simd::softmax<TestType>(x.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
    check_close(p, ref_softmax(x), FLT_MIN, "extremes");
    check_close(lp, ref_log_softmax(x), n * FLT_MIN, "extremes log");
    // Near -88 exp(x) alone would underflow; the shift by the max keeps it exact.
    auto neg = tformer::test::random_floats(n, -95.0f, -85.0f, 4);
    tformer::simd::softmax<TestType>(neg.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(neg.data(), lp.data(), n);
    check_close(p, ref_softmax(neg), FLT_MIN, "negative");
    check_close(lp, ref_log_softmax(neg), n * FLT_MIN, "negative log");
  }
}

TEMPLATE_LIST_TEST_CASE("+inf entries give the limit: uniform over the +inf entries", "[simd][softmax]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    auto x = tformer::test::random_floats(n, -5.0f, 5.0f, 5);
    if (n > 2) x[1] = -inf;
    std::size_t count = 0;
    for (std::size_t i = n / 5; i < n; i += 3, ++count) x[i] = inf;
    std::vector<float> p(n), lp(n);
    tformer::simd::softmax<TestType>(x.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
    const float share = 1.0f / static_cast<float>(count);
    const float log_share = static_cast<float>(-std::log(static_cast<double>(count)));
    for (std::size_t i = 0; i < n; ++i) {
      if (x[i] == inf) {
        REQUIRE(p[i] == share);
        REQUIRE(std::fabs(lp[i] - log_share) <= 1e-6f * std::fabs(log_share));
      } else {
        REQUIRE(p[i] == 0.0f);
        REQUIRE(lp[i] == -inf);
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("a NaN anywhere makes the whole row NaN", "[simd][softmax]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
      for (float rest : {0.5f, -inf, inf}) {
        auto x = tformer::test::random_floats(n, -5.0f, 5.0f, 6);
        if (rest != 0.5f) std::fill(x.begin(), x.end(), rest);
        x[pos] = qnan;
        std::vector<float> p(n), lp(n);
        tformer::simd::softmax<TestType>(x.data(), p.data(), n);
        tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          INFO("n=" << n << " pos=" << pos << " rest=" << rest << " i=" << i);
          REQUIRE(std::isnan(p[i]));
          REQUIRE(std::isnan(lp[i]));
        }
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("out may alias x", "[simd][softmax]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    const auto x = tformer::test::random_floats(n, -8.0f, 8.0f, 8);
    std::vector<float> p(n), lp(n);
    tformer::simd::softmax<TestType>(x.data(), p.data(), n);
    tformer::simd::log_softmax<TestType>(x.data(), lp.data(), n);
    auto a = x, b = x;
    tformer::simd::softmax<TestType>(a.data(), a.data(), n);
    tformer::simd::log_softmax<TestType>(b.data(), b.data(), n);
    REQUIRE(a == p);
    REQUIRE(b == lp);
  }
}
