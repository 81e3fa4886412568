// quant::mxfp4 (mxfp4.hpp) against its references: every scale and nibble pattern dequantizes by
// OCP's formula E2M1(q) * 2^(e - 127) on ml_dtypes' element values; quantization equals ggml's C
// quantize_row_mxfp4_ref byte for byte (the fixture tests/data/lowfloat_quants.safetensors, from
// ggml's library through ctypes: ties, amax next to powers of two, signed zeros, the smallest and
// largest scales) and a re-implementation of that C written here on random rows at every
// magnitude; the scale exponent equals floorf(log2f(amax)) next to every power of two; the
// documented deviations (non-finite and tiny blocks); every compiled float-product path against the
// dequantized weights; ops::linear; a GGUF round trip as type MXFP4; bad column counts; NaN scales.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/mxfp4.hpp>

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
#include "ggml_format_checks.hpp"
#include "lowfloat_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace lf = tformer::test::lowfloat;
namespace ggml = tformer::test::ggml;
namespace kern = tformer::quant::detail::mxfp4_kernels;
using quant::mxfp4;

namespace {

constexpr std::int64_t bb = 17;  // bytes per block
constexpr std::int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/// ggml's GGML_E8M0_TO_FP32_HALF, as ggml-impl.h writes it.
float ggml_e8m0_to_fp32_half(std::uint8_t x) {
  const std::uint32_t bits = x < 2 ? 0x00200000u << x : static_cast<std::uint32_t>(x - 1) << 23;
  return std::bit_cast<float>(bits);
}

/// ggml's best_index_mxfp4 and quantize_row_mxfp4_ref, as ggml-quants.c writes them (finite
/// inputs whose blocks have amax 0 or >= 2^-125, where the C is defined).
int ggml_best_index_mxfp4(float x, float e) {
  int best_index = 0;
  float best_err = std::fabs(kvalues_mxfp4[0] * e - x);
  for (int i = 1; i < 16; i++) {
    const float err = std::fabs(kvalues_mxfp4[i] * e - x);
    if (err < best_err) {
      best_index = i;
      best_err = err;
    }
  }
  return best_index;
}
void ggml_quantize_row_mxfp4_ref(const float* x, std::byte* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 32; i++) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      if (amax < std::fabs(x[i * 32 + j])) amax = std::fabs(x[i * 32 + j]);
    const auto e = static_cast<std::uint8_t>(amax > 0.0f ? static_cast<int>(std::floor(::log2f(amax)) - 2 + 127) : 0);
    const float d = ggml_e8m0_to_fp32_half(e);
    y[i * bb] = static_cast<std::byte>(e);
    for (int j = 0; j < 16; ++j) {
      const int x0 = ggml_best_index_mxfp4(x[i * 32 + j], d), x1 = ggml_best_index_mxfp4(x[i * 32 + 16 + j], d);
      y[i * bb + 1 + j] = static_cast<std::byte>(x0 | (x1 << 4));
    }
  }
}

/// A random block: a scale code in [100, 154], every nibble pattern likely.
void random_block(std::mt19937& gen, std::byte* blk) {
  std::uniform_int_distribution<int> byte(0, 255);
  blk[0] = static_cast<std::byte>(100 + byte(gen) % 55);
  for (int t = 1; t < bb; ++t) blk[t] = static_cast<std::byte>(byte(gen));
}

}  // namespace

TEST_CASE("mxfp4 is ggml's MXFP4: 17-byte blocks of 32, GGML type 39", "[quant][mxfp4]") {
  STATIC_REQUIRE(quant::float_product_format<mxfp4>);
  STATIC_REQUIRE(quant::ggml_format<mxfp4>);
  CHECK(std::string(mxfp4::name) == "mxfp4");
  CHECK(mxfp4::ggml_type == 39u);
  CHECK(mxfp4::block_size == 32);
  CHECK(mxfp4::block_bytes == bb);
  CHECK(mxfp4::bits_per_weight == 4.25);
}

TEST_CASE("mxfp4 dequantizes every scale and nibble by OCP's formula on ml_dtypes' values", "[quant][mxfp4]") {
  const auto e2m1 = lf::fixture().load<float>("e2m1.values");
  const auto e8m0 = lf::fixture().load<float>("e8m0.values");
  std::vector<std::byte> blocks(256 * bb);
  for (int i = 0; i < 256; ++i) {  // block i: e = i; its 16 bytes run through every byte value
    blocks[static_cast<std::size_t>(i * bb)] = static_cast<std::byte>(i);
    for (int j = 0; j < 16; ++j) blocks[static_cast<std::size_t>(i * bb + 1 + j)] = static_cast<std::byte>((16 * i + j + 7 * (i / 16)) % 256);
  }
  std::vector<float> y(256 * 32);
  mxfp4::dequantize_row(blocks.data(), y.data(), 256 * 32);
  lf::mismatch bad;
  for (int i = 0; i < 256; ++i)
    for (int t = 0; t < 32; ++t) {
      const auto byte = std::to_integer<int>(blocks[static_cast<std::size_t>(i * bb + 1 + t % 16)]);
      const int q = t < 16 ? byte & 15 : byte >> 4;
      bad.add(i * 32 + t, lf::same_float(y[static_cast<std::size_t>(i * 32 + t)], e2m1.data()[q] * e8m0.data()[i]));
    }
  INFO("first weight that differs " << bad.first);
  CHECK(bad.count == 0);
  CHECK(std::isnan(y[255 * 32]));                     // e = 0xFF: NaN
  CHECK(y[0 * 32 + 1] == 0x1p-128f);                  // e = 0, q = 1: 0.5 * 2^-127 (a float subnormal)
  std::byte top[bb] = {std::byte{254}, std::byte{0x37}};  // e = 254: q = 7 (6 * 2^127) overflows, q = 3 (1.5 * 2^127) does not
  mxfp4::dequantize_row(top, y.data(), 32);
  CHECK(y[0] == std::numeric_limits<float>::infinity());
  CHECK(y[16] == 0x1.8p127f);
}

TEST_CASE("mxfp4 quantizes as ggml's quantize_row_mxfp4_ref, byte for byte", "[quant][mxfp4]") {
  lf::check_fixture_rows<mxfp4>("mxfp4.input", "mxfp4");
  // random rows at every magnitude against the C written out above
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(-120.0f, 120.0f);
  const int rows = test::slow_build ? 40 : 400;
  std::vector<float> x(256);
  std::vector<std::byte> got(8 * bb), want(8 * bb);
  lf::mismatch bad;
  for (int r = 0; r < rows; ++r) {
    const float s = std::exp2(mag(gen));
    for (auto& v : x) v = normal(gen) * s;
    x[static_cast<std::size_t>(r % 256)] = std::exp2(std::floor(mag(gen))) * (r % 3 ? 1.0f : 1.0f - 0x1p-24f * static_cast<float>(r % 9));
    mxfp4::quantize_row(x.data(), got.data(), 256);
    ggml_quantize_row_mxfp4_ref(x.data(), want.data(), 256);
    bad.add(r, std::memcmp(got.data(), want.data(), got.size()) == 0);
  }
  INFO("first row that differs " << bad.first);
  CHECK(bad.count == 0);
  ggml::check_matrix_packs<mxfp4>(ggml_quantize_row_mxfp4_ref);
}

TEST_CASE("mxfp4's scale exponent is floorf(log2f(amax)) next to every power of two", "[quant][mxfp4]") {
  lf::mismatch bad;
  std::int64_t i = 0;
  for (int k = -125; k <= 127; ++k)
    for (int j = -64; j <= 64; ++j, ++i) {
      const float p = std::ldexp(1.0f, k);
      const float a = j <= 0 ? p * (1.0f - 0x1p-24f * static_cast<float>(-j)) : p * (1.0f + 0x1p-23f * static_cast<float>(j));
      if (!std::isfinite(a) || a < 0x1p-125f) continue;
      const auto want = static_cast<std::uint8_t>(static_cast<int>(std::floor(::log2f(a)) - 2 + 127));
      bad.add(i, kern::scale_code_for(a) == want);
    }
  INFO("first amax that differs " << bad.first);
  CHECK(bad.count == 0);
  CHECK(kern::scale_code_for(0.0f) == 0);
  CHECK(kern::scale_code_for(6.0f) == 127);  // 6 = 1.5 * 2^2: X = 2^0
  CHECK(kern::scale_code_for(std::numeric_limits<float>::max()) == 253);  // log2f(FLT_MAX) rounds to 128
}

TEST_CASE("mxfp4 where ggml's C is undefined: non-finite and tiny blocks", "[quant][mxfp4]") {
  std::vector<float> x(64, 0.5f);
  x[3] = std::numeric_limits<float>::infinity();
  x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::byte> blk(2 * bb);
  mxfp4::quantize_row(x.data(), blk.data(), 64);
  for (int b = 0; b < 2; ++b) {
    CHECK(blk[static_cast<std::size_t>(b * bb)] == std::byte{0xFF});  // NaN scale
    for (int j = 1; j < bb; ++j) REQUIRE(blk[static_cast<std::size_t>(b * bb + j)] == std::byte{0});
  }
  std::vector<float> y(64);
  mxfp4::dequantize_row(blk.data(), y.data(), 64);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isnan(v); }));
  // amax below 2^-125: the smallest scale (e = 0, 2^-127), and the nearest levels of it
  for (int t = 0; t < 64; ++t) x[static_cast<std::size_t>(t)] = (t % 2 ? -1.0f : 1.0f) * 0x1p-130f * static_cast<float>(t % 5);
  mxfp4::quantize_row(x.data(), blk.data(), 64);
  CHECK(blk[0] == std::byte{0});
  mxfp4::dequantize_row(blk.data(), y.data(), 64);
  for (int t = 0; t < 64; ++t) REQUIRE(std::fabs(y[static_cast<std::size_t>(t)] - x[static_cast<std::size_t>(t)]) <= 0x1p-129f);
  // an all-zero block: e = 0, codes 0
  std::fill(x.begin(), x.end(), 0.0f);
  mxfp4::quantize_row(x.data(), blk.data(), 64);
  CHECK(std::all_of(blk.begin(), blk.end(), [](std::byte c) { return c == std::byte{0}; }));
}

TEST_CASE("every compiled mxfp4 float-product path equals the dequantized product", "[quant][mxfp4]") {
  lf::check_float_paths<mxfp4>(&random_block);
}

TEST_CASE("ops::linear with mxfp4 weights", "[quant][mxfp4]") { lf::check_linear<mxfp4>(); }

TEST_CASE("mxfp4 goes through a GGUF file as type MXFP4", "[quant][mxfp4][gguf]") {
  ggml::check_gguf_round_trip<mxfp4>("MXFP4", 96);
}

TEST_CASE("mxfp4 matrices need whole blocks; NaN scales; the registry knows mxfp4", "[quant][mxfp4]") {
  lf::check_whole_blocks_and_registry<mxfp4>();
  lf::check_nan_scale<mxfp4>([](std::byte* blk) { blk[0] = std::byte{0xFF}; });
}
