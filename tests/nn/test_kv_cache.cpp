// nn::kv_cache, the default attention state: where keys go, what the kernel is shown, how rows
// are kept for beams, and the errors a caller can make.
#include <tformer/nn/kv_cache.hpp>

#include <cstdint>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
const nn::attention_config config{.d_model = 8, .heads = 2, .kv_heads = 2, .head_dim = 4};
}

TEST_CASE("a kv_cache stores position p at slot p and shows positions [0, end)", "[state][kv_cache]") {
  nn::kv_cache cache(2, 6, config);
  CHECK(cache.batch() == 2);
  CHECK(cache.capacity() == 6);
  CHECK(cache.bytes() == 2 * 4 * (2 * 6 * 2 * 4) + 4 * 2);
  const auto k = test::random_tensor(shape{2, 3, 2, 4}, 1), v = test::random_tensor(shape{2, 3, 2, 4}, 2);
  tensor<std::int32_t> counts(shape{2}), positions(shape{2});
  counts(0) = 3, counts(1) = 1;  // sequence 1: one real token, then padding
  cache.append(k, v, counts, positions);
  const nn::kv_view kv = cache.keys();
  CHECK(kv.ring == 0);
  CHECK(kv.begin.data() == nullptr);
  CHECK(kv.end(0) == 3);
  CHECK(kv.end(1) == 1);
  CHECK(kv.k(0, 2, 1, 3) == k(0, 2, 1, 3));
  CHECK(kv.v(1, 0, 0, 0) == v(1, 0, 0, 0));
  // continue sequence 1 where it ended (empty positions: at each sequence's end)
  const auto k2 = test::random_tensor(shape{2, 1, 2, 4}, 3);
  cache.append(k2, k2);
  CHECK(cache.end(0) == 4);
  CHECK(cache.end(1) == 2);
  CHECK(cache.keys().k(1, 1, 0, 2) == k2(1, 0, 0, 2));
  // rewrite: go back to position 1 of sequence 0
  positions(0) = 1, positions(1) = 2, counts(0) = 1, counts(1) = 0;
  cache.append(k2, k2, counts, positions);
  CHECK(cache.end(0) == 2);
  CHECK(cache.keys().k(0, 1, 1, 1) == k2(0, 0, 1, 1));
}

TEST_CASE("select keeps, repeats and drops rows with their positions", "[state][kv_cache]") {
  nn::kv_cache cache(3, 4, config);
  const auto k = test::random_tensor(shape{3, 2, 2, 4}, 4);
  cache.append(k, k);
  const std::vector<std::int64_t> rows = {2, 2};
  cache.select(rows);
  CHECK(cache.batch() == 2);
  CHECK(cache.end(1) == 2);
  CHECK(cache.keys().k(0, 1, 0, 0) == k(2, 1, 0, 0));
  CHECK(cache.keys().k(1, 1, 0, 0) == k(2, 1, 0, 0));
}

TEST_CASE("a kv_cache refuses overflow, gaps and mismatched shapes", "[state][kv_cache][errors]") {
  nn::kv_cache cache(1, 2, config);
  const auto k3 = test::random_tensor(shape{1, 3, 2, 4}, 5);
  const auto msg = test::thrown_message<value_error>([&] { cache.append(k3, k3); });
  CHECK(msg.find("needs 3 cached positions but the KV cache holds 2") != std::string::npos);
  tensor<std::int32_t> gap(shape{1}, 1);
  const auto k1 = test::random_tensor(shape{1, 1, 2, 4}, 6);
  CHECK_THROWS_AS(cache.append(k1, k1, {}, gap), value_error);  // position 1 of an empty sequence
  const auto wrong = test::random_tensor(shape{1, 1, 3, 4}, 7);
  CHECK_THROWS_AS(cache.append(wrong, wrong), shape_error);
  const auto two = test::random_tensor(shape{2, 1, 2, 4}, 7);
  CHECK_THROWS_AS(cache.append(two, two), shape_error);
}
