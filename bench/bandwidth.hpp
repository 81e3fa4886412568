// Memory bandwidth probe kernels, shared by bench_memory and by the programs that set their own
// figures beside it in the same run (bench_softmax, bench_norm).
//
// read (sum), copy and triad (a = b + s*c) over buffers of a given size, reported as BYTES = bytes
// the kernel names per pass / time. The STREAM convention is used: copy counts 2 and triad 3
// arrays, not the write-allocate read of the destination that the hardware also performs (about
// +50% / +33% real traffic out of cache). With 2 threads each thread owns a fixed half of every
// buffer, so it stays in that core's cache. Small buffers are swept several times inside one
// parallel region (>= 4 MiB moved per region), so the figure is bandwidth, not the ~1-2 us it
// takes to start and join the threads.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace tformer::bench::bandwidth {

using batch = xsimd::batch<float>;
constexpr std::size_t W = batch::size;
constexpr std::size_t unroll = 8;  // floats per step: unroll * W (8 zmm = 512 bytes)

// Sum of p[0, n), n a multiple of unroll * W; 8 accumulators hide the add latency.
inline float read_sum(const float* p, std::size_t n) {
  batch s0(0.f), s1(0.f), s2(0.f), s3(0.f), s4(0.f), s5(0.f), s6(0.f), s7(0.f);
  for (std::size_t i = 0; i < n; i += unroll * W) {
    s0 += batch::load_aligned(p + i), s1 += batch::load_aligned(p + i + W);
    s2 += batch::load_aligned(p + i + 2 * W), s3 += batch::load_aligned(p + i + 3 * W);
    s4 += batch::load_aligned(p + i + 4 * W), s5 += batch::load_aligned(p + i + 5 * W);
    s6 += batch::load_aligned(p + i + 6 * W), s7 += batch::load_aligned(p + i + 7 * W);
  }
  return xsimd::hadd(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)));
}

// dst = src (explicit vector loads and stores: no memcpy, whose large-size path uses other stores).
inline void copy(const float* src, float* dst, std::size_t n) {
  for (std::size_t i = 0; i < n; i += W) batch::load_aligned(src + i).store_aligned(dst + i);
}

// a = b + s * c
inline void triad(float* a, const float* b, const float* c, float s, std::size_t n) {
  const batch sv(s);
  for (std::size_t i = 0; i < n; i += W)
    xsimd::fma(sv, batch::load_aligned(c + i), batch::load_aligned(b + i)).store_aligned(a + i);
}

enum class kernel { read, copy, triad };
constexpr const char* kernel_name(kernel k) {
  return k == kernel::read ? "read" : k == kernel::copy ? "copy" : "triad";
}
constexpr int arrays(kernel k) { return k == kernel::read ? 1 : k == kernel::copy ? 2 : 3; }

inline void bm_memory(benchmark::State& state, kernel k, std::size_t bytes, int threads) {
  const std::size_t n = bytes / sizeof(float);
  const std::size_t chunk = n / static_cast<std::size_t>(threads);  // per thread, a multiple of unroll * W
  std::vector<tformer::tensor<float>> buf;
  for (int i = 0; i < arrays(k); ++i)
    buf.push_back(tformer::bench::random_tensor({static_cast<std::int64_t>(n)}, 10u + static_cast<unsigned>(i)));
  float* a = buf[0].data();
  const float* b = buf.size() > 1 ? buf[1].data() : nullptr;
  const float* c = buf.size() > 2 ? buf[2].data() : nullptr;
  tformer::set_num_threads(threads);
  struct alignas(64) padded_sum {  // one cache line per thread: no false sharing between sweeps
    float value = 0;
  };
  std::array<padded_sum, 2> sums{};
  const std::size_t moved =
      static_cast<std::size_t>(arrays(k)) * chunk * static_cast<std::size_t>(threads) * sizeof(float);
  const std::size_t sweeps = std::max<std::size_t>(1, (std::size_t{4} << 20) / moved);

  const auto pass = [&](std::size_t repeat) {
    tformer::parallel_for(threads, [&](std::int64_t t) {
      const std::size_t off = static_cast<std::size_t>(t) * chunk;
      for (std::size_t r = 0; r < repeat; ++r) {
        switch (k) {
          case kernel::read:
            sums[static_cast<std::size_t>(t)].value = read_sum(a + off, chunk);
            break;
          case kernel::copy:
            copy(b + off, a + off, chunk);
            break;
          case kernel::triad:
            triad(a + off, b + off, c + off, 0.5f, chunk);
            break;
        }
        benchmark::ClobberMemory();  // every sweep really reads the buffer again
      }
    });
  };

  // Check one pass against a scalar loop before timing.
  pass(1);
  bool ok = true;
  if (k == kernel::read) {
    double ref = 0, got = 0;
    for (std::size_t i = 0; i < chunk * static_cast<std::size_t>(threads); ++i) ref += a[i];
    for (int t = 0; t < threads; ++t) got += sums[static_cast<std::size_t>(t)].value;
    ok = std::abs(got - ref) <= 1e-3 * std::max(1.0, static_cast<double>(chunk));
  } else {
    for (std::size_t i = 0; i < n && ok; ++i) ok = a[i] == (k == kernel::copy ? b[i] : std::fma(0.5f, c[i], b[i]));
  }
  if (!ok) {
    state.SkipWithError((std::string(kernel_name(k)) + " produced a wrong result").c_str());
    return;
  }

  for (auto _ : state) {
    pass(sweeps);
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.counters["BYTES"] = benchmark::Counter(
      static_cast<double>(moved * sweeps), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

/// Registers mem/<kernel>/<KiB per buffer>KiB/t:<threads>.
inline void add(kernel k, std::size_t bytes_per_buffer, int threads) {
  const std::string name = std::string("mem/") + kernel_name(k) + "/" + std::to_string(bytes_per_buffer >> 10) +
                           "KiB/t:" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), bm_memory, k, bytes_per_buffer, threads)->UseRealTime();
}

}  // namespace tformer::bench::bandwidth
