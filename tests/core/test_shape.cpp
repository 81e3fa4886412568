// shape: rank, extents and element count, and the rule that keeps every element count, stride
// and sub-view count of a shape within int64_t.
#include <tformer/core/shape.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "catch.hpp"
#include "support.hpp"

using tformer::shape;
using tformer::shape_error;
using tformer::test::thrown_message;

namespace {
constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t two_62 = std::int64_t{1} << 62;
}  // namespace

TEST_CASE("shape reports rank, extents and element count", "[shape]") {
  shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(s.dim(-1) == 4);
  CHECK(s.to_string() == "[2, 3, 4]");
  CHECK(shape{}.numel() == 1);
  CHECK(shape{5, 0, 7}.numel() == 0);
  CHECK_THROWS_AS((shape{1, 2, 3, 4, 5}), shape_error);
  CHECK_THROWS_AS((shape{2, -1}), shape_error);
  CHECK_THROWS_AS(s.dim(3), shape_error);
}

TEST_CASE("a shape holds at most INT64_MAX elements, counting its nonzero extents", "[shape]") {
  // At the limit: accepted, and numel is exact.
  CHECK(shape{int64_max}.numel() == int64_max);
  CHECK(shape{1, int64_max, 1, 1}.numel() == int64_max);
  CHECK(shape{3037000499, 3037000499}.numel() == 3037000499LL * 3037000499LL);  // just below 2^63
  CHECK(shape{two_62, 1}.numel() == two_62);
  CHECK(shape{int64_max, 0}.numel() == 0);  // nonzero product INT64_MAX: still fits
  CHECK(shape{0, 0, int64_max}.numel() == 0);

  // Past it: rejected with the extents in the message.
  const auto message = [](auto make) { return thrown_message<shape_error>(make); };
  CHECK(message([] { (void)shape{4, two_62 + 1}; }).find("[4, 4611686018427387905]") != std::string::npos);
  CHECK(message([] { (void)shape{3037000500, 3037000500}; }).find("[3037000500, 3037000500]") != std::string::npos);
  CHECK(message([] { (void)shape{int64_max, 2}; }).find("[9223372036854775807, 2]") != std::string::npos);
  CHECK(message([] { (void)shape{two_62, two_62, two_62, two_62}; }).find("INT64_MAX") != std::string::npos);
  // A zero extent does not rescue a shape whose other extents overflow: a running product would
  // pass INT64_MAX before it reached the zero, and so would the count of a view of the others.
  CHECK(message([] { (void)shape{3, two_62, 0}; }).find("[3, 4611686018427387904, 0]") != std::string::npos);
  CHECK(message([] { (void)shape{0, int64_max, int64_max}; }).find("[0, ") != std::string::npos);
  CHECK_THROWS_AS((shape{two_62, 0, 2}), shape_error);
}
