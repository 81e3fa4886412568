// Absolute positions against their definitions: the sinusoids of "Attention Is All You Need" and
// learned-table limits.
#include <tformer/nn/positions.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::random_tensor;

using namespace tformer;

TEST_CASE("sinusoidal positions: sin on even features, cos on odd, wavelength 10000^(2i/d)", "[positions]") {
  tensor<float> x(shape{1, 50, 16});
  nn::sinusoidal_positions().add(x, {});
  for (std::int64_t p = 0; p < 50; ++p)
    for (std::int64_t i = 0; i < 8; ++i) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(i) / 16.0);
      REQUIRE(std::fabs(x(0, p, 2 * i) - std::sin(angle)) <= 1e-6);
      REQUIRE(std::fabs(x(0, p, 2 * i + 1) - std::cos(angle)) <= 1e-6);
    }
}

TEST_CASE("learned positions add their table row and refuse positions past it", "[positions][errors]") {
  nn::learned_positions pos(4, 3);
  for (std::int64_t i = 0; i < 12; ++i) pos.weight.data()[i] = static_cast<float>(i);
  tensor<float> x(shape{1, 2, 3});
  tensor<std::int32_t> start(shape{1}, 2);
  pos.add(x, start);
  CHECK(x(0, 0, 0) == 6.0f);  // row 2
  CHECK(x(0, 1, 2) == 11.0f);  // row 3
  tensor<std::int32_t> late(shape{1}, 3);
  const auto msg = test::thrown_message<value_error>([&] { pos.add(x, late); });
  CHECK(msg.find("position 4") != std::string::npos);
  CHECK(msg.find("4 positions") != std::string::npos);
}


TEST_CASE("learned positions with an offset skip the table's first rows (BART's two)", "[positions]") {
  nn::learned_positions pos(3, 2, /*offset=*/2);
  REQUIRE(pos.weight.dim(0) == 5);
  CHECK(pos.max_positions() == 3);
  for (std::int64_t i = 0; i < 10; ++i) pos.weight.data()[i] = static_cast<float>(i);
  tensor<float> x(shape{1, 3, 2});
  pos.add(x, {});
  CHECK(x(0, 0, 0) == 4.0f);  // position 0 is row 2
  CHECK(x(0, 2, 1) == 9.0f);  // position 2 is row 4
  tensor<std::int32_t> late(shape{1}, 1);
  CHECK_THROWS_AS(pos.add(x, late), value_error);  // positions 1..3: 3 is past the table
  CHECK_THROWS_AS(nn::learned_positions(3, 2, -1), value_error);
}

TEST_CASE("split sinusoidal positions: sines in the first half, cosines in the second (Marian)", "[positions]") {
  for (const std::int64_t d : {16, 7}) {  // even and odd widths: the sine half is ceil(d/2) wide
    tensor<float> x(shape{2, 30, d});
    tensor<std::int32_t> start(shape{2});
    start(0) = 0;
    start(1) = 5;
    nn::split_sinusoidal_positions().add(x, start);
    const std::int64_t half = (d + 1) / 2;
    for (std::int64_t b = 0; b < 2; ++b)
      for (std::int64_t s = 0; s < 30; ++s) {
        const double p = static_cast<double>(start(b) + s);
        for (std::int64_t c = 0; c < d; ++c) {
          const std::int64_t k = c < half ? c : c - half;
          const double angle = p / std::pow(10000.0, 2.0 * static_cast<double>(k) / static_cast<double>(d));
          REQUIRE(std::fabs(x(b, s, c) - (c < half ? std::sin(angle) : std::cos(angle))) <= 1e-6);
        }
      }
  }
}
