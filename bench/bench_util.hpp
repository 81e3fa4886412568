// Helpers shared by the benchmark programs: deterministic inputs, result checks, run context.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <tformer/config.hpp>
#include <tformer/core/parallel.hpp>
#include <tformer/core/tensor.hpp>
#include <xsimd/xsimd.hpp>

namespace tformer::bench {

/// Fills p[0, n) with uniform values in [lo, hi) from a fixed seed (same inputs every run).
inline void fill_uniform(float* p, std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (std::size_t i = 0; i < n; ++i) p[i] = dist(gen);
}

/// A contiguous float tensor of the given shape filled by fill_uniform.
inline tensor<float> random_tensor(const shape& s, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  tensor<float> t(s);
  fill_uniform(t.data(), static_cast<std::size_t>(t.numel()), seed, lo, hi);
  return t;
}

/// max |a - ref| / max |ref| over n elements (inf when a holds a NaN).
inline double max_rel_diff(const float* a, const float* ref, std::size_t n) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(ref[i]));
    if (std::isnan(d)) return INFINITY;
    diff = std::max(diff, d);
    scale = std::max(scale, std::abs(static_cast<double>(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

/// Times run() when err (max |diff| / max |ref| against a double reference) is within 1e-5, else
/// skips the case naming op; reports BYTES (bytes moved per call, as a rate) and max_rel_err.
template <class Run>
void time_checked_row_op(benchmark::State& state, const char* op, double err, Run&& run, double bytes) {
  if (!(err <= 1e-5)) {
    state.SkipWithError(
        (std::string(op) + " differs from the double reference: max |diff| / max |ref| = " + std::to_string(err)).c_str());
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  state.counters["BYTES"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["max_rel_err"] = err;
}

/// Context lines printed in every program's header (and in the JSON output).
inline void add_common_context() {
  benchmark::AddCustomContext("tformer", version_string);
  benchmark::AddCustomContext("xsimd_arch", xsimd::default_arch::name());
  benchmark::AddCustomContext("tformer_max_threads", std::to_string(num_threads()));
#if defined(__VERSION__)
  benchmark::AddCustomContext("compiler", __VERSION__);
#endif
  if (std::getenv("OMP_PROC_BIND") != nullptr)
    benchmark::AddCustomContext("warning", "OMP_PROC_BIND is set: OpenBLAS worker threads inherit the pinning");
}

/// Runs registered benchmarks with the usual command line (--benchmark_filter, _min_time, ...).
inline int run_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace tformer::bench
