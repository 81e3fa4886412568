// Rotary positions against their definition: rotate-half, interleaved, partial rotary dimension.
#include <tformer/nn/rotary.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::random_tensor;

using namespace tformer;

TEST_CASE("rotary rotates feature pairs by position times base^(-2i/dim)", "[positions][rotary]") {
  const std::int64_t B = 2, S = 5, H = 3, D = 8;
  tensor<std::int32_t> start(shape{B});
  start(0) = 0;
  start(1) = 37;
  for (bool interleaved : {false, true})
    for (std::int64_t rd : {std::int64_t{0}, std::int64_t{4}}) {
      const nn::rotary rope{.dim = rd, .base = 500.0f, .interleaved = interleaved};
      auto x = random_tensor(shape{B, S, H, D}, 3);
      const auto orig = x;
      rope.apply(x, start);
      const std::int64_t r = rd == 0 ? D : rd, half = r / 2;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t s = 0; s < S; ++s)
          for (std::int64_t h = 0; h < H; ++h) {
            for (std::int64_t i = 0; i < half; ++i) {
              const double angle = static_cast<double>(start(b) + s) * std::pow(500.0, -2.0 * static_cast<double>(i) / r);
              const std::int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
              const double a = orig(b, s, h, i0), c = orig(b, s, h, i1);
              INFO("interleaved " << interleaved << " dim " << r << " pos " << start(b) + s << " pair " << i);
              REQUIRE(std::fabs(x(b, s, h, i0) - (a * std::cos(angle) - c * std::sin(angle))) <= 2e-5);
              REQUIRE(std::fabs(x(b, s, h, i1) - (c * std::cos(angle) + a * std::sin(angle))) <= 2e-5);
            }
            for (std::int64_t i = r; i < D; ++i) REQUIRE(x(b, s, h, i) == orig(b, s, h, i));  // partial: untouched
          }
    }
  auto x = random_tensor(shape{1, 2, 1, 6}, 4);
  CHECK_THROWS_AS((nn::rotary{.dim = 3}.apply(x, {})), value_error);
  CHECK_THROWS_AS((nn::rotary{.dim = 8}.apply(x, {})), value_error);
}

