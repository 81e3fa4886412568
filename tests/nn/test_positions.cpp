// Position schemes against their definitions: rotary (rotate-half, interleaved, partial), the
// sinusoids of "Attention Is All You Need", ALiBi slopes from the paper, T5 buckets from Hugging
// Face's _relative_position_bucket (values printed by transformers 5.23), learned-table limits.
#include <tformer/nn/positions.hpp>

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

TEST_CASE("T5 buckets equal Hugging Face's _relative_position_bucket", "[positions][t5]") {
  const std::vector<std::int64_t> rel = {-200, -128, -100, -64, -33, -17, -16, -9, -8, -7, -1, 0,
                                         1,    7,    8,    9,   16,  17,  33,  64, 100, 128, 200};
  struct expected {
    bool bidirectional;
    std::int64_t buckets, max_distance;
    std::vector<std::int64_t> values;
  };
  const std::vector<expected> cases = {
      {true, 32, 128, {15, 15, 15, 14, 12, 10, 10, 8, 8, 7, 1, 0, 17, 23, 24, 24, 26, 26, 28, 30, 31, 31, 31}},
      {true, 8, 20, {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 0, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}},
      {false, 32, 128, {31, 31, 30, 26, 21, 16, 16, 9, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {false, 8, 20, {7, 7, 7, 7, 7, 7, 7, 6, 5, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}};
  for (const auto& c : cases) {
    nn::t5_relative_bias bias(c.buckets, 2, c.max_distance, c.bidirectional);
    for (std::size_t i = 0; i < rel.size(); ++i) {
      INFO("bidirectional " << c.bidirectional << " buckets " << c.buckets << " relative " << rel[i]);
      CHECK(bias.bucket(rel[i]) == c.values[i]);
    }
  }
}
