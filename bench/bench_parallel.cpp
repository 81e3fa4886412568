// tformer's loop (tformer::parallel_for on its pool, core/thread_pool.hpp) beside an OpenMP
// `parallel for` (libgomp, its default wait policy) running the same items, on an idle machine and
// with another busy thread (a compile job, another process) spinning beside them.
//
// One "pass" is a decode-step-like sequence of `loops` loops of `items` items, each item a fixed
// amount of FMA work (about `us` microseconds on one core). Counters: `speedup` = time of the same
// pass on one thread without any loop (measured first) / this time; with 2 threads on 2 cores the
// ideal is 2, and below 1 a second thread made the pass slower.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "bench_util.hpp"

namespace {

// About `iters` x 8 dependent FMAs in 8 independent chains; the result depends on every step. Not
// inlined, so every engine runs the same machine code.
// Reads a volatile, so that the compiler cannot take two calls with the same arguments for one.
volatile float burn_offset = 0.0f;
[[gnu::noinline]] float burn(std::int64_t iters, float seed) {
  float a[8];
  const float offset = burn_offset;
  for (int c = 0; c < 8; ++c) a[c] = seed + offset + static_cast<float>(c);
  for (std::int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < 8; ++c) a[c] = a[c] * 0.999999f + 1e-7f;
  float s = 0;
  for (float v : a) s += v;
  return s;
}

// FMA steps per microsecond on this core (measured once).
std::int64_t iters_per_us() {
  static const std::int64_t rate = [] {
    const std::int64_t n = 2000000;
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(burn(n, 1.0f));
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(n) / us));
  }();
  return rate;
}

// A thread that keeps one core busy for as long as it lives.
struct busy_neighbour {
  std::atomic<bool> stop{false};
  std::thread t;
  explicit busy_neighbour(bool on) {
    if (on)
      t = std::thread([this] {
        float s = 0;
        while (!stop.load(std::memory_order_relaxed)) s += burn(10000, s);
        benchmark::DoNotOptimize(s);
      });
  }
  ~busy_neighbour() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

enum class engine { pool, openmp };

void bm_loops(benchmark::State& state, engine e, int threads, int loops, int items, int us, bool busy) {
  const std::int64_t iters = iters_per_us() * us;
  std::vector<float> out(static_cast<std::size_t>(items));
  // one thread, no loop at all: the reference time of a pass
  const auto t0 = std::chrono::steady_clock::now();
  for (int l = 0; l < loops; ++l)
    for (int i = 0; i < items; ++i) out[static_cast<std::size_t>(i)] = burn(iters, static_cast<float>(i));
  const double serial = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<float> expected = out;

  tformer::set_num_threads(threads);
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  busy_neighbour neighbour(busy);
  double elapsed = 0;
  std::int64_t passes = 0;
  for (auto _ : state) {
    const auto s0 = std::chrono::steady_clock::now();
    for (int l = 0; l < loops; ++l) {
      if (e == engine::pool) {
        tformer::parallel_for(items, [&](std::int64_t i) { out[static_cast<std::size_t>(i)] = burn(iters, static_cast<float>(i)); },
                              tformer::parallel_grain);
      } else {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < items; ++i) out[static_cast<std::size_t>(i)] = burn(iters, static_cast<float>(i));
#endif
      }
    }
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    ++passes;
  }
  if (out != expected) state.SkipWithError("the loop's results differ from the serial pass");
  state.counters["speedup"] = serial / (elapsed / static_cast<double>(passes));
  state.counters["us_per_loop"] = elapsed / static_cast<double>(passes) / loops * 1e6;
}

void register_all() {
  struct shape {
    const char* name;
    int loops, items, us;
  };
  // decode-like: 200 loops of 16 items of 3 us (a 135M model's linears at one token);
  // compute-bound: 4 loops of 16 items of 2 ms (prefill GEMM tiles)
  const shape shapes[] = {{"decode_like", 200, 16, 3}, {"compute", 4, 16, 2000}};
  for (const auto& s : shapes)
    for (bool busy : {false, true})
      for (int t : {1, 2})
        for (engine e : {engine::pool, engine::openmp}) {
#if !defined(_OPENMP)
          if (e == engine::openmp) continue;
#endif
          const std::string name = std::string("parallel/") + s.name + (busy ? "/busy" : "/idle") + "/t:" +
                                   std::to_string(t) + (e == engine::pool ? "/tformer" : "/openmp");
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            bm_loops(st, e, t, s.loops, s.items, s.us, busy);
          })->UseRealTime()->Unit(benchmark::kMillisecond);
        }
}

}  // namespace

int main(int argc, char** argv) {
  tformer::bench::add_common_context();
  register_all();
  return tformer::bench::run_main(argc, argv);
}
