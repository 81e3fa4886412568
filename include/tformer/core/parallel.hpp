// Threading: one loop primitive (parallel_for) and one place to set the thread count.
// Work is split by item, never by thread, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "../config.hpp"
#include "error.hpp"

#if TFORMER_HAS_OPENMP
#include <omp.h>
#endif

namespace tformer {

namespace detail {
inline int& thread_setting() noexcept {
  static int threads = 0;  // 0 = not set: use the OpenMP default / hardware concurrency
  return threads;
}
}  // namespace detail

/// @brief Sets the number of threads tformer uses (>= 1). Not meant to race with running work.
inline void set_num_threads(int n) {
  if (n < 1) throw value_error("tformer::set_num_threads: thread count must be >= 1, got " + std::to_string(n));
  detail::thread_setting() = n;
}

/// @brief Threads tformer uses: the value given to set_num_threads, else OpenMP's default
/// (OMP_NUM_THREADS), else 1 when built without OpenMP.
inline int num_threads() noexcept {
  const int n = detail::thread_setting();
  if (n > 0) return n;
#if TFORMER_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// @brief Work (in elements or multiply-adds) below which one more thread costs more than it
/// saves: waking a thread takes microseconds, and far longer when the cores are busy.
inline constexpr std::int64_t parallel_grain = std::int64_t{1} << 15;

/// @brief Calls body(i) for every i in [0, n), spread over up to num_threads() threads.
/// cost_per_item estimates one item's work (elements touched or multiply-adds); small loops run
/// on fewer threads, tiny ones on the caller alone. Items must be independent of each other, so
/// the result never depends on how many threads ran. The first exception thrown by a body is
/// rethrown on the calling thread after the loop (the remaining items may or may not run).
template <class F>
void parallel_for(std::int64_t n, F&& body, std::int64_t cost_per_item = parallel_grain) {
  if (n <= 0) return;
#if TFORMER_HAS_OPENMP
  const std::int64_t total = n * std::max<std::int64_t>(cost_per_item, 1);
  const std::int64_t useful = std::max<std::int64_t>(1, total / parallel_grain);
  const int threads = static_cast<int>(std::min<std::int64_t>({num_threads(), n, useful}));
  if (threads > 1 && !omp_in_parallel()) {
    std::exception_ptr failure;
    std::once_flag failed;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t i = 0; i < n; ++i) {
      try {
        body(i);
      } catch (...) {
        std::call_once(failed, [&] { failure = std::current_exception(); });
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
#else
  (void)cost_per_item;
#endif
  for (std::int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace tformer
