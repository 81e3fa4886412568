// ALiBi against the paper: slopes and the bias it adds.
#include <tformer/nn/alibi.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("ALiBi slopes follow the paper: geometric from 2^(-8/n), interleaved for non-powers of two",
          "[positions][alibi]") {
  const auto s8 = nn::alibi_bias::slopes(8);
  for (int i = 0; i < 8; ++i) CHECK(s8[static_cast<std::size_t>(i)] == std::ldexp(1.0f, -(i + 1)));  // 1/2 ... 1/256
  const auto s12 = nn::alibi_bias::slopes(12);  // 8 of the 8-head series, then odd ones of the 16-head series
  REQUIRE(s12.size() == 12);
  CHECK(s12[7] == std::ldexp(1.0f, -8));
  for (int i = 0; i < 4; ++i) CHECK(std::fabs(s12[8 + static_cast<std::size_t>(i)] - std::pow(2.0, -0.5 * (2 * i + 1))) <= 1e-7);
  nn::alibi_bias bias(4);
  std::vector<float> row(5, 0.0f);
  bias.add(0, 1, 10, 6, 5, row.data());  // 4 heads: slopes 1/4, 1/16, ...; head 1, query 10, keys 6..10
  CHECK(row[0] == -0.25f);  // (6 - 10) / 16
  CHECK(row[4] == 0.0f);
}

TEST_CASE("ALiBi as a stack bias takes its heads from the stack's settings", "[positions][alibi]") {
  nn::alibi_bias bias(nn::bias_config{.heads = 4});
  std::vector<float> row(3, 0.0f);
  bias.add(0, 0, 2, 0, 3, row.data());  // head 0: slope 1/4; query 2, keys 0..2
  CHECK(row[0] == -0.5f);
  CHECK(row[2] == 0.0f);
}
