// quant::matrix<F>: packed rows in the layout of a ggml tensor, conversions, views, copies.
#include <tformer/quant/bf16.hpp>
#include <tformer/quant/f16.hpp>
#include <tformer/quant/f32.hpp>
#include <tformer/quant/matrix.hpp>

#include <cstring>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("a matrix holds rows of row_bytes each, zero-initialized", "[quant][matrix]") {
  quant::matrix<quant::bf16> m(3, 5);
  CHECK(m.shape() == shape{3, 5});
  CHECK(m.rank() == 2);
  CHECK(m.numel() == 15);
  CHECK(m.row_bytes() == 10);
  CHECK(m.size_bytes() == 30);
  CHECK(m.row(2) - m.row(0) == 20);
  for (std::size_t i = 0; i < m.size_bytes(); ++i) REQUIRE(m.data()[i] == std::byte{0});
  const quant::matrix<quant::f32> empty;
  CHECK(empty.rank() == 0);
  CHECK(empty.rows() == 0);
}

TEST_CASE("f32 matrices are views of their floats; quantize and to_float round trip", "[quant][matrix]") {
  const auto w = test::random_tensor(shape{4, 6}, 1);
  auto m = quant::matrix<quant::f32>::quantize(w);
  CHECK(std::memcmp(m.view().data(), w.data(), 24 * sizeof(float)) == 0);
  m.view()(1, 2) = 7.0f;
  CHECK(m.to_float()(1, 2) == 7.0f);
  const auto copy = m;  // deep copy
  m.view()(0, 0) = -1.0f;
  CHECK(copy.view()(0, 0) == w(0, 0));
  float row[6];
  m.dequantize(1, 1, row);
  CHECK(row[2] == 7.0f);
}

TEST_CASE("f16 and bf16 matrices round to nearest even and widen exactly", "[quant][matrix]") {
  const auto w = test::random_tensor(shape{3, 8}, 2);
  const auto h = quant::matrix<quant::f16>::quantize(w).to_float();
  const auto b = quant::matrix<quant::bf16>::quantize(w).to_float();
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    REQUIRE(h.data()[i] == static_cast<float>(f16(w.data()[i])));
    REQUIRE(b.data()[i] == static_cast<float>(bf16(w.data()[i])));
  }
  CHECK_THROWS_AS(quant::matrix<quant::f32>::quantize(test::random_tensor(shape{2, 3, 4}, 1)), shape_error);
  quant::matrix<quant::f32> m(2, 3);
  CHECK_THROWS_AS(m.quantize_from(test::random_tensor(shape{3, 2}, 1)), shape_error);
}
