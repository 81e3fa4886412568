// quant::iq4_nl against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_iq4_nl / quantize_row_iq4_nl_ref (re-implemented here independently, fp16
// rounding included, evaluated as ISO C: every product rounded to float before it is added or
// subtracted), both against the reference fixture (tests/data/ggml_quants.safetensors: ggml's C
// quantize_row_iq4_nl_ref and gguf-py's dequantize, written by tools/make_quant_fixtures.py), every
// compiled fused-product and float-product path against the scalar reference, ops::linear through
// each of its paths, a GGUF round trip, and bad input. The checks shared with the other ggml
// formats are in ggml_test_support.hpp and ggml_format_checks.hpp. The bounds of the paths are
// test_q4_0's: the weights d * kvalues[q] are exact in float, as (q - 8) d is.
#include <tformer/core/memory.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/iq4_nl.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q8_0.hpp>

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
#include "ggml_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::iq4_nl_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::iq4_nl;

namespace {

// Measured worst cases, printed at the end when TFORMER_IQ4_NL_REPORT is set.
ggml::report measured("TFORMER_IQ4_NL_REPORT", "iq4_nl", "float paths");

constexpr std::int64_t bb = 18;  // bytes per block
constexpr std::int8_t levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

using ggml::ggml_best_index_int8;

/// ggml's quantize_row_iq4_nl_ref (quantize_row_iq4_nl_impl with super_block_size = block_size =
/// 32, no quant_weights, ntry = -1), written out as in ggml-quants.c with every product stored to
/// a volatile float (ISO C evaluation). Blocks below GROUP_MAX_EPS get qs = 0 (ggml leaves them
/// unspecified: see iq4_nl.hpp).
void ggml_quantize_row_iq4_nl_ref(const float* x, std::byte* y, std::int64_t k) {
  for (std::int64_t ib = 0; ib < k / 32; ++ib) {
    const float* xb = x + ib * 32;
    std::byte* blk = y + ib * bb;
    float weight[32];
    std::uint8_t L[32] = {};
    for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    float scale = 0;
    if (!(amax < 1e-15f)) {
      float d = max / levels[0];  // ntry = -1
      const float id = 1 / d;
      float sumqx = 0, sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        volatile float al = id * xb[j];
        const int l = ggml_best_index_int8(16, levels, al);
        L[j] = static_cast<std::uint8_t>(l);
        const float q = levels[l];
        const float w = weight[j];
        volatile float a = w * q * xb[j], b = w * q * q;
        sumqx += a;
        sumq2 += b;
      }
      d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
      scale = d;  // the trials over itry = 1 .. -1 run none
    }
    ggml::put_u16(blk, half_bits_ref(scale));
    for (int j = 0; j < 16; ++j) blk[2 + j] = static_cast<std::byte>(L[j] | (L[16 + j] << 4));
  }
}

/// A block: scale bits d and 16 bytes of indices.
void put_block(std::byte* p, std::uint16_t d, const std::uint8_t* qs) {
  ggml::put_u16(p, d);
  std::memcpy(p + 2, qs, 16);
}
/// Index t (< 32) of a block, in weight order.
int block_q(const std::byte* p, int t) { return ggml::nibble_at(p + 2, t); }
/// The level of weight t of a block.
int block_level(const std::byte* p, int t) { return levels[block_q(p, t)]; }

}  // namespace

TEST_CASE("iq4_nl is a fused weight format with ggml's block geometry", "[quant][iq4_nl]") {
  CHECK(std::string(iq4_nl::name) == "iq4_nl");
  CHECK(iq4_nl::ggml_type == 20u);  // GGML_TYPE_IQ4_NL
  ggml::check_geometry<iq4_nl>(18, 4.5, kern::best_path);
  for (int i = 0; i < 16; ++i) CHECK(kern::kvalues[i] == levels[i]);
}

TEST_CASE("iq4_nl dequantizes bit-exactly as ggml: d * (float)kvalues[q]", "[quant][iq4_nl]") {
  const std::uint16_t ds[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x8001, 0x83FF, 0x0000, 0x8000, 0x2E66, 0xC8F3, 0x7BFF};
  std::uint8_t qs[256];
  for (int v = 0; v < 256; ++v) qs[v] = static_cast<std::uint8_t>(v);
  std::vector<std::byte> buf(16 * bb + 1);
  std::byte* blocks = buf.data() + 1;
  std::vector<float> y(512);
  for (const std::uint16_t d : ds) {
    for (int b = 0; b < 16; ++b) put_block(blocks + b * bb, d, qs + 16 * b);
    iq4_nl::dequantize_row(blocks, y.data(), 512);
    const auto df = static_cast<float>(half_value(d));
    INFO("d bits 0x" << std::hex << d);
    for (int b = 0; b < 16; ++b)
      for (int j = 0; j < 16; ++j) {
        const int byte = qs[16 * b + j];
        const float lo = df * static_cast<float>(levels[byte & 15]), hi = df * static_cast<float>(levels[byte >> 4]);
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(32 * b + j)]) == std::bit_cast<std::uint32_t>(lo));
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(32 * b + j + 16)]) == std::bit_cast<std::uint32_t>(hi));
      }
  }
}

TEST_CASE("iq4_nl picks ggml's level: nearest, the upper one on a tie", "[quant][iq4_nl]") {
  for (int i = 0; i + 1 < 16; ++i) {  // around every midpoint and every level
    for (const float c : {static_cast<float>(levels[i]), 0.5f * static_cast<float>(levels[i] + levels[i + 1])}) {
      float p = c;
      for (int s = 0; s < 100; ++s) p = std::nextafter(p, -1e9f);
      for (int s = 0; s < 201; ++s, p = std::nextafter(p, 1e9f)) {
        INFO("x " << p);
        REQUIRE(kern::best_index(p) == ggml_best_index_int8(16, levels, p));
      }
    }
    CHECK(kern::best_index(0.5f * static_cast<float>(levels[i] + levels[i + 1])) == i + 1);
  }
  for (const float p : test::random_floats(200000, -140.0f, 130.0f, 3))
    REQUIRE(kern::best_index(p) == ggml_best_index_int8(16, levels, p));
  CHECK(kern::best_index(-1e30f) == 0);
  CHECK(kern::best_index(1e30f) == 15);
}

TEST_CASE("iq4_nl quantizes bit-exactly as ggml's quantize_row_iq4_nl_ref", "[quant][iq4_nl]") {
  constexpr std::int64_t k = 32 * 64;
  std::mt19937 gen(11);
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 2e5f}) {
    auto x = ggml::quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    x[163] = -scale;  // block 5: a tie in magnitude, the negative first
    x[170] = scale;
    x[195] = scale;  // block 6: the tie the other way round
    x[202] = -scale;
    // block 10: the levels themselves at max -127 and the midpoints between them
    for (int t = 0; t < 16; ++t) x[static_cast<std::size_t>(320 + t)] = levels[t];
    for (int t = 0; t < 15; ++t) x[static_cast<std::size_t>(336 + t)] = 0.5f * static_cast<float>(levels[t] + levels[t + 1]);
    x[351] = -127.0f;
    // block 11: one outlier; block 12: below GROUP_MAX_EPS; block 13: just above it
    x[357] = std::min(1000.0f * scale, 1e6f);
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(384 + t)] *= 1e-16f / scale;
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(416 + t)] *= 1e-14f / scale;

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * bb)), want(got.size());
    iq4_nl::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_iq4_nl_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    CHECK(block_d(got.data() + 2 * bb) == 0x0000);  // all zero: d = +0, qs = 0
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 2 * bb, t) == 0);
    CHECK(block_d(got.data() + 12 * bb) == 0x0000);  // below GROUP_MAX_EPS
    CHECK(block_q(got.data() + 11 * bb, 5) == 0);  // the outlier is the max: id * x = -127, level 0
    for (int t = 0; t < 16; ++t) REQUIRE(block_q(got.data() + 10 * bb, t) == t);  // d0 = 1: the levels
    for (int t = 0; t < 15; ++t) REQUIRE(block_q(got.data() + 10 * bb, 16 + t) == t + 1);  // ties go up
    // the round trip is never worse than the first guess's scale half a level step (64 d0)
    std::vector<float> back(x.size());
    iq4_nl::dequantize_row(got.data(), back.data(), k);
    for (std::int64_t b = 0; b < k / 32; ++b) {
      float amax = 0;
      for (int t = 0; t < 32; ++t) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(b * 32 + t)]));
      for (int t = 0; t < 32; ++t) {
        const auto j = static_cast<std::size_t>(b * 32 + t);
        REQUIRE(std::fabs(static_cast<double>(x[j]) - back[j]) <= 2.0 * amax + 1e-30);
      }
    }
  }
  ggml::check_matrix_packs<iq4_nl>(ggml_quantize_row_iq4_nl_ref);
}

TEST_CASE("iq4_nl equals ggml's C reference (the fixture) byte for byte", "[quant][iq4_nl]") {
  const auto f = ggml::gguf_py_fixture();
  ggml::check_gguf_py<iq4_nl>(f, "iq4_nl");
  ggml::check_fixture_rows<iq4_nl>(f, "input.extra", "iq4_nl.extra");
}

TEST_CASE("iq4_nl activations are q8_0's: int8 per block as ggml's Q8_0, float scales, lane sums", "[quant][iq4_nl]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  const auto x = ggml::padded_rows(activations_for(m, k, 3), m, k, ldx);
  REQUIRE(iq4_nl::activation_bytes(m, k) == quant::q8_0::activation_bytes(m, k));
  auto a = allocate_aligned<std::byte>(iq4_nl::activation_bytes(m, k));
  auto b = allocate_aligned<std::byte>(iq4_nl::activation_bytes(m, k));
  std::memset(a.get(), 0, iq4_nl::activation_bytes(m, k));
  std::memset(b.get(), 0, iq4_nl::activation_bytes(m, k));
  iq4_nl::prepare_activations(x.data(), ldx, m, k, a.get());
  quant::q8_0::prepare_activations(x.data(), ldx, m, k, b.get());
  CHECK(std::memcmp(a.get(), b.get(), iq4_nl::activation_bytes(m, k)) == 0);
}

TEST_CASE("every compiled iq4_nl path equals the scalar reference", "[quant][iq4_nl]") {
  ggml::check_paths_scaled<iq4_nl, kern::dot>(measured, 16, [](const std::byte* blk, int t) { return block_level(blk, t); });
}

TEST_CASE("every compiled iq4_nl float-activation path equals the dequantized product", "[quant][iq4_nl]") {
  ggml::check_float_paths<iq4_nl, kern::float_dot>(16);
}

TEST_CASE("iq4_nl paths are exact on integer data, every level included", "[quant][iq4_nl]") {
  constexpr std::int64_t n = 4, rb = 3 * bb;
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all -127, all 113, alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, qs);
    }
  ggml::check_exact_on_integers<iq4_nl, kern::dot>(w, [](const std::byte* blk, int t, std::int64_t) { return block_level(blk, t); });
}

TEST_CASE("ops::linear with iq4_nl weights: the fused product when opted in, float products otherwise", "[quant][iq4_nl]") {
  using fast = quant::int8_activations<iq4_nl>;
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<iq4_nl>);
  CHECK(std::string(fast::name) == "iq4_nl");
  ggml::check_linear<fast>(measured);
  ggml::check_linear<iq4_nl>(measured);
}

TEST_CASE("iq4_nl goes through a GGUF file as type IQ4_NL", "[quant][iq4_nl][gguf]") {
  ggml::check_gguf_round_trip<iq4_nl>("IQ4_NL", 96);
}

TEST_CASE("iq4_nl matrices need whole blocks; NaN scales stay NaN; the registry knows iq4_nl", "[quant][iq4_nl]") {
  ggml::check_whole_blocks_and_registry<iq4_nl>(36, 4.5);
  ggml::check_nan_scale<iq4_nl>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
}
