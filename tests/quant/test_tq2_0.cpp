// quant::tq2_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_tq2_0 / quantize_row_tq2_0_ref (re-implemented here independently, as ggml's loops
// are written, fp16 rounding included), both against the reference fixture
// (tests/data/ggml_lowbit_quants.safetensors: ggml's C functions, with which gguf-py's quantizer
// agrees; written by tools/make_lowbit_fixtures.py), every compiled float-product path against the
// scalar reference, every compiled fused int8 path (ggml's Q8_K activations) against the scalar one
// and the exact value, ops::linear (float and fused), a GGUF round trip, and bad input. The shared
// checks are in superblock_checks.hpp. Set TFORMER_LOWBIT_REPORT to print the measured worst cases.
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/tq2_0.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "superblock_checks.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::tq2_0_kernels;
namespace ggml = tformer::test::ggml;
namespace sb = tformer::test::superblock;
using quant::tq2_0;

namespace {

constexpr std::int64_t bb = 66;  // bytes per block
constexpr int d_at = 64;         // offset of d

/// ggml's dequantize_row_tq2_0, written out as in ggml-quants.c (y advancing weight by weight).
void ggml_dequantize_row_tq2_0(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const std::byte* blk = x + i * bb;
    const auto d = static_cast<float>(ggml::half_value(ggml::u16_at(blk + d_at)));
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) {
          const auto q = static_cast<std::int8_t>((std::to_integer<int>(blk[j + m]) >> (l * 2)) & 3);
          *y++ = static_cast<float>(q - 1) * d;
        }
  }
}

/// ggml's quantize_row_tq2_0_ref, written out as in ggml-quants.c.
void ggml_quantize_row_tq2_0_ref(const float* x, std::byte* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    std::byte* blk = y + i * bb;
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    ggml::put_u16(blk + d_at, ggml::half_bits_ref(d));
    for (int j = 0; j < 64; j += 32) {
      for (int m = 0; m < 32; ++m) {
        std::uint8_t q = 0;
        for (int n = 0; n < 4; ++n) {
          const long xi = std::lround(x[m + n * 32] * id) + 1;  // lroundf: halves away from zero
          q = static_cast<std::uint8_t>(q + ((xi & 3) << (2 * n)));
        }
        blk[j + m] = static_cast<std::byte>(q);
      }
      x += 4 * 32;
    }
  }
}

/// The code q_t (0 .. 3) of weight t of a block.
int block_q(const std::byte* blk, int t) {
  return (std::to_integer<int>(blk[32 * (t / 128) + t % 32]) >> (2 * ((t % 128) / 32))) & 3;
}


/// The block's integers for the fused product: d (q - 1), one group scale 1.
sb::int_block decode(const std::byte* p) {
  sb::int_block w;
  w.d = ggml::half_value(ggml::u16_at(p + d_at));
  for (int g = 0; g < 16; ++g) w.s[g] = 1;
  for (int t = 0; t < 256; ++t) w.q[t] = block_q(p, t) - 1;
  return w;
}

}  // namespace

TEST_CASE("tq2_0 is a float-product weight format with ggml's block geometry", "[quant][tq2_0]") {
  CHECK(std::string(tq2_0::name) == "tq2_0");
  CHECK(tq2_0::ggml_type == 35u);  // GGML_TYPE_TQ2_0
  sb::check_geometry<tq2_0>(66, 2.0625);
}

TEST_CASE("tq2_0 dequantizes bit-exactly as ggml: (float)(q - 1) * d, every code and scale", "[quant][tq2_0]") {
  // every finite d (a sample of them in the unoptimized build), each with a block whose 64 code
  // bytes shift with d: over the scales every byte value (so every code 0 .. 3, the never-written
  // 3 included) lands in every position
  const auto ds = sb::finite_halves();
  const std::size_t step = test::slow_build ? 31 : 1;
  std::vector<std::byte> blk(bb + 1);  // at an odd address: blocks are unaligned
  std::byte* p = blk.data() + 1;
  std::vector<float> got(256), want(256);
  sb::failures bad;
  for (std::size_t i = 0; i < ds.size(); i += step) {
    for (int t = 0; t < 64; ++t) p[t] = static_cast<std::byte>((t * 37 + ds[i]) & 255);
    ggml::put_u16(p + d_at, ds[i]);
    tq2_0::dequantize_row(p, got.data(), 256);
    ggml_dequantize_row_tq2_0(p, want.data(), 256);
    for (int t = 0; t < 256; ++t)
      if (sb::bits(got[static_cast<std::size_t>(t)]) != sb::bits(want[static_cast<std::size_t>(t)]))
        bad.add([&](auto& s) { s << "d bits " << ds[i] << " weight " << t << ": " << got[static_cast<std::size_t>(t)] << " vs " << want[static_cast<std::size_t>(t)]; });
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  // the layout: weight 128 c + 32 l + m is bits 2l of byte 32 c + m
  std::fill(p, p + 64, std::byte{0x55});  // every code 1: zeros
  p[32 + 5] = std::byte{0x55 ^ 0x30};    // weight 128 + 64 + 5: code 2 (+d)
  p[0] = std::byte{0x54};                // weight 0: code 0 (-d)
  ggml::put_u16(p + d_at, 0x4000);        // d = 2
  tq2_0::dequantize_row(p, got.data(), 256);
  CHECK(got[0] == -2.0f);
  CHECK(got[128 + 64 + 5] == 2.0f);
  CHECK(std::count(got.begin(), got.end(), 0.0f) == 254);
}

TEST_CASE("tq2_0 quantizes bit-exactly as ggml's quantize_row_tq2_0_ref", "[quant][tq2_0]") {
  constexpr std::int64_t k = 256 * 12;
  std::mt19937 gen(11);
  double worst = 0;
  for (const float scale : {1e-30f, 1e-7f, 3e-4f, 1.0f, 37.0f, 1e4f, 6e4f}) {
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;  // scattered zeros
    std::fill(x.begin() + 256, x.begin() + 512, 0.0f);                              // block 1: all zero
    x[512 + 77] = -std::min(300.0f * scale, 6e4f);                                   // block 2: one outlier
    for (int t = 0; t < 256; ++t)  // block 3: amax 2 (id = 0.5), x on -2 .. 2: x * id on halves exactly
      x[static_cast<std::size_t>(768 + t)] = static_cast<float>(t % 5 - 2);
    for (int t = 0; t < 256; ++t) x[static_cast<std::size_t>(1024 + t)] = t % 2 ? -0.0f : 0.0f;  // block 4: signed zeros
    std::fill(x.begin() + 1280, x.begin() + 1536, 0.0f);  // block 5: one nonzero, the last
    x[1535] = -scale;

    std::vector<std::byte> got(static_cast<std::size_t>(k / 256 * bb)), want(got.size());
    tq2_0::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_tq2_0_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    // the hand-checked blocks
    const std::byte* b1 = got.data() + bb;
    CHECK(ggml::u16_at(b1 + d_at) == 0x0000);  // all zero: d = 0, every code 1
    for (int t = 0; t < 64; ++t) REQUIRE(b1[t] == std::byte{0x55});
    const std::byte* b2 = got.data() + 2 * bb;
    CHECK(ggml::u16_at(b2 + d_at) == ggml::half_bits_ref(std::min(300.0f * scale, 6e4f)));
    CHECK(block_q(b2, 77) == 0);
    const std::byte* b3 = got.data() + 3 * bb;
    CHECK(ggml::u16_at(b3 + d_at) == 0x4000);  // d = 2
    for (int t = 0; t < 256; ++t) {
      const int v = t % 5 - 2, want_q = v == 0 ? 1 : v == 1 ? 2 : v == -1 ? 0 : v > 0 ? 2 : 0;  // +-0.5 away from 0
      REQUIRE(block_q(b3, t) == want_q);
    }
    CHECK(ggml::u16_at(got.data() + 4 * bb + d_at) == 0x0000);
    CHECK(block_q(got.data() + 5 * bb, 255) == 0);

    // round trip: |x - w| <= amax / 2 (1 + 2^-20) + |amax - d16|
    std::vector<float> back(static_cast<std::size_t>(k));
    tq2_0::dequantize_row(got.data(), back.data(), k);
    sb::failures bad;
    for (std::int64_t b = 0; b < k / 256; ++b) {
      float amax = 0;
      for (int t = 0; t < 256; ++t) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(b * 256 + t)]));
      const double d16 = ggml::half_value(ggml::u16_at(got.data() + b * bb + d_at));
      const double bound = amax * 0.5 * (1 + 0x1p-20) + std::fabs(amax - d16) + 1e-45;
      for (int t = 0; t < 256; ++t) {
        const auto j = static_cast<std::size_t>(b * 256 + t);
        const double err = std::fabs(static_cast<double>(x[j]) - back[j]);
        if (!(err <= bound)) bad.add([&](auto& s) { s << "block " << b << " weight " << t << ": err " << err << " bound " << bound; });
        if (d16 >= 0x1p-14) worst = std::max(worst, err / amax);  // (a d16 of 0 leaves err = |x|)
      }
    }
    TFORMER_REQUIRE_NO_FAILURES(bad);
  }
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("tq2_0 round trip: max |x - w| / amax = %.6f\n", worst);
}

TEST_CASE("tq2_0 equals ggml's C reference on the fixture, byte for byte", "[quant][tq2_0]") {
  sb::check_fixture<tq2_0>(sb::lowbit_fixture(), "tq2_0");
}

TEST_CASE("every compiled tq2_0 float-activation path equals the dequantized product", "[quant][tq2_0]") {
  const double worst = sb::check_float_paths<tq2_0, kern::float_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at}); });
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("tq2_0 float paths: max |y - exact| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("every compiled tq2_0 fused int8 path gives the scalar reference's bits, near the exact value", "[quant][tq2_0]") {
  STATIC_REQUIRE(quant::fused_format<tq2_0>);
  CHECK(tq2_0::max_fused_rows == 8);
  const double worst = sb::check_fused_paths<tq2_0, kern::fused_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at}); }, decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("tq2_0 fused scalar: max |y - exact| / M = %.3g\n", worst);
}

TEST_CASE("ops::linear with int8_activations<tq2_0>: ggml's Q8_K activations and the fused product", "[quant][tq2_0]") {
  STATIC_REQUIRE(quant::uses_fused_product<quant::int8_activations<tq2_0>>);
  const double worst = sb::check_fused_linear<tq2_0>(decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("tq2_0 fused linear: max |fused - float| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("ops::linear with tq2_0 weights: float_product for few rows, tiles beyond", "[quant][tq2_0]") {
  const double worst = sb::check_linear<tq2_0>([](tensor<float>&) {});
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("tq2_0 linear: max err / sum|xw| = %.3g\n", worst);
}

TEST_CASE("tq2_0 goes through a GGUF file as type TQ2_0", "[quant][tq2_0][gguf]") {
  sb::check_gguf_round_trip<tq2_0>("TQ2_0");
}

TEST_CASE("tq2_0 matrices need whole blocks; NaN scales stay NaN; the registry knows tq2_0", "[quant][tq2_0]") {
  sb::check_whole_blocks_and_registry<tq2_0>();
  sb::check_nan_scale<tq2_0>([](std::byte* blk) { ggml::put_u16(blk + d_at, 0x7E00); });
}
