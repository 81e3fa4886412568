// ops::gather_rows and ops::select_rows: rows picked, repeated and dropped along the leading
// dimension, into a new tensor or in place.
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

TEST_CASE("select_rows in place equals gather_rows for every map of 4 rows, on the used prefix", "[gather]") {
  // Every map {0..3} -> {0..3} (256): cycles, swaps, repeats, fixed points and the identity.
  tensor<float> base(shape{4, 5, 3});  // [B, capacity, feature]
  for (std::int64_t i = 0; i < base.numel(); ++i) base.data()[i] = static_cast<float>(i) + 0.5f;
  for (int code = 0; code < 256; ++code) {
    std::vector<std::int64_t> rows(4);
    for (int i = 0; i < 4; ++i) rows[static_cast<std::size_t>(i)] = (code >> (2 * i)) & 3;
    for (const std::int64_t used : {std::int64_t{-1}, std::int64_t{2}}) {
      const auto expected = ops::gather_rows<float>(base, rows, used);
      tensor<float> t = base;
      ops::select_rows(t, rows, used);
      REQUIRE(t.shape() == base.shape());
      const std::int64_t upto = used < 0 ? 5 : used;
      bool same = true;
      for (std::int64_t b = 0; b < 4; ++b)
        for (std::int64_t p = 0; p < upto; ++p)
          for (std::int64_t f = 0; f < 3; ++f) same = same && t(b, p, f) == expected(b, p, f);
      INFO("rows " << rows[0] << rows[1] << rows[2] << rows[3] << ", used " << used);
      CHECK(same);
    }
  }
}

TEST_CASE("select_rows changes the batch size through a new tensor and checks rows before writing", "[gather]") {
  tensor<std::int32_t> lengths(shape{3});
  lengths(0) = 5, lengths(1) = 6, lengths(2) = 7;
  const std::vector<std::int64_t> grow = {2, 0, 0, 1};
  ops::select_rows(lengths, grow);
  REQUIRE(lengths.shape() == shape{4});
  CHECK((lengths(0) == 7 && lengths(1) == 5 && lengths(2) == 5 && lengths(3) == 6));
  const std::vector<std::int64_t> drop = {3};
  ops::select_rows(lengths, drop);
  REQUIRE(lengths.shape() == shape{1});
  CHECK(lengths(0) == 6);
  tensor<float> t(shape{2, 2});
  t(0, 0) = 1.0f, t(1, 0) = 2.0f;
  const std::vector<std::int64_t> bad = {1, 2};
  CHECK_THROWS_AS(ops::select_rows(t, bad), value_error);
  CHECK((t(0, 0) == 1.0f && t(1, 0) == 2.0f));  // unchanged
  tensor<float> empty;
  const std::vector<std::int64_t> none;
  CHECK_THROWS_AS(ops::select_rows(empty, none), shape_error);
}
