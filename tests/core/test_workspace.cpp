// workspace: scoped scratch memory that stops allocating once one pass has sized it.
#include <tformer/core/workspace.hpp>

#include <cstdint>
#include <set>

#include "catch.hpp"

using namespace tformer;

TEST_CASE("workspace hands out aligned, disjoint views and reuses them after a scope closes", "[workspace]") {
  workspace ws;
  float* first = nullptr;
  {
    const auto scope = ws.open();
    const auto a = ws.take<float>(shape{3, 5});
    const auto b = ws.take<std::int32_t>(shape{7});
    REQUIRE(a.shape() == shape{3, 5});
    REQUIRE(a.is_contiguous());
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % buffer_alignment == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % buffer_alignment == 0);
    CHECK(reinterpret_cast<const std::byte*>(b.data()) >= reinterpret_cast<const std::byte*>(a.data() + 15));
    for (std::int64_t i = 0; i < 15; ++i) a.data()[i] = static_cast<float>(i);
    for (std::int64_t i = 0; i < 7; ++i) b.data()[i] = -1;
    CHECK(a.data()[14] == 14.0f);  // b did not overwrite a
    first = a.data();
  }
  const auto scope = ws.open();
  CHECK(ws.take<float>(shape{3, 5}).data() == first);  // the same memory again
}

TEST_CASE("nested scopes release in stack order", "[workspace]") {
  workspace ws;
  const auto outer = ws.open();
  const float* kept = ws.take_raw<float>(10);
  const float* inner_ptr = nullptr;
  {
    const auto inner = ws.open();
    inner_ptr = ws.take_raw<float>(10);
    CHECK(inner_ptr != kept);
  }
  CHECK(ws.take_raw<float>(10) == inner_ptr);  // the inner scope's memory is free again, the outer's is not
}

TEST_CASE("a pass that outgrows the workspace allocates once; the next identical pass allocates nothing",
          "[workspace]") {
  workspace ws;
  auto pass = [&] {
    const auto scope = ws.open();
    std::set<float*> seen;
    for (int i = 0; i < 20; ++i) {
      const auto inner = ws.open();
      float* p = ws.take_raw<float>(50000);  // 200 KB each: several chunks on the first pass
      float* q = ws.take_raw<float>(3000);
      p[0] = q[0] = 1.0f;
      seen.insert(p);
    }
    (void)ws.take_raw<float>(100000);
    return seen.size();
  };
  pass();
  const auto after_first = ws.allocations();
  CHECK(after_first >= 1);
  pass();
  pass();
  CHECK(ws.allocations() == after_first);  // merged into one chunk that holds the whole pass
  CHECK(ws.capacity() >= 4 * (50000 + 3000 + 100000));
}

TEST_CASE("workspace_ref uses the caller's workspace or a private one", "[workspace]") {
  workspace ws;
  {
    workspace_ref r(&ws);
    CHECK(r.get() == &ws);
  }
  workspace_ref own(nullptr);
  const auto scope = own->open();
  CHECK(own->take_raw<float>(4) != nullptr);
  CHECK_THROWS_AS(own->take_raw<float>(std::size_t{1} << 62), value_error);
}

TEST_CASE("memory taken outside a scope is never merged away", "[workspace]") {
  workspace ws;
  float* kept = ws.take_raw<float>(10);  // no scope: lives as long as the workspace
  kept[0] = 1.0f;
  {
    const auto scope = ws.open();
    ws.take_raw<float>(100000)[0] = 3.0f;  // does not fit the first chunk: a second one
  }
  CHECK(ws.allocations() == 2);  // no merge: that would free `kept`
  kept[9] = 2.0f;                // still valid (AddressSanitizer would see a use after free)
  CHECK(kept[0] == 1.0f);
}
