// tformer's worker pool (core/thread_pool.hpp), through the loop primitives that use it.
#include <tformer/core/parallel.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
using test::thread_guard;

TEST_CASE("thread_pool: every item runs once, and a slot is used by one thread at a time", "[parallel][pool]") {
  thread_guard guard;
  for (int threads : {2, 3, 8}) {
    for (std::int64_t n : {2, 3, 17, 1000, 100000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      std::vector<std::atomic<int>> in_slot(static_cast<std::size_t>(threads));
      std::atomic<int> slot_errors{0};
      parallel_for_slots(threads, n, [&](std::int64_t i, int slot) {
        if (slot < 0 || slot >= threads) {
          slot_errors++;
          return;
        }
        if (in_slot[static_cast<std::size_t>(slot)].fetch_add(1) != 0) slot_errors++;
        hits[static_cast<std::size_t>(i)]++;
        in_slot[static_cast<std::size_t>(slot)].fetch_sub(1);
      });
      REQUIRE(slot_errors.load() == 0);
      for (auto& h : hits) REQUIRE(h.load() == 1);
    }
  }
  CHECK(detail::thread_pool::instance().workers() >= 1);
}

TEST_CASE("thread_pool: a loop inside a loop body runs inline on that thread", "[parallel][pool]") {
  thread_guard guard;
  set_num_threads(2);
  std::vector<std::atomic<int>> hits(64 * 64);
  std::atomic<int> wrong{0};  // Catch2's assertions are not thread-safe: count, check after
  parallel_for(64, [&](std::int64_t i) {
    if (loop_threads(64) != 1) wrong++;
    const auto me = std::this_thread::get_id();
    parallel_for(64, [&](std::int64_t j) {
      if (std::this_thread::get_id() != me) wrong++;
      hits[static_cast<std::size_t>(i * 64 + j)]++;
    }, parallel_grain);
  }, parallel_grain);
  CHECK(wrong.load() == 0);
  for (auto& h : hits) REQUIRE(h.load() == 1);
}

TEST_CASE("thread_pool: a loop never waits for the pool another user thread holds", "[parallel][pool]") {
  thread_guard guard;
  set_num_threads(2);
  // A holds the pool with a loop whose items wait (up to 20 s) until B's loop has finished. Were
  // B's loop to wait for the pool, A's items would time out.
  std::atomic<bool> b_done{false}, a_started{false}, a_timed_out{false};
  std::thread a([&] {
    parallel_for_slots(2, 4, [&](std::int64_t, int) {
      a_started = true;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (!b_done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (!b_done) a_timed_out = true;
    });
  });
  while (!a_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<std::atomic<int>> hits(1000);
  parallel_for_slots(2, 1000, [&](std::int64_t i, int) { hits[static_cast<std::size_t>(i)]++; });
  b_done = true;
  a.join();
  CHECK_FALSE(a_timed_out.load());
  for (auto& h : hits) REQUIRE(h.load() == 1);
}

TEST_CASE("thread_pool: user threads starting loops at once each get all their items", "[parallel][pool]") {
  thread_guard guard;
  set_num_threads(2);
  constexpr int users = 4;
  std::vector<std::vector<std::atomic<int>>> hits(users);
  for (auto& h : hits) h = std::vector<std::atomic<int>>(5000);
  std::vector<std::thread> threads;
  for (int u = 0; u < users; ++u)
    threads.emplace_back([&, u] {
      for (int round = 0; round < 50; ++round)
        parallel_for(100, [&](std::int64_t i) {
          hits[static_cast<std::size_t>(u)][static_cast<std::size_t>(i + 100 * round)]++;
        }, parallel_grain);
    });
  for (auto& t : threads) t.join();
  for (auto& h : hits)
    for (auto& x : h) REQUIRE(x.load() == 1);
}

TEST_CASE("thread_pool: after an exception the next loops run normally", "[parallel][pool]") {
  thread_guard guard;
  set_num_threads(2);
  for (int round = 0; round < 20; ++round) {
    CHECK_THROWS_AS(parallel_for(1000, [&](std::int64_t i) {
      if (i == round * 37) throw value_error("item");
    }, parallel_grain), value_error);
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(1000, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; }, parallel_grain);
    for (auto& h : hits) REQUIRE(h.load() == 1);
  }
}

TEST_CASE("thread_pool: many short loops in a row (workers that block and wake)", "[parallel][pool]") {
  thread_guard guard;
  set_num_threads(3);
  std::int64_t total = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<std::int64_t> out(8, 0);
    parallel_for(8, [&](std::int64_t i) { out[static_cast<std::size_t>(i)] = i + round; }, parallel_grain);
    for (auto v : out) total += v;
    if (round % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the spin: workers sleep
  }
  CHECK(total == 300 * 28 + 8 * (299 * 300 / 2));
}
