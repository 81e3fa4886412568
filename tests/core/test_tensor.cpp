#include <tformer/core/tensor.hpp>

#include <cstdint>
#include <limits>
#include <new>
#include <string>

#include "catch.hpp"
#include "support.hpp"

using tformer::shape;
using tformer::shape_error;
using tformer::tensor;
using tformer::tensor_view;
using tformer::test::thrown_message;

TEST_CASE("tensor storage is 64-byte aligned and zero-initialized", "[tensor]") {
  for (std::int64_t n : {1, 3, 17, 1000}) {
    tensor<float> t(shape{n, 3});
    REQUIRE(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    for (std::int64_t i = 0; i < t.numel(); ++i) REQUIRE(t.data()[i] == 0.0f);
  }
  tensor<std::int8_t> b(shape{5});
  REQUIRE(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
}

TEST_CASE("views index, slice and reshape row-major data", "[tensor]") {
  tensor<float> t(shape{2, 3, 4});
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i);
  tensor_view<float> v = t;
  CHECK(v(1, 2, 3) == 23.0f);
  CHECK(v.is_contiguous());

  auto m = v[1];  // [3, 4]
  CHECK(m.rank() == 2);
  CHECK(m(0, 0) == 12.0f);

  auto s = v.slice(2, 1, 3);  // [2, 3, 2], strided
  CHECK(s.shape() == shape{2, 3, 2});
  CHECK_FALSE(s.is_contiguous());
  CHECK(s(1, 1, 0) == 17.0f);
  CHECK(s.rows() == 6);
  CHECK(s.row(4)[1] == 18.0f);  // row 4 = (1, 1): elements 17, 18
  CHECK_THROWS_AS(s.reshape(shape{12}), shape_error);

  auto lead = v.slice(0, 1, 2);  // leading-dimension slice stays contiguous
  CHECK(lead.is_contiguous());
  auto r = lead.reshape(shape{4, 3});
  CHECK(r(3, 2) == 23.0f);
  CHECK_THROWS_AS(v.reshape(shape{5, 5}), shape_error);
  CHECK_THROWS_AS(v[2], shape_error);
  CHECK_THROWS_AS(v.slice(1, 2, 4), shape_error);

  tensor_view<const float> cv = v;  // mutable -> const
  CHECK(cv(0, 1, 1) == 5.0f);
}

TEST_CASE("copies are deep and contiguous", "[tensor]") {
  tensor<float> t(shape{3, 4}, 1.0f);
  tensor<float> c = t;
  c(0, 0) = 7.0f;
  CHECK(t(0, 0) == 1.0f);
  t(2, 3) = 5.0f;
  auto strided = t.view().slice(1, 2, 4);
  auto packed = tensor<float>::copy_of(strided);
  CHECK(packed.shape() == shape{3, 2});
  CHECK(packed(2, 1) == 5.0f);
  t.reshape(shape{12});
  CHECK(t.dim(0) == 12);
  CHECK_THROWS_AS(t.reshape(shape{5}), shape_error);
}

TEST_CASE("shape errors name the operation and both shapes", "[tensor]") {
  tensor<float> t(shape{2, 3});
  try {
    (void)t.view().reshape(shape{4, 2});
    FAIL("reshape should have thrown");
  } catch (const shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("[2, 3]") != std::string::npos);
    CHECK(msg.find("[4, 2]") != std::string::npos);
  }
}

TEST_CASE("a tensor's byte size must fit in int64_t", "[tensor]") {
  constexpr std::int64_t two_62 = std::int64_t{1} << 62;
  // 2^62 + 1 floats are 2^64 + 4 bytes, which wrapped to a 4-byte buffer before this check.
  const std::string msg = thrown_message<shape_error>([] { tensor<float> t(shape{two_62 + 1}); });
  CHECK(msg.find("[4611686018427387905]") != std::string::npos);
  CHECK(msg.find("f32") != std::string::npos);
  CHECK_THROWS_AS(tensor<float>(shape{two_62}), shape_error);                // 2^64 bytes
  CHECK_THROWS_AS(tensor<std::int32_t>(shape{2, two_62 / 4}), shape_error);  // 2^63 bytes
  CHECK_THROWS_AS(tensor<tformer::bf16>(shape{two_62, 1}), shape_error);     // 2^63 bytes

  // Empty tensors count their nonzero extents too: their strides in bytes must fit.
  CHECK_THROWS_AS(tensor<float>(shape{0, two_62}), shape_error);
  tensor<float> e(shape{0, two_62 / 4});  // 2^62 bytes if it were full: fine, and empty
  CHECK(e.numel() == 0);
  CHECK(e.dim(1) == two_62 / 4);
  tensor<float> z(shape{0, 4});
  CHECK_THROWS_AS(z.reshape(shape{0, two_62}), shape_error);
  CHECK(z.shape() == shape{0, 4});  // unchanged by the failed reshape
}

TEST_CASE("allocate_aligned refuses a byte count that overflows size_t", "[tensor]") {
  constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();
  // size_max / 4 + 1 floats are 2^64 bytes on a 64-bit machine: that wrapped to 0 before.
  CHECK_THROWS_AS(tformer::allocate_aligned<float>(size_max / 4 + 1), std::bad_array_new_length);
  CHECK_THROWS_AS(tformer::allocate_aligned<std::int32_t>(size_max), std::bad_array_new_length);
  CHECK(tformer::allocate_aligned<float>(0) == nullptr);
}
