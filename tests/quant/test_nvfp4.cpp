// quant::nvfp4 (nvfp4.hpp) against its references: every E4M3 scale code and nibble dequantizes as
// ModelOpt's formula E2M1(q) * (E4M3(d) * s) on ml_dtypes' element values; quantization equals
// NVIDIA's recipe as ModelOpt writes it, in numpy float32 with ml_dtypes' casts, byte for byte and
// bit for bit (tests/data/lowfloat_quants.safetensors, written by tools/make_lowfloat_fixtures.py:
// zero and non-finite rows, the E2M1 ties at s = 1, a zero sub-block, a sub-block whose scale
// rounds to 0, signed zeros, a subnormal row scale, the top of float's range); a given row scale;
// every compiled float-product path against the dequantized weights; ops::linear; bad column
// counts and scales; zero and NaN scales.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/nvfp4.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "lowfloat_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace lf = tformer::test::lowfloat;
using quant::nvfp4;

namespace {

constexpr std::int64_t bb = 40;  // bytes per block

using lf::f32_at;
using lf::put_f32;

/// q of weight t (< 64) of a block: sub-block t / 16, byte 8 (t / 16) + t % 8, low nibble for t % 16 < 8.
int block_q(const std::byte* blk, int t) {
  const auto byte = std::to_integer<int>(blk[8 + 8 * (t / 16) + t % 8]);
  return t % 16 < 8 ? byte & 15 : byte >> 4;
}

/// A random block: s in [2^-20, 2^4), E4M3 scale codes other than NaN, random nibbles.
void random_block(std::mt19937& gen, std::byte* blk) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> e(-20.0f, 4.0f);
  put_f32(blk, std::exp2(e(gen)));
  for (int i = 0; i < 4; ++i) {
    const int d = byte(gen);
    blk[4 + i] = static_cast<std::byte>((d & 0x7F) == 0x7F ? 0x38 : d);
  }
  for (int t = 8; t < bb; ++t) blk[t] = static_cast<std::byte>(byte(gen));
}

}  // namespace

TEST_CASE("nvfp4: 40-byte blocks of 64, a row scale, four E4M3 scales", "[quant][nvfp4]") {
  STATIC_REQUIRE(quant::float_product_format<nvfp4>);
  STATIC_REQUIRE_FALSE(quant::ggml_format<nvfp4>);
  CHECK(std::string(nvfp4::name) == "nvfp4");
  CHECK(nvfp4::block_size == 64);
  CHECK(nvfp4::block_bytes == bb);
  CHECK(nvfp4::bits_per_weight == 5.0);
}

TEST_CASE("nvfp4 dequantizes every scale code and nibble as E2M1(q) * (E4M3(d) * s)", "[quant][nvfp4]") {
  const auto e2m1 = lf::fixture().load<float>("e2m1.values");
  const auto e4m3 = lf::fixture().load<float>("e4m3.values");
  const float ss[] = {1.0f, 0x1p-20f, 3.7f, 1e-30f, 1e30f, 0.0f, -2.5f, 1e-40f, std::numeric_limits<float>::quiet_NaN()};
  for (const float s : ss) {
    std::vector<std::byte> blocks(64 * bb);
    for (int i = 0; i < 64; ++i) {  // block i: scale codes 4i .. 4i + 3 (every code once), every nibble
      std::byte* blk = blocks.data() + i * bb;
      put_f32(blk, s);
      for (int j = 0; j < 4; ++j) blk[4 + j] = static_cast<std::byte>(4 * i + j);
      for (int j = 0; j < 32; ++j) blk[8 + j] = static_cast<std::byte>((7 * j + 32 * i) % 256);
    }
    std::vector<float> y(64 * 64);
    nvfp4::dequantize_row(blocks.data(), y.data(), 64 * 64);
    lf::mismatch bad;
    for (int i = 0; i < 64; ++i)
      for (int t = 0; t < 64; ++t) {
        const std::byte* blk = blocks.data() + i * bb;
        const float c = e4m3.data()[4 * i + t / 16] * s;
        bad.add(i * 64 + t, lf::same_float(y[static_cast<std::size_t>(i * 64 + t)], e2m1.data()[block_q(blk, t)] * c));
      }
    INFO("s " << s << ": first weight that differs " << bad.first);
    REQUIRE(bad.count == 0);
  }
}

TEST_CASE("nvfp4 quantizes as NVIDIA's recipe (ModelOpt) with ml_dtypes, byte for byte", "[quant][nvfp4]") {
  lf::check_fixture_rows<nvfp4>("nvfp4.input", "nvfp4");
  const auto x = lf::fixture().load<float>("nvfp4.input");
  std::vector<std::byte> blk(2 * bb);
  std::vector<float> y(128);
  // all zero: s = 0, scales 1.0, codes 0
  nvfp4::quantize_row(x.data() + 4 * 128, blk.data(), 128);
  CHECK(f32_at(blk.data()) == 0.0f);
  for (int i = 0; i < 4; ++i) CHECK(blk[static_cast<std::size_t>(4 + i)] == std::byte{0x38});
  // a NaN in the row: s = NaN, every weight NaN
  nvfp4::quantize_row(x.data() + 5 * 128, blk.data(), 128);
  CHECK(std::isnan(f32_at(blk.data())));
  nvfp4::dequantize_row(blk.data(), y.data(), 128);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isnan(v); }));
  // s = 1: sub-block 1 has the E2M1 ties (to even), sub-block 2 is zero, sub-block 3 rounds to 0
  nvfp4::quantize_row(x.data() + 6 * 128, blk.data(), 128);
  CHECK(f32_at(blk.data()) == 1.0f);
  CHECK(blk[5] == std::byte{0x38});  // amax 6: E4M3(1)
  const int ties[16] = {0, 2, 2, 4, 4, 6, 6, 7, 8, 10, 10, 12, 12, 14, 14, 15};
  for (int t = 0; t < 16; ++t) {
    INFO("tie " << t);
    REQUIRE(block_q(blk.data(), 16 + t) == ties[t]);
  }
  CHECK(blk[6] == std::byte{0x38});
  CHECK(blk[7] == std::byte{0x00});
  for (int t = 48; t < 64; ++t) REQUIRE(block_q(blk.data(), t) == 0);
}

TEST_CASE("nvfp4 with a given row scale", "[quant][nvfp4]") {
  const auto x = test::random_floats(192, -3.0f, 3.0f, 8);
  const float amax = std::fabs(*std::max_element(x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
  std::vector<std::byte> a(3 * bb), b(3 * bb);
  nvfp4::quantize_row(x.data(), a.data(), 192);
  nvfp4::quantize_row_with_scale(x.data(), amax / 2688.0f, b.data(), 192);
  CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  // a larger (tensor-wide) scale: the same recipe with that s in every block
  nvfp4::quantize_row_with_scale(x.data(), 0.01f, b.data(), 192);
  for (int k = 0; k < 3; ++k) CHECK(f32_at(b.data() + k * bb) == 0.01f);
  std::vector<float> y(192);
  nvfp4::dequantize_row(b.data(), y.data(), 192);
  for (int t = 0; t < 192; ++t) REQUIRE(std::fabs(y[static_cast<std::size_t>(t)] - x[static_cast<std::size_t>(t)]) <= 0.26 * amax);
  const auto msg = test::thrown_message<value_error>([&] { nvfp4::quantize_row_with_scale(x.data(), -1.0f, b.data(), 192); });
  CHECK(msg.find("nvfp4") != std::string::npos);
  CHECK_THROWS_AS(nvfp4::quantize_row_with_scale(x.data(), std::numeric_limits<float>::infinity(), b.data(), 192), value_error);
  CHECK_THROWS_AS(nvfp4::quantize_row_with_scale(x.data(), 1.0f, b.data(), 100), shape_error);
}

TEST_CASE("every compiled nvfp4 float-product path equals the dequantized product", "[quant][nvfp4]") {
  lf::check_float_paths<nvfp4>(&random_block);
}

TEST_CASE("ops::linear with nvfp4 weights", "[quant][nvfp4]") { lf::check_linear<nvfp4>(); }

TEST_CASE("nvfp4 matrices need whole blocks; zero and NaN scales; the registry knows nvfp4", "[quant][nvfp4]") {
  lf::check_whole_blocks_and_registry<nvfp4>();
  lf::check_nan_scale<nvfp4>([](std::byte* blk) { put_f32(blk, std::numeric_limits<float>::quiet_NaN()); });
  lf::check_nan_scale<nvfp4>([](std::byte* blk) { blk[4] = blk[5] = blk[6] = blk[7] = std::byte{0x7F}; });  // E4M3 NaN codes
  // a zero row scale: zeros, whatever the codes
  std::vector<std::byte> blk(bb, std::byte{0x5A});
  put_f32(blk.data(), 0.0f);
  std::vector<float> y(64);
  nvfp4::dequantize_row(blk.data(), y.data(), 64);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }));
}
