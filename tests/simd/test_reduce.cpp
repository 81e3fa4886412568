// simd::argmax and simd::top_k against a scalar reference (a full sort), on every kernel length
// and every compiled architecture. Selection is exact: results must match bit for bit.
#include <tformer/simd/reduce.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::kernel_lengths;
using tformer::test::random_floats;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

// The documented order: NaN above everything, then by value, ties to the lower index.
bool before(const std::vector<float>& x, std::size_t a, std::size_t b) {
  const bool na = std::isnan(x[a]), nb = std::isnan(x[b]);
  if (na != nb) return na;
  if (!na && x[a] != x[b]) return x[a] > x[b];
  return a < b;
}

std::size_t ref_argmax(const std::vector<float>& x) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < x.size(); ++i)
    if (before(x, i, best)) best = i;
  return best;
}

std::vector<std::size_t> ref_order(const std::vector<float>& x) {
  std::vector<std::size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return before(x, a, b); });
  return idx;
}

// Rows for length n: distinct values, many ties (a few integers, signed zeros), infinities,
// NaNs, and an ascending row (every element enters the top-k heap).
std::vector<std::vector<float>> test_rows(std::size_t n) {
  const auto seed = static_cast<std::uint32_t>(n) * 7;
  std::vector<std::vector<float>> rows;
  rows.push_back(random_floats(n, -100.0f, 100.0f, seed));
  auto ties = random_floats(n, -3.0f, 3.0f, seed + 1);
  for (auto& v : ties) v = std::round(v);  // includes -0.0f and +0.0f
  rows.push_back(ties);
  auto special = random_floats(n, -1.0f, 1.0f, seed + 2);
  for (std::size_t i = 0; i < n; i += 5) special[i] = i % 2 ? inf : -inf;
  rows.push_back(special);
  auto nans = ties;
  for (std::size_t i = n / 3; i < n; i += 7) nans[i] = qnan;
  rows.push_back(nans);
  std::vector<float> ascending(n);
  for (std::size_t i = 0; i < n; ++i) ascending[i] = static_cast<float>(i);
  rows.push_back(ascending);
  rows.push_back(std::vector<float>(n, -inf));
  return rows;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("argmax returns the first maximum, NaN first", "[simd][reduce]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      INFO("n=" << n);
      REQUIRE(tformer::simd::argmax<TestType>(x.data(), n) == ref_argmax(x));
    }
    // The maximum (or a NaN) at every position of a short row, including the tail lanes.
    if (n <= 100) {
      for (std::size_t p = 0; p < n; ++p) {
        std::vector<float> x(n, 1.0f);
        x[p] = 2.0f;
        REQUIRE(tformer::simd::argmax<TestType>(x.data(), n) == p);
        x[p] = qnan;
        if (p + 1 < n) x[n - 1] = qnan;
        REQUIRE(tformer::simd::argmax<TestType>(x.data(), n) == p);
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("top_k returns the k largest, descending, ties by index", "[simd][reduce]",
                        tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      const auto order = ref_order(x);
      for (std::size_t k : {std::size_t{1}, std::size_t{2}, std::size_t{5}, n / 2, n - 1, n}) {
        if (k < 1 || k > n) continue;
        std::vector<float> values(k);
        std::vector<std::int32_t> indices(k);
        tformer::simd::top_k<TestType>(x.data(), n, k, values.data(), indices.data());
        for (std::size_t j = 0; j < k; ++j) {
          INFO("n=" << n << " k=" << k << " j=" << j);
          REQUIRE(indices[j] == static_cast<std::int32_t>(order[j]));
          const float want = x[order[j]];
          REQUIRE((std::isnan(want) ? std::isnan(values[j]) : values[j] == want));
          if (!std::isnan(want)) REQUIRE(std::signbit(values[j]) == std::signbit(want));
        }
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("top_k with k = 1 agrees with argmax", "[simd][reduce]", tformer::test::archs) {
  for (std::size_t n : kernel_lengths) {
    for (const auto& x : test_rows(n)) {
      float v = 0;
      std::int32_t i = -1;
      tformer::simd::top_k<TestType>(x.data(), n, 1, &v, &i);
      REQUIRE(static_cast<std::size_t>(i) == tformer::simd::argmax<TestType>(x.data(), n));
    }
  }
}
