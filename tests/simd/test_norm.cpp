// simd::layer_norm, rms_norm and the fused residual forms against a double-precision reference,
// on every kernel length and every compiled architecture.
//
// Bounds (w = weight, b = bias, z = the exact normalized value (x - mean) / sqrt(var + eps)):
//   layer_norm: |got - ref| <= 1e-6 * (|w| * (|z| + 1) + |b|)
//     1e-6 relative to each term of the output, where the normalized value is measured on the
//     row's own scale: z has RMS 1, and the error of the mean is a fraction of the row's standard
//     deviation, not of |z|, so an output whose exact z is near 0 is held to 1e-6 * |w| (about
//     8 ulp of a unit value). The + |b| term is the rounding of the final z * w + b, which can
//     cancel.
//   rms_norm:   |got - ref| <= 1e-6 * |ref| + FLT_MIN    (nothing cancels: x * r * w)
#include <tformer/simd/norm.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::kernel_lengths;
using tformer::test::random_floats;

namespace {

constexpr double rel_bound = 1e-6;

// Reference layer norm in double: the normalized values z (before weight and bias).
std::vector<double> ref_normalized(const std::vector<float>& x, float eps) {
  const double n = static_cast<double>(x.size());
  double mean = 0;
  for (float v : x) mean += v;
  mean /= n;
  double var = 0;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= n;
  // var + eps == 0 (a constant row with eps 0): the kernels' documented choice, z = 0
  const double rstd = var + eps > 0 ? 1.0 / std::sqrt(var + eps) : 0.0;
  std::vector<double> z(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) z[i] = (x[i] - mean) * rstd;
  return z;
}

// Reference RMS norm in double (w may be empty: no weight).
std::vector<double> ref_rms(const std::vector<float>& x, const std::vector<float>& w, float eps) {
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] * r * (w.empty() ? 1.0 : w[i]);
  return out;
}

void report(const char* what, const char* arch, double worst) {
  if (std::getenv("TFORMER_TEST_REPORT")) std::printf("max error %-22s %-10s %.3g\n", what, arch, worst);
}

// Checks a layer_norm output against the bound; returns the largest err / (the bound / 1e-6).
double check_layer_norm(const std::vector<float>& got, const std::vector<float>& x, const std::vector<float>& w,
                        const std::vector<float>& b, float eps, const std::string& what) {
  const auto z = ref_normalized(x, eps);
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double wi = w.empty() ? 1.0 : w[i], bi = b.empty() ? 0.0 : b[i];
    const double ref = z[i] * wi + bi;
    const double scale = std::fabs(wi) * (std::fabs(z[i]) + 1.0) + std::fabs(bi);
    const double err = std::fabs(got[i] - ref);
    if (!(err <= rel_bound * scale)) {
      INFO(what << " i=" << i << " got " << got[i] << " ref " << ref << " err/scale " << err / scale);
      REQUIRE(err <= rel_bound * scale);
    }
    worst = std::max(worst, err / scale);
  }
  return worst;
}

// Checks an rms_norm output; returns the largest relative error among outputs above 1e-30.
double check_rms(const std::vector<float>& got, const std::vector<double>& ref, const std::string& what) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - ref[i]);
    if (!(err <= rel_bound * std::fabs(ref[i]) + FLT_MIN)) {
      INFO(what << " i=" << i << " got " << got[i] << " ref " << ref[i]);
      REQUIRE(err <= rel_bound * std::fabs(ref[i]) + FLT_MIN);
    }
    if (std::fabs(ref[i]) > 1e-30) worst = std::max(worst, err / std::fabs(ref[i]));
  }
  return worst;
}

struct row_case {
  const char* name;
  float lo, hi;
};

// Centered, offset (mean ~ std), far offset (mean 1000x std), huge (sums overflow float) and
// tiny (squares go subnormal) rows.
const row_case row_cases[] = {{"centered", -2.0f, 2.0f},
                              {"offset", -1.0f, 3.0f},
                              {"far offset", 999.0f, 1001.0f},
                              {"huge", -1e25f, 1e25f},
                              {"tiny", -1e-25f, 1e-25f}};
const float epsilons[] = {1e-5f, 1e-6f, 0.0f};

}  // namespace

TEMPLATE_LIST_TEST_CASE("layer_norm matches a double reference", "[simd][norm]", tformer::test::archs) {
  double worst = 0;
  for (std::size_t n : kernel_lengths) {
    const auto w = random_floats(n, -2.0f, 2.0f, 11);
    const auto b = random_floats(n, -1.0f, 1.0f, 12);
    const std::vector<float> none;
    for (const auto& rc : row_cases) {
      for (float eps : epsilons) {
        const auto x = random_floats(n, rc.lo, rc.hi, static_cast<std::uint32_t>(n) + 13);
        const std::string what = std::string(rc.name) + " n=" + std::to_string(n) + " eps=" + std::to_string(eps);
        std::vector<float> out(n);
        // every combination of weight / bias present or absent
        tformer::simd::layer_norm<TestType>(x.data(), w.data(), b.data(), eps, out.data(), n);
        worst = std::max(worst, check_layer_norm(out, x, w, b, eps, what + " w b"));
        tformer::simd::layer_norm<TestType>(x.data(), w.data(), nullptr, eps, out.data(), n);
        worst = std::max(worst, check_layer_norm(out, x, w, none, eps, what + " w"));
        tformer::simd::layer_norm<TestType>(x.data(), nullptr, b.data(), eps, out.data(), n);
        worst = std::max(worst, check_layer_norm(out, x, none, b, eps, what + " b"));
        tformer::simd::layer_norm<TestType>(x.data(), nullptr, nullptr, eps, out.data(), n);
        worst = std::max(worst, check_layer_norm(out, x, none, none, eps, what));
      }
    }
  }
  report("layer_norm", TestType::name(), worst);
}

TEMPLATE_LIST_TEST_CASE("rms_norm matches a double reference", "[simd][norm]", tformer::test::archs) {
  double worst = 0;
  for (std::size_t n : kernel_lengths) {
    const auto w = random_floats(n, -2.0f, 2.0f, 21);
    const std::vector<float> none;
    for (const auto& rc : row_cases) {
      for (float eps : epsilons) {
        const auto x = random_floats(n, rc.lo, rc.hi, static_cast<std::uint32_t>(n) + 23);
        const std::string what = std::string(rc.name) + " n=" + std::to_string(n) + " eps=" + std::to_string(eps);
        std::vector<float> out(n);
        tformer::simd::rms_norm<TestType>(x.data(), w.data(), eps, out.data(), n);
        worst = std::max(worst, check_rms(out, ref_rms(x, w, eps), what + " w"));
        tformer::simd::rms_norm<TestType>(x.data(), nullptr, eps, out.data(), n);
        worst = std::max(worst, check_rms(out, ref_rms(x, none, eps), what));
      }
    }
  }
  report("rms_norm", TestType::name(), worst);
}

TEMPLATE_LIST_TEST_CASE("normalized rows have mean 0 and variance 1, or unit RMS", "[simd][norm]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    if (n == 1) continue;  // a single element has variance 0
    for (const auto& rc : row_cases) {
      const auto x = random_floats(n, rc.lo, rc.hi, static_cast<std::uint32_t>(n) + 31);
      std::vector<float> out(n);
      // eps = 0 so that the exact output has variance (or mean square) exactly 1
      tformer::simd::layer_norm<TestType>(x.data(), nullptr, nullptr, 0.0f, out.data(), n);
      double mean = 0, var = 0;
      for (float v : out) mean += v;
      mean /= static_cast<double>(n);
      for (float v : out) var += (v - mean) * (v - mean);
      var /= static_cast<double>(n);
      // Each output is within 1e-6 * (|z| + 1) of z, and mean |z| <= 1: |mean| <= 2e-6, and the
      // variance moves by at most 2 * 1e-6 * mean(|z| (|z| + 1)) <= 4e-6.
      INFO(rc.name << " n=" << n);
      CHECK(std::fabs(mean) <= 2e-6);
      CHECK(std::fabs(var - 1.0) <= 4e-6);

      tformer::simd::rms_norm<TestType>(x.data(), nullptr, 0.0f, out.data(), n);
      double ms = 0;
      for (float v : out) ms += static_cast<double>(v) * v;
      // Each output within 1e-6 relative: the RMS within 1e-6 of 1.
      CHECK(std::fabs(std::sqrt(ms / static_cast<double>(n)) - 1.0) <= 1e-6);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("rows of alike terms normalize to +-1 within the bound", "[simd][norm]", tformer::test::archs) {
  // Thousands of equal squares are where a plain running sum drifts (1.7e-6 at n = 4097 with
  // SSE2): rms_norm of a constant row c is sign(c), and layer_norm of m +- a alternating is +-1.
  for (std::size_t n : kernel_lengths) {
    for (float c : {0.3f, 0.7f, 1.7f, -2.3f, 1e-3f}) {
      const std::vector<float> x(n, c);
      std::vector<float> out(n);
      tformer::simd::rms_norm<TestType>(x.data(), nullptr, 0.0f, out.data(), n);
      for (float v : out) REQUIRE(std::fabs(v - (c > 0 ? 1.0 : -1.0)) <= rel_bound);
      if (n % 2) continue;  // alternating rows need an even length to have mean m
      std::vector<float> alt(n);
      for (std::size_t i = 0; i < n; ++i) alt[i] = i % 2 ? 5.0f + c : 5.0f - c;
      tformer::simd::layer_norm<TestType>(alt.data(), nullptr, nullptr, 0.0f, out.data(), n);
      const auto z = ref_normalized(alt, 0.0f);  // +-1 up to the rounding of 5 +- c
      for (std::size_t i = 0; i < n; ++i) REQUIRE(std::fabs(out[i] - z[i]) <= rel_bound * (std::fabs(z[i]) + 1.0));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("a constant row normalizes to the bias exactly, never NaN", "[simd][norm]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    const auto w = random_floats(n, -2.0f, 2.0f, 41);
    const auto b = random_floats(n, -1.0f, 1.0f, 42);
    for (float c : {0.0f, 0.1f, -3.7f, 1000.1f, 1e30f, FLT_MAX, -1e-30f}) {
      for (float eps : epsilons) {
        const std::vector<float> x(n, c);
        std::vector<float> out(n);
        tformer::simd::layer_norm<TestType>(x.data(), w.data(), b.data(), eps, out.data(), n);
        INFO("c=" << c << " n=" << n << " eps=" << eps);
        REQUIRE(std::memcmp(out.data(), b.data(), n * sizeof(float)) == 0);
        tformer::simd::layer_norm<TestType>(x.data(), nullptr, nullptr, eps, out.data(), n);
        for (float v : out) REQUIRE(v == 0.0f);
      }
    }
    // An all-zero row under rms_norm gives 0 (with eps = 0 too), not NaN.
    const std::vector<float> zero(n, 0.0f);
    std::vector<float> out(n, 1.0f);
    tformer::simd::rms_norm<TestType>(zero.data(), w.data(), 0.0f, out.data(), n);
    for (float v : out) REQUIRE(v == 0.0f);
  }
}

TEMPLATE_LIST_TEST_CASE("fused residual forms equal add then normalize, bit for bit", "[simd][norm]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    const auto w = random_floats(n, -2.0f, 2.0f, 51);
    const auto b = random_floats(n, -1.0f, 1.0f, 52);
    const auto res0 = random_floats(n, -3.0f, 3.0f, 53);
    const auto delta = random_floats(n, -1.0f, 1.0f, 54);
    std::vector<float> sum(n);
    for (std::size_t i = 0; i < n; ++i) sum[i] = res0[i] + delta[i];
    const float eps = 1e-5f;

    std::vector<float> expect(n), got(n), res = res0;
    tformer::simd::layer_norm<TestType>(sum.data(), w.data(), b.data(), eps, expect.data(), n);
    tformer::simd::add_layer_norm<TestType>(res.data(), delta.data(), w.data(), b.data(), eps, got.data(), n);
    REQUIRE(res == sum);
    REQUIRE(std::memcmp(got.data(), expect.data(), n * sizeof(float)) == 0);

    res = res0;
    tformer::simd::rms_norm<TestType>(sum.data(), w.data(), eps, expect.data(), n);
    tformer::simd::add_rms_norm<TestType>(res.data(), delta.data(), w.data(), eps, got.data(), n);
    REQUIRE(res == sum);
    REQUIRE(std::memcmp(got.data(), expect.data(), n * sizeof(float)) == 0);

    // out may alias the residual (the normalized row then replaces it).
    res = res0;
    tformer::simd::add_rms_norm<TestType>(res.data(), delta.data(), nullptr, eps, res.data(), n);
    tformer::simd::rms_norm<TestType>(sum.data(), nullptr, eps, expect.data(), n);
    REQUIRE(res == expect);
  }
}

TEMPLATE_LIST_TEST_CASE("norms propagate NaN and accept out == x", "[simd][norm]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    auto x = random_floats(n, -2.0f, 2.0f, 61);
    std::vector<float> ln(n), rms(n);
    tformer::simd::layer_norm<TestType>(x.data(), nullptr, nullptr, 1e-5f, ln.data(), n);
    tformer::simd::rms_norm<TestType>(x.data(), nullptr, 1e-5f, rms.data(), n);
    auto a = x, c = x;
    tformer::simd::layer_norm<TestType>(a.data(), nullptr, nullptr, 1e-5f, a.data(), n);
    tformer::simd::rms_norm<TestType>(c.data(), nullptr, 1e-5f, c.data(), n);
    REQUIRE(a == ln);
    REQUIRE(c == rms);

    x[n / 2] = std::numeric_limits<float>::quiet_NaN();
    tformer::simd::layer_norm<TestType>(x.data(), nullptr, nullptr, 1e-5f, ln.data(), n);
    tformer::simd::rms_norm<TestType>(x.data(), nullptr, 1e-5f, rms.data(), n);
    for (std::size_t i = 0; i < n; ++i) REQUIRE((std::isnan(ln[i]) && std::isnan(rms[i])));
  }
}
