// quant::detail::kquant, the helpers ggml's K-quants share: nearest_int (round half to even through
// ggml's bit trick), mul (a product no contraction setting can fuse with the sum that uses it),
// get_scale_min_k4 against ggml's packing of 6-bit scales and mins, and the scale searches on
// inputs whose answers are known (the formats' tests check them against ggml's bytes).
#include <tformer/quant/kquant.hpp>

#include <cmath>
#include <cstdint>
#include <random>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
namespace kquant = tformer::quant::detail::kquant;

TEST_CASE("kquant::nearest_int rounds to nearest, ties to even, as ggml's bit trick", "[quant][kquant]") {
  int bad_halves = 0;
  for (int i = -4000; i <= 4000; ++i) {
    const float h = static_cast<float>(i) + 0.5f;
    if (kquant::nearest_int(h) != static_cast<int>(std::nearbyint(h))) ++bad_halves;
  }
  CHECK(bad_halves == 0);
  int bad = 0;
  for (const float v : test::random_floats(200000, -4194303.0f, 4194303.0f, 3))
    if (kquant::nearest_int(v) != static_cast<int>(std::nearbyint(v))) ++bad;
  for (const float v : test::random_floats(200000, -70.0f, 70.0f, 4))
    if (kquant::nearest_int(v) != static_cast<int>(std::nearbyint(v))) ++bad;
  CHECK(bad == 0);
  CHECK(kquant::nearest_int(0.49999997f) == 0);
  CHECK(kquant::nearest_int(-0.0f) == 0);
  CHECK(kquant::nearest_int(4194303.0f) == 4194303);
}

TEST_CASE("kquant::mul rounds the product before the sum, whatever the contraction", "[quant][kquant]") {
  // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: rounded, the 2^-24 (a tie) goes; fused, it stays
  volatile float a = 1.0f + 0x1p-12f, c = -1.0f;
  const float got = kquant::mul(a, a) + c;
  CHECK(got == 0x1p-11f);
  CHECK(std::fma(static_cast<float>(a), static_cast<float>(a), static_cast<float>(c)) == 0x1p-11f + 0x1p-24f);
}

TEST_CASE("kquant::get_scale_min_k4 reads ggml's packing of the 6-bit scales and mins", "[quant][kquant]") {
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> v6(0, 63);
  for (int n = 0; n < 2000; ++n) {
    std::uint8_t ls[8], lm[8], q[12] = {};
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<std::uint8_t>(n < 64 ? n : v6(gen));  // every value first, then random
      lm[j] = static_cast<std::uint8_t>(n < 64 ? 63 - n : v6(gen));
    }
    for (int j = 0; j < 8; ++j) {  // quantize_row_q4_K_ref's packing
      if (j < 4) {
        q[j] = ls[j];
        q[j + 4] = lm[j];
      } else {
        q[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        q[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
        q[j - 0] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
      }
    }
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc, m;
      kquant::get_scale_min_k4(j, q, &sc, &m);
      INFO("n " << n << " j " << j);
      REQUIRE(sc == ls[j]);
      REQUIRE(m == lm[j]);
    }
  }
}

TEST_CASE("kquant's scale searches on inputs with known answers", "[quant][kquant]") {
  // make_qx_quants: ggml's own grid at scale 0.5 (max -16 = -32 * 0.5): the weighted fit is exact
  float x[16];
  std::int8_t L[16];
  for (int i = 0; i < 16; ++i) x[i] = 0.5f * static_cast<float>(i == 0 ? -32 : 4 * i - 33);
  CHECK(kquant::make_qx_quants(16, 32, x, L, 1, nullptr) == 0.5f);
  for (int i = 0; i < 16; ++i) CHECK(L[i] == static_cast<std::int8_t>((i == 0 ? -32 : 4 * i - 33) + 32));
  // below GROUP_MAX_EPS: scale 0, levels 0
  for (float& v : x) v = 1e-16f;
  CHECK(kquant::make_qx_quants(16, 32, x, L, 1, nullptr) == 0.0f);
  for (const std::int8_t l : L) CHECK(l == 0);
  // make_qkx2_quants: a constant row gives scale 0, levels 0, the_min = -min(0, x)
  float xs[32], w[32], the_min = 1;
  std::uint8_t Lq[32], aux[32];
  for (int i = 0; i < 32; ++i) {
    xs[i] = -2.0f;
    w[i] = 1.0f;
  }
  CHECK(kquant::make_qkx2_quants(32, 15, xs, w, Lq, &the_min, aux, -1.0f, 0.1f, 20, false) == 0.0f);
  CHECK(the_min == 2.0f);
  for (const std::uint8_t l : Lq) CHECK(l == 0);
  // levels 0 .. 15 exactly (min 0, max 15): scale 1, min 0, L = x
  for (int i = 0; i < 32; ++i) xs[i] = static_cast<float>(i % 16);
  CHECK(kquant::make_qkx2_quants(32, 15, xs, w, Lq, &the_min, aux, -1.0f, 0.1f, 20, false) == 1.0f);
  CHECK(the_min == 0.0f);
  for (int i = 0; i < 32; ++i) CHECK(Lq[i] == i % 16);
}
