// Test helpers shared by the test programs (never shipped in the library headers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <tformer/core/parallel.hpp>
#include <tformer/core/tensor.hpp>
#include <xsimd/xsimd.hpp>

namespace tformer::test {

/// @brief True in unoptimized builds (the -O0 sanitizer build of CI): exhaustive grids there take
/// minutes per test, so tests sweep a smaller grid. Optimized builds run the whole grid.
#if defined(__OPTIMIZE__)
inline constexpr bool slow_build = false;
#else
inline constexpr bool slow_build = true;
#endif

/// Lengths every kernel is tested on: below, at and around the batch sizes, and long tails.
inline const std::vector<std::size_t> kernel_lengths = {1, 7, 15, 16, 17, 100, 1000, 4097};

/// Every xsimd architecture this test program was compiled for (run each kernel on each).
using archs = std::tuple<xsimd::sse2
#if defined(__AVX2__) && defined(__FMA__)
                         ,
                         xsimd::fma3<xsimd::avx2>
#endif
#if defined(__AVX512BW__)
                         ,
                         xsimd::avx512bw
#endif
                         >;

/// n floats uniform in [lo, hi), from a fixed seed.
inline std::vector<float> random_floats(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

/// A tensor of the given shape filled by random_floats (uniform in [lo, hi)).
inline tensor<float> random_tensor(const shape& s, float lo, float hi, std::uint32_t seed) {
  tensor<float> t(s);
  const auto v = random_floats(static_cast<std::size_t>(s.numel()), lo, hi, seed);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}
/// A tensor of the given shape, uniform in [-1, 1).
inline tensor<float> random_tensor(const shape& s, std::uint32_t seed) { return random_tensor(s, -1.0f, 1.0f, seed); }

/// Restores tformer's thread count when a test that changed it ends.
struct thread_guard {
  int saved = num_threads();
  thread_guard() = default;
  thread_guard(const thread_guard&) = delete;
  thread_guard& operator=(const thread_guard&) = delete;
  ~thread_guard() { set_num_threads(saved); }
};

/// Distance of got from the exact value ref, in units of float's spacing at ref.
inline double ulp_error(float got, double ref) {
  if (std::isnan(ref)) return std::isnan(got) ? 0.0 : std::numeric_limits<double>::infinity();
  if (std::isinf(ref)) return static_cast<double>(got) == ref ? 0.0 : std::numeric_limits<double>::infinity();
  const double a = std::fabs(ref);
  // spacing of floats at |ref| (the subnormal spacing below FLT_MIN)
  const double spacing =
      a < std::numeric_limits<float>::min() ? std::ldexp(1.0, -149) : std::ldexp(1.0, std::ilogb(a) - 23);
  return std::fabs(static_cast<double>(got) - ref) / spacing;
}

/// The message of the E that f throws, or "<nothing thrown>" (portable across Catch2 2 and 3).
template <class E, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

}  // namespace tformer::test
