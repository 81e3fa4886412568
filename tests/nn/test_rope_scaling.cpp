// Scaled rotary frequencies against their definitions (the model-level parity with transformers is
// in tests/models/test_llama.cpp, "scaled rotary"): linear divides every frequency; Llama 3 keeps
// short wavelengths, divides long ones and blends between; YaRN interpolates below its band and
// keeps above it; rotary applies given frequencies and the attention factor.
#include <tformer/nn/rope_scaling.hpp>
#include <tformer/nn/rotary.hpp>

#include <cmath>
#include <numbers>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("rope_inv_freq and rope_linear", "[rope_scaling]") {
  const auto f = nn::rope_inv_freq(8, 10000.0f);
  REQUIRE(f.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(f[i] == Approx(std::pow(10000.0, -static_cast<double>(i) / 4.0)).epsilon(1e-6));
  const auto l = nn::rope_linear(8, 10000.0f, 2.5f);
  for (std::size_t i = 0; i < 4; ++i) CHECK(l[i] == f[i] / 2.5f);
  CHECK_THROWS_AS(nn::rope_linear(8, 10000.0f, 0.0f), value_error);
  CHECK_THROWS_AS(nn::rope_inv_freq(7, 10000.0f), value_error);
}

TEST_CASE("rope_llama3: short wavelengths kept, long ones divided, the middle blended", "[rope_scaling]") {
  // base 10000, dim 8: wavelengths 2 pi * {1, 10, 100, 1000}; original 64 -> kept below 16, divided above 64
  const auto f = nn::rope_inv_freq(8, 10000.0f);
  const auto s = nn::rope_llama3(8, 10000.0f, {.factor = 4.0f, .low_freq_factor = 1.0f, .high_freq_factor = 4.0f,
                                              .original_max_positions = 64});
  CHECK(s[0] == f[0]);
  const double wavelen = 2 * std::numbers::pi / f[1], smooth = (64.0 / wavelen - 1.0) / 3.0;
  CHECK(s[1] == Approx((1 - smooth) * f[1] / 4.0 + smooth * f[1]).epsilon(1e-6));
  CHECK(s[1] < f[1]);
  CHECK(s[1] > f[1] / 4.0f);
  CHECK(s[2] == f[2] / 4.0f);
  CHECK(s[3] == f[3] / 4.0f);
  CHECK_THROWS_AS(nn::rope_llama3(8, 10000.0f, {.factor = 4.0f, .low_freq_factor = 4.0f, .high_freq_factor = 1.0f}), value_error);
}

TEST_CASE("rope_yarn: interpolated below the band, kept above, and the attention factor", "[rope_scaling]") {
  const auto f = nn::rope_inv_freq(64, 10000.0f);
  const nn::yarn_scaling y{.factor = 4.0, .original_max_positions = 4096};
  const auto s = nn::rope_yarn(64, 10000.0f, y);
  // band: dims with floor/ceil of d ln(L / (2 pi beta)) / (2 ln base) for beta 32 and 1
  const double lo = std::floor(64 * std::log(4096 / (32 * 2 * std::numbers::pi)) / (2 * std::log(10000.0)));
  const double hi = std::ceil(64 * std::log(4096 / (1 * 2 * std::numbers::pi)) / (2 * std::log(10000.0)));
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (static_cast<double>(i) <= lo)
      CHECK(s[i] == Approx(f[i]).epsilon(1e-6));  // fast rotations: kept
    else if (static_cast<double>(i) >= hi)
      CHECK(s[i] == Approx(f[i] / 4.0).epsilon(1e-6));  // slow: interpolated
    else
      CHECK((s[i] < f[i] && s[i] > f[i] / 4.0f));
  }
  CHECK(y.attention() == Approx(0.1 * std::log(4.0) + 1.0));
  CHECK(nn::yarn_scaling{.factor = 4.0, .attention_factor = 1.5}.attention() == 1.5);
  CHECK(nn::yarn_scaling{.factor = 4.0, .mscale = 1.0, .mscale_all_dim = 1.0}.attention() == Approx(1.0));
  CHECK(nn::yarn_scaling{.factor = 0.5}.attention() == 1.0);
  CHECK_THROWS_AS(nn::rope_yarn(64, 10000.0f, {.factor = 4.0}), value_error);  // no original context
}

TEST_CASE("rotary with given frequencies and an attention factor", "[rope_scaling][rotary]") {
  auto x = test::random_tensor(shape{1, 5, 2, 8}, 3);
  auto y = x;
  nn::rotary plain{};
  nn::rotary given{.inv_freq = nn::rope_inv_freq(8, 10000.0f), .attention_factor = 2.0f};
  plain.apply(x, {});
  given.apply(y, {});
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(y.data()[i] == Approx(2.0f * x.data()[i]).margin(1e-6));
  nn::rotary wrong{.inv_freq = {1.0f, 2.0f}};
  CHECK_THROWS_AS(wrong.apply(y, {}), value_error);
}
