// The FP32 FMA ceiling of this machine, measured in the same run as the figures set beside it
// (bench_gemm, bench_quant): fma_peak/t:<threads>, FLOPS. Where AVX-512 VNNI is compiled, the
// int8 ceiling too: vnni_peak/t:<threads>, OPS = 2 x the int8 multiply-adds of vpdpbusd per second.
#pragma once

#include <cstdint>
#include <vector>

#include "bench_util.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define TFORMER_BENCH_VNNI_PEAK 1
#endif

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

#if defined(TFORMER_BENCH_VNNI_PEAK)
// int8 ceiling: 12 independent chains of vpdpbusd (64 multiply-adds each) per thread, in named
// variables (an array of them goes through memory).
inline std::int32_t vnni_chains(std::int64_t iters) {
  const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2), a3 = _mm512_set1_epi32(3);
  __m512i a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5), a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7);
  __m512i a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
  for (std::int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_dpbusd_epi32(a0, u, s), a1 = _mm512_dpbusd_epi32(a1, u, s), a2 = _mm512_dpbusd_epi32(a2, u, s);
    a3 = _mm512_dpbusd_epi32(a3, u, s), a4 = _mm512_dpbusd_epi32(a4, u, s), a5 = _mm512_dpbusd_epi32(a5, u, s);
    a6 = _mm512_dpbusd_epi32(a6, u, s), a7 = _mm512_dpbusd_epi32(a7, u, s), a8 = _mm512_dpbusd_epi32(a8, u, s);
    a9 = _mm512_dpbusd_epi32(a9, u, s), a10 = _mm512_dpbusd_epi32(a10, u, s), a11 = _mm512_dpbusd_epi32(a11, u, s);
  }
  const __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                     _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
}

inline void bm_vnni_peak(benchmark::State& state, int threads) {
  constexpr std::int64_t iters = 1 << 20;
  tformer::set_num_threads(threads);
  std::vector<std::int32_t> sink(static_cast<std::size_t>(threads));
  for (auto _ : state) {
    tformer::parallel_for(threads, [&](std::int64_t t) { sink[static_cast<std::size_t>(t)] = vnni_chains(iters); });
    benchmark::DoNotOptimize(sink.data());
  }
  const double ops = 2.0 * 12 * 64 * iters * threads;
  state.counters["OPS"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

}  // namespace tformer::bench
