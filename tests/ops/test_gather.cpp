// ops::gather_rows: rows picked, repeated and dropped along the leading dimension.
#include <tformer/ops/gather.hpp>

#include <cstdint>
#include <vector>

#include "catch.hpp"

using namespace tformer;

TEST_CASE("gather_rows repeats and drops rows, copying only the used prefix of a cache", "[gather]") {
  tensor<float> t(shape{3, 4, 2});  // [B, capacity, feature]
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i);
  const std::vector<std::int64_t> rows = {2, 2, 0};
  const auto all = ops::gather_rows<float>(t, rows);
  REQUIRE(all.shape() == shape{3, 4, 2});
  for (std::int64_t j = 0; j < 8; ++j) {
    CHECK(all.data()[j] == t.data()[16 + j]);
    CHECK(all.data()[8 + j] == t.data()[16 + j]);
    CHECK(all.data()[16 + j] == t.data()[j]);
  }
  const auto used = ops::gather_rows<float>(t, rows, 2);  // positions 0 and 1 only
  CHECK(used(0, 1, 1) == t(2, 1, 1));
  CHECK(used(0, 2, 0) == 0.0f);
  tensor<std::int32_t> lengths(shape{3});
  lengths(0) = 5, lengths(1) = 6, lengths(2) = 7;
  const std::vector<std::int64_t> keep = {1};
  CHECK(ops::gather_rows<std::int32_t>(lengths, keep)(0) == 6);
  const std::vector<std::int64_t> bad = {3};
  CHECK_THROWS_AS(ops::gather_rows<float>(t, bad), value_error);
  CHECK_THROWS_AS(ops::gather_rows<float>(tensor<float>(), rows), shape_error);
}
