// The FP32 FMA ceiling of this machine, measured in the same run as the figures set beside it
// (bench_gemm, bench_quant): fma_peak/t:<threads>, FLOPS.
#pragma once

#include <cstdint>
#include <vector>

#include "bench_util.hpp"

namespace tformer::bench {

// FP32 FMA ceiling: 12 independent chains of xsimd FMAs per thread (enough to cover the latency
// of two FMA pipes), no memory traffic.
template <class A = xsimd::default_arch>
float fma_chains(std::int64_t iters) {
  using batch = xsimd::batch<float, A>;
  const batch mul(0.999999f), add(1e-7f);
  // Distinct starting values, or the compiler merges the identical chains into one.
  batch a0(0.f), a1(1.f), a2(2.f), a3(3.f), a4(4.f), a5(5.f), a6(6.f), a7(7.f), a8(8.f), a9(9.f), a10(10.f), a11(11.f);
  for (std::int64_t i = 0; i < iters; ++i) {
    a0 = xsimd::fma(a0, mul, add), a1 = xsimd::fma(a1, mul, add), a2 = xsimd::fma(a2, mul, add);
    a3 = xsimd::fma(a3, mul, add), a4 = xsimd::fma(a4, mul, add), a5 = xsimd::fma(a5, mul, add);
    a6 = xsimd::fma(a6, mul, add), a7 = xsimd::fma(a7, mul, add), a8 = xsimd::fma(a8, mul, add);
    a9 = xsimd::fma(a9, mul, add), a10 = xsimd::fma(a10, mul, add), a11 = xsimd::fma(a11, mul, add);
  }
  return xsimd::hadd(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)));
}

inline void bm_fma_peak(benchmark::State& state, int threads) {
  constexpr std::int64_t iters = 1 << 20;
  tformer::set_num_threads(threads);
  std::vector<float> sink(static_cast<std::size_t>(threads));
  for (auto _ : state) {
    tformer::parallel_for(threads, [&](std::int64_t t) { sink[static_cast<std::size_t>(t)] = fma_chains(iters); });
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops = 2.0 * 12 * xsimd::batch<float>::size * iters * threads;
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace tformer::bench
