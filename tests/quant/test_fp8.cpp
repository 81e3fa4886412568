// quant::fp8_e4m3 and quant::fp8_e5m2 (fp8.hpp) against the reference: every code of a block
// dequantizes to ml_dtypes' value times the block's float scale (one float product), quantization
// equals the fine-grained FP8 recipe in numpy float32 with ml_dtypes' casts byte for byte and its
// dequantized floats bit for bit (tests/data/lowfloat_quants.safetensors, written by
// tools/make_lowfloat_fixtures.py: zero blocks, NaN and infinity, subnormal inputs, a scale that
// underflows, the top of float's range, ties on the E4M3 and E5M2 grids); per-channel quantization
// and packing checkpoint bytes; every compiled float-product path against the dequantized weights
// ((k + 1) u sum |x w|); ops::linear; bad column counts; zero and NaN scales.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/fp8.hpp>
#include <tformer/quant/matrix.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "lowfloat_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace lf = tformer::test::lowfloat;
using quant::fp8_e4m3;
using quant::fp8_e5m2;

namespace {

constexpr std::int64_t bb = 132;  // bytes per block

using lf::f32_at;
using lf::put_f32;

/// A random block: a scale in [2^-20, 2^4) of either sign, random codes other than NaN and inf.
template <class F>
void random_block(std::mt19937& gen, std::byte* blk) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> e(-20.0f, 4.0f);
  put_f32(blk, (byte(gen) % 2 ? -1.0f : 1.0f) * std::exp2(e(gen)));
  for (int t = 0; t < 128; ++t) {
    int c = byte(gen);
    const bool special = std::is_same_v<F, fp8_e4m3> ? (c & 0x7F) == 0x7F : (c & 0x7F) >= 0x7C;
    if (special) c = 0;
    blk[4 + t] = static_cast<std::byte>(c);
  }
}

/// Every code of element E in two blocks, times each scale: the weights are fp8(c) * s.
template <class F>
void check_all_codes(const std::string& element) {
  const auto values = lf::fixture().load<float>(element + ".values");
  const float scales[] = {1.0f, 0.5f, 3.7f, 0x1p-126f, 1e-30f, 1e30f, -2.5f, 0.0f, -0.0f,
                          std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
  std::vector<std::byte> blocks(2 * bb);
  std::vector<float> y(256);
  for (const float s : scales) {
    for (int b = 0; b < 2; ++b) {
      put_f32(blocks.data() + b * bb, s);
      for (int t = 0; t < 128; ++t) blocks[static_cast<std::size_t>(b * bb + 4 + t)] = static_cast<std::byte>(128 * b + t);
    }
    F::dequantize_row(blocks.data(), y.data(), 256);
    lf::mismatch bad;
    for (int c = 0; c < 256; ++c) bad.add(c, lf::same_float(y[static_cast<std::size_t>(c)], values.data()[c] * s));
    INFO(F::name << " scale " << s << ": first code that differs " << bad.first);
    REQUIRE(bad.count == 0);
  }
}

}  // namespace

TEST_CASE("fp8 formats: blocks of 128 codes and a float scale", "[quant][fp8]") {
  STATIC_REQUIRE(quant::float_product_format<fp8_e4m3>);
  STATIC_REQUIRE(quant::float_product_format<fp8_e5m2>);
  STATIC_REQUIRE_FALSE(quant::fused_format<fp8_e4m3>);
  STATIC_REQUIRE_FALSE(quant::ggml_format<fp8_e4m3>);
  CHECK(std::string(fp8_e4m3::name) == "fp8_e4m3");
  CHECK(std::string(fp8_e5m2::name) == "fp8_e5m2");
  CHECK(fp8_e4m3::block_size == 128);
  CHECK(fp8_e4m3::block_bytes == bb);
  CHECK(fp8_e4m3::bits_per_weight == 8.25);
  CHECK(quant::row_bytes<fp8_e5m2>(4096) == 32 * bb);
}

TEST_CASE("fp8 dequantizes every code as ml_dtypes' value times the block scale", "[quant][fp8]") {
  check_all_codes<fp8_e4m3>("e4m3");
  check_all_codes<fp8_e5m2>("e5m2");
}

TEST_CASE("fp8 quantizes as the fine-grained FP8 recipe with ml_dtypes, byte for byte", "[quant][fp8]") {
  lf::check_fixture_rows<fp8_e4m3>("fp8.input", "fp8_e4m3");
  lf::check_fixture_rows<fp8_e5m2>("fp8.input", "fp8_e5m2");
  const auto x = lf::fixture().load<float>("fp8.input");
  const auto row = [&](std::int64_t r, std::int64_t b) { return x.data() + r * 256 + b * 128; };
  std::vector<std::byte> blk(2 * bb);
  // the fixture's special rows, as the recipe defines them
  fp8_e4m3::quantize_row(row(3, 0), blk.data(), 256);  // block 0 all zero: s = 0, codes 0
  CHECK(f32_at(blk.data()) == 0.0f);
  CHECK(std::all_of(blk.begin() + 4, blk.begin() + bb, [](std::byte c) { return c == std::byte{0}; }));
  fp8_e4m3::quantize_row(row(4, 0), blk.data(), 256);  // a NaN in block 0, an infinity in block 1
  CHECK(std::isnan(f32_at(blk.data())));
  CHECK(std::isnan(f32_at(blk.data() + bb)));
  std::vector<float> y(256);
  fp8_e4m3::dequantize_row(blk.data(), y.data(), 256);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isnan(v); }));
  // the grid at s = 1: E4M3's midpoints go to the even code
  fp8_e4m3::quantize_row(row(7, 0), blk.data(), 256);
  CHECK(f32_at(blk.data()) == 1.0f);
  for (int t = 0; t < 126; ++t) {
    const auto c = std::to_integer<int>(blk[static_cast<std::size_t>(4 + t)]);
    INFO("midpoint " << t);
    REQUIRE(c == ((t & 1) ? t + 1 : t));
  }
}

TEST_CASE("fp8 per-channel quantization and packed checkpoint rows", "[quant][fp8]") {
  auto x = test::random_floats(384, -2.0f, 2.0f, 3);
  x[300] = 7.0f;  // the row's max, in block 2
  std::vector<std::byte> pc(3 * bb), blocks(3 * bb);
  fp8_e4m3::quantize_row_per_channel(x.data(), pc.data(), 384);
  for (int b = 0; b < 3; ++b) {
    CHECK(f32_at(pc.data() + b * bb) == 7.0f / 448.0f);  // one scale for the row
    for (int t = 0; t < 128; ++t)
      REQUIRE(std::to_integer<std::uint8_t>(pc[static_cast<std::size_t>(b * bb + 4 + t)]) ==
              quant::to_e4m3(x[static_cast<std::size_t>(b * 128 + t)] / (7.0f / 448.0f), quant::overflow::saturate));
  }
  // pack_row copies a checkpoint's codes and scales as they are
  std::vector<std::uint8_t> codes(384);
  for (int t = 0; t < 384; ++t) codes[static_cast<std::size_t>(t)] = static_cast<std::uint8_t>(t * 7);
  const float scales[3] = {0.25f, 3.0f, -1.0f};
  fp8_e5m2::pack_row(codes.data(), scales, blocks.data(), 384);
  std::vector<float> y(384);
  fp8_e5m2::dequantize_row(blocks.data(), y.data(), 384);
  lf::mismatch bad;
  for (int t = 0; t < 384; ++t)
    bad.add(t, lf::same_float(y[static_cast<std::size_t>(t)], quant::from_e5m2(codes[static_cast<std::size_t>(t)]) * scales[t / 128]));
  INFO("first weight that differs " << bad.first);
  CHECK(bad.count == 0);
  CHECK_THROWS_AS(fp8_e5m2::pack_row(codes.data(), scales, blocks.data(), 300), shape_error);
}

TEST_CASE("every compiled fp8 float-product path equals the dequantized product", "[quant][fp8]") {
  lf::check_float_paths<fp8_e4m3>(&random_block<fp8_e4m3>);
  lf::check_float_paths<fp8_e5m2>(&random_block<fp8_e5m2>);
}

TEST_CASE("ops::linear with fp8 weights", "[quant][fp8]") {
  lf::check_linear<fp8_e4m3>();
  lf::check_linear<fp8_e5m2>();
}

TEST_CASE("fp8 matrices need whole blocks; zero and NaN scales; the registry knows fp8", "[quant][fp8]") {
  lf::check_whole_blocks_and_registry<fp8_e4m3>();
  lf::check_whole_blocks_and_registry<fp8_e5m2>();
  const auto nan = [](std::byte* blk) { put_f32(blk, std::numeric_limits<float>::quiet_NaN()); };
  lf::check_nan_scale<fp8_e4m3>(nan);
  lf::check_nan_scale<fp8_e5m2>(nan);
  // a zero scale: zeros (and NaN for E5M2's infinities, 0 * inf)
  std::vector<std::byte> blk(bb);
  put_f32(blk.data(), 0.0f);
  for (int t = 0; t < 128; ++t) blk[static_cast<std::size_t>(4 + t)] = static_cast<std::byte>(t == 5 ? 0x7C : t % 0x7C);
  std::vector<float> y(128);
  fp8_e5m2::dequantize_row(blk.data(), y.data(), 128);
  for (int t = 0; t < 128; ++t) {
    INFO("t " << t);
    if (t == 5) CHECK(std::isnan(y[static_cast<std::size_t>(t)]));
    else CHECK(y[static_cast<std::size_t>(t)] == 0.0f);
  }
}
