#include <tformer/core/parallel.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::thread_guard;

TEST_CASE("parallel_for visits every item exactly once for any thread count", "[parallel]") {
  thread_guard guard;
  for (int t : {1, 2, 3, 8}) {
    tformer::set_num_threads(t);
    CHECK(tformer::num_threads() == t);
    for (std::int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      tformer::parallel_for(n, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
      for (auto& h : hits) REQUIRE(h.load() == 1);
    }
  }
}

TEST_CASE("set_num_threads rejects a count below one", "[parallel]") {
  thread_guard guard;
  CHECK_THROWS_AS(tformer::set_num_threads(0), tformer::value_error);
  CHECK_THROWS_AS(tformer::set_num_threads(-3), tformer::value_error);
}

TEST_CASE("an exception in a loop body reaches the caller", "[parallel]") {
  thread_guard guard;
  for (int t : {1, 2}) {
    tformer::set_num_threads(t);
    CHECK_THROWS_AS(tformer::parallel_for(100,
                                          [](std::int64_t i) {
                                            if (i == 57) throw tformer::shape_error("item 57");
                                          }),
                    tformer::shape_error);
  }
}
