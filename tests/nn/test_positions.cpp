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

