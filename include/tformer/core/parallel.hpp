// Threading: one loop primitive (parallel_for) and one place to set the thread count.
// Work is split by item, never by thread, so results do not depend on the thread count. The loops
// run on tformer's own pool (core/thread_pool.hpp): workers spin briefly, then block, so a busy
// machine does not make two threads slower than one.
//
// Thread safety: set_num_threads may be called at any time from any thread (the count is an
// atomic); a loop that has started keeps the count it read. Several user threads may run tformer
// loops at once: one of them has the pool's workers, the others run their loop on themselves.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "../config.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace tformer {

namespace detail {
inline std::atomic<int>& thread_setting() noexcept {
  static std::atomic<int> threads{0};  // 0 = not set: the environment's or the hardware's count
  return threads;
}

// The count when set_num_threads was not called: TFORMER_NUM_THREADS, else OMP_NUM_THREADS (its
// first entry), else the hardware's threads; read once.
inline int default_threads() noexcept {
  static const int n = [] {
    for (const char* name : {"TFORMER_NUM_THREADS", "OMP_NUM_THREADS"})
      if (const char* v = std::getenv(name); v != nullptr) {
        char* end = nullptr;
        const long t = std::strtol(v, &end, 10);
        if (end != v && t >= 1) return static_cast<int>(std::min<long>(t, thread_pool::max_workers + 1));
      }
    return static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, thread_pool::max_workers + 1));
  }();
  return n;
}
}  // namespace detail

/// @brief Sets the number of threads tformer uses (>= 1); loops started afterwards use it.
inline void set_num_threads(int n) {
  if (n < 1) throw value_error("tformer::set_num_threads: thread count must be >= 1, got " + std::to_string(n));
  detail::thread_setting().store(n, std::memory_order_relaxed);
}

/// @brief Threads tformer uses: the value given to set_num_threads, else the environment's
/// TFORMER_NUM_THREADS or OMP_NUM_THREADS, else the hardware's thread count.
inline int num_threads() noexcept {
  const int n = detail::thread_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : detail::default_threads();
}

/// @brief Work (in elements or multiply-adds) below which one more thread costs more than it
/// saves: waking a thread takes microseconds, and far longer when the cores are busy.
inline constexpr std::int64_t parallel_grain = std::int64_t{1} << 15;

/// @brief How many threads a loop of n items costing cost_per_item each will use (>= 1). Kernels
/// that need per-thread scratch take this many slices before calling parallel_for_slots.
inline int loop_threads(std::int64_t n, std::int64_t cost_per_item = parallel_grain) noexcept {
  if (n <= 1 || detail::in_parallel_region()) return 1;
  const std::int64_t total = n * std::max<std::int64_t>(cost_per_item, 1);
  const std::int64_t useful = std::max<std::int64_t>(1, total / parallel_grain);
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>({num_threads(), n, useful})));
}

/// @brief Calls body(i, slot) for every i in [0, n) on up to `threads` threads (from
/// loop_threads); slot in [0, threads) names the running thread, so body may use scratch slice
/// `slot`. Items must be independent. The first exception thrown by a body is rethrown on the
/// calling thread after the loop (the remaining items may or may not run).
template <class F>
void parallel_for_slots(int threads, std::int64_t n, F&& body) {
  if (n <= 0) return;
  if (threads <= 1) {
    for (std::int64_t i = 0; i < n; ++i) body(i, 0);
    return;
  }
  std::exception_ptr failure;
  std::once_flag failed;
  std::atomic<bool> stop{false};
  auto guarded = [&](std::int64_t i, int slot) {
    if (stop.load(std::memory_order_relaxed)) return;
    try {
      body(i, slot);
    } catch (...) {
      std::call_once(failed, [&] { failure = std::current_exception(); });
      stop.store(true, std::memory_order_relaxed);
    }
  };
  detail::thread_pool::instance().run(threads, n, guarded);
  if (failure) std::rethrow_exception(failure);
}

/// @brief Calls body(i) for every i in [0, n), spread over up to num_threads() threads.
/// cost_per_item estimates one item's work (elements touched or multiply-adds); small loops run
/// on fewer threads, tiny ones on the caller alone. Items must be independent of each other, so
/// the result never depends on how many threads ran. The first exception thrown by a body is
/// rethrown on the calling thread after the loop (the remaining items may or may not run).
template <class F>
void parallel_for(std::int64_t n, F&& body, std::int64_t cost_per_item = parallel_grain) {
  parallel_for_slots(loop_threads(n, cost_per_item), n, [&](std::int64_t i, int) { body(i); });
}

}  // namespace tformer
