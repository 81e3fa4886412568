// tformer's worker threads: one process-wide pool that runs the items of one loop at a time on the
// calling thread plus up to (threads - 1) workers.
//
// Why not OpenMP: a team of OpenMP threads spins while it waits (GOMP_SPINCOUNT, ~0.3 s by
// default), so on a machine whose cores are busy the spinning worker takes the core its partner
// needs, and 2 threads run 2-4x slower than 1; OMP_WAIT_POLICY=passive cures that but makes each of
// a decode step's ~200 loops pay a futex wake-up. This pool
//   - spins for a short while (spin_time, 50 us) after each loop, so back-to-back loops of one
//     forward pass find their workers awake, then sleeps on a condition variable (re-checking
//     every recheck_time, so that a lost notification can never leave a worker asleep);
//   - hands items out dynamically (an atomic counter, in chunks): a worker that the OS has not
//     scheduled yet simply takes no items, and the caller, which always works too, runs them. A
//     loop therefore never waits for a thread that has not started; at worst it waits for the one
//     chunk a descheduled worker holds.
// Items are independent (core/parallel.hpp), so the result never depends on which thread ran an
// item.
//
// One loop at a time: a second user thread that starts a loop while the pool is busy runs its
// loop on itself alone (results are the same). A loop started from inside a loop body runs inline.
// The workers are created on first use and joined when the program exits.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace tformer::detail {

/// One pause instruction in a spin loop (lets the sibling hyper-thread run, saves power).
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// True on a thread while it runs a loop's items (a worker, or a caller inside its own loop).
inline bool& in_parallel_region() noexcept {
  thread_local bool inside = false;
  return inside;
}

/// Spins until pred() holds or `budget` has passed; true when pred() held.
template <class Pred>
bool spin_until(Pred&& pred, std::chrono::microseconds budget) noexcept {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      spin_pause();
    }
    if (std::chrono::steady_clock::now() - start > budget) return pred();
  }
}

class thread_pool {
 public:
  /// How long a worker (or a caller waiting for workers) spins before it blocks.
  static constexpr std::chrono::microseconds spin_time{50};
  /// A sleeping thread also re-checks its condition this often, so that no missed notification
  /// can leave it asleep for good. (A worker reads the wake-up counter when it first runs, which on
  /// a busy machine can be long after it was created: one that first ran after the pool's stop had
  /// bumped the counter used to wait for a bump that never came, and the program hung at exit.
  /// The wake condition includes stop_ for that reason.)
  static constexpr std::chrono::milliseconds recheck_time{10};
  /// Most workers the pool creates (a loop asks for threads - 1 of them).
  static constexpr int max_workers = 255;

  /// The process-wide pool.
  static thread_pool& instance() {
    static thread_pool pool;
    return pool;
  }

  thread_pool() = default;
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard lock(submit_);
      stop_.store(true, std::memory_order_relaxed);
      wake_workers();
    }
    for (auto& w : workers_) w.join();
  }

  /// Runs body(i, slot) for every i in [0, n) on the caller (slot 0) and up to threads - 1
  /// workers (slots 1 ...); each slot is used by one thread at a time. Returns when every item has
  /// run. body must not throw (core/parallel.hpp catches for it).
  template <class F>
  void run(int threads, std::int64_t n, F& body) {
    if (n <= 0) return;
    if (threads <= 1 || n == 1 || in_parallel_region()) {  // (the caller may hold submit_ already)
      run_inline(n, body);
      return;
    }
    std::unique_lock lock(submit_, std::try_to_lock);
    if (!lock.owns_lock()) {  // another user thread's loop has the workers
      run_inline(n, body);
      return;
    }
    const int helpers = std::min({threads - 1, max_workers, static_cast<int>(std::min<std::int64_t>(n - 1, max_workers))});
    try {
      while (static_cast<int>(workers_.size()) < helpers) workers_.emplace_back([this] { work(); });
    } catch (...) {  // the system refused a thread: go on with those there are
    }
    const auto limit = static_cast<std::uint64_t>(std::min(helpers, static_cast<int>(workers_.size())));

    // the job, read by workers only after they have joined it (the acquire of the join below)
    call_ = [](void* f, std::int64_t i, int slot) { (*static_cast<F*>(f))(i, slot); };
    body_ = &body;
    n_ = n;
    chunk_ = std::max<std::int64_t>(1, n / (static_cast<std::int64_t>(limit + 1) * 8));
    next_.store(0, std::memory_order_relaxed);
    left_.store(0, std::memory_order_relaxed);
    generation_ += 1;
    state_.store(generation_ << 32 | open_bit | limit << limit_shift, std::memory_order_release);
    wake_workers();

    in_parallel_region() = true;
    take_items(0);
    in_parallel_region() = false;

    // close the job: no worker joins after this; wait for those that joined
    const std::uint64_t s = state_.fetch_and(~open_bit, std::memory_order_acq_rel);
    const auto joined = static_cast<std::uint32_t>(s & slot_mask);
    auto all_left = [&] { return left_.load(std::memory_order_seq_cst) == joined; };
    if (!spin_until(all_left, spin_time)) {
      std::unique_lock sleep(sleep_);
      caller_sleeping_.store(true, std::memory_order_seq_cst);
      while (!all_left()) done_.wait_for(sleep, recheck_time);
      caller_sleeping_.store(false, std::memory_order_relaxed);
    }
  }

  /// Workers created so far.
  int workers() const {
    std::lock_guard lock(submit_);
    return static_cast<int>(workers_.size());
  }

 private:
  // state_ = generation << 32 | open_bit | slots a worker may take << limit_shift | slots taken
  static constexpr std::uint64_t open_bit = std::uint64_t{1} << 31;
  static constexpr int limit_shift = 16;
  static constexpr std::uint64_t slot_mask = 0xffff;

  template <class F>
  static void run_inline(std::int64_t n, F& body) {
    const bool outer = in_parallel_region();
    in_parallel_region() = true;
    for (std::int64_t i = 0; i < n; ++i) body(i, 0);
    in_parallel_region() = outer;
  }

  void take_items(int slot) {
    for (;;) {
      const std::int64_t i0 = next_.fetch_add(chunk_, std::memory_order_relaxed);
      if (i0 >= n_) return;
      const std::int64_t i1 = std::min(n_, i0 + chunk_);
      for (std::int64_t i = i0; i < i1; ++i) call_(body_, i, slot);
    }
  }

  // A worker joins the open job if it has a free slot. Everything it checks is in the one word
  // state_, and the generation makes a stale view of an earlier job fail the exchange.
  bool try_join(int& slot) {
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (!(s & open_bit) || (s & slot_mask) >= ((s >> limit_shift) & (slot_mask >> 1))) return false;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        slot = static_cast<int>(s & slot_mask) + 1;
        return true;
      }
    }
  }
  // Sleeping (after the spin) uses one mutex and two condition variables. The counters are
  // sequentially consistent, so of "a worker announces it sleeps, then checks wake_" and "the
  // caller bumps wake_, then checks for sleepers" one always sees the other: no wake-up is lost.
  void wake_workers() {
    wake_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard sleep(sleep_);
      wakeup_.notify_all();
    }
  }

  void work() {
    in_parallel_region() = true;
    std::uint32_t seen = wake_.load(std::memory_order_acquire);
    for (;;) {
      auto woken = [&] { return wake_.load(std::memory_order_seq_cst) != seen || stop_.load(std::memory_order_seq_cst); };
      if (!spin_until(woken, spin_time)) {
        std::unique_lock sleep(sleep_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (!woken()) wakeup_.wait_for(sleep, recheck_time);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = wake_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      int slot = 0;
      if (try_join(slot)) {
        take_items(slot);
        left_.fetch_add(1, std::memory_order_seq_cst);
        if (caller_sleeping_.load(std::memory_order_seq_cst)) {
          std::lock_guard sleep(sleep_);
          done_.notify_all();
        }
      }
    }
  }

  mutable std::mutex submit_;  // one job at a time; guards workers_ and the job's fields
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint32_t> wake_{0};   // bumped once per job: wakes the workers
  std::atomic<std::uint64_t> state_{0};  // the job's generation, open or closed, slots (above)
  std::atomic<std::int64_t> next_{0};    // first item not yet handed out
  std::atomic<std::uint32_t> left_{0};   // workers that joined this job and have finished
  std::mutex sleep_;                      // for the two condition variables
  std::condition_variable wakeup_;        // workers asleep: a job has opened (or the pool stops)
  std::condition_variable done_;          // the caller asleep: the workers that joined have left
  std::atomic<int> sleepers_{0};          // workers asleep or about to be
  std::atomic<bool> caller_sleeping_{false};
  std::uint64_t generation_ = 0;
  // the job (written under submit_ before state_ opens it)
  void (*call_)(void*, std::int64_t, int) = nullptr;
  void* body_ = nullptr;
  std::int64_t n_ = 0, chunk_ = 1;
};

}  // namespace tformer::detail
