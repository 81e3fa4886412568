// quant::q4_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q4_0 / quantize_row_q4_0_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: x * id rounded before + 8.5f), both against gguf-py's output
// (tests/data/ggml_quants.safetensors, written by tools/make_quant_fixtures.py), every compiled
// fused-product path against the scalar reference, and ops::linear through each of its paths
// (the fused product for up to 64 rows when the format is int8_activations<q4_0>, float products of
// dequantized rows or tiles otherwise). The checks shared with q8_0 and q4_1 are in
// ggml_test_support.hpp.
//
// Bounds (u = 2^-24):
// - paths vs scalar: every path computes the same exact int32 sums I_b = sum_t (q_t - 8) qx_t and
//   the same float scales s_b = fl(d_w d_x); they differ only in how the terms s_b I_b are summed
//   (one chain of nb fma in the scalar path; 8 or 16 lanes, then a lane reduction in SIMD), so two
//   paths differ by at most (2 nb + 32) u M, M = sum_b |s_b| sum_t |(q_t - 8) qx_t|.
// - fused vs float product on the dequantized weights: the weights are the same numbers ((q - 8) d
//   is exact in float), so the difference is the activations' quantization, bounded as in
//   test_q8_0: per block sum_t |w_t| amax_b / 254 (1 + 2^-15)(1 + u), plus 1e-5 sum_t |x_t w_t| for
//   the float sums on both sides (K <= 768 here).
// - round trip of a weight: p = x id is x / d within 8 * 2u (two roundings), and trunc(fl(p + 8.5))
//   is p rounded to the nearest integer, halves up, within 2^-20 (the float rounding of p + 8.5), so
//   |x - (q - 8) d| <= |d| (1/2 + 2^-18) when q < 15, and |d| (1 + 2^-18) when q = 15 clamps 16
//   (x = -max lands on 8, one past the largest nibble); storing d in fp16 adds |q - 8| |d - d16| <=
//   8 |d - d16|.
#include <tformer/core/memory.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_0.hpp>
#include <tformer/quant/q8_0.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "ggml_format_checks.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q4_0_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::q4_0;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q4_0_REPORT is set.
ggml::report measured("TFORMER_Q4_0_REPORT", "q4_0", "float paths");

constexpr std::int64_t bb = 18;  // bytes per block

/// ggml's MIN(15, (int8_t)(x0 + c)) where x0 is a float variable (ggml::ggml_clamped_int8). Inputs
/// in [-c, 16).
std::uint8_t ggml_nibble(float product, float c) { return ggml::ggml_clamped_int8(product, c, 15); }

/// ggml's quantize_row_q4_0_ref, written out as in ggml-quants.c.
void ggml_quantize_row_q4_0_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int qk = 32;
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float max = ggml::ggml_block_max(x + i * qk);
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* blk = y + i * bb;
    ggml::put_u16(blk, half_bits_ref(d));  // little endian
    for (int j = 0; j < qk / 2; ++j) {
      const std::uint8_t xi0 = ggml_nibble(x[i * qk + 0 + j] * id, 8.5f);
      const std::uint8_t xi1 = ggml_nibble(x[i * qk + qk / 2 + j] * id, 8.5f);
      blk[2 + j] = static_cast<std::byte>(xi0 | xi1 << 4);
    }
  }
}

/// A block: scale bits d (little endian) and 16 bytes of nibbles.
void put_block(std::byte* p, std::uint16_t d, const std::uint8_t* qs) {
  ggml::put_u16(p, d);
  std::memcpy(p + 2, qs, 16);
}
/// Nibble t (< 32) of a block, in weight order.
int block_q(const std::byte* p, int t) { return ggml::nibble_at(p + 2, t); }

/// The bound on |x - deq(q(x))| for one weight (see the top of the file).
double roundtrip_bound(const float* block, int q, std::uint16_t d16) {
  const float max = ggml::ggml_block_max(block);
  const double d = max / -8.0f;
  return std::fabs(d) * ((q == 15 ? 1.0 : 0.5) + 0x1p-18) + 8 * std::fabs(d - half_value(d16)) + 1e-45;
}

}  // namespace

TEST_CASE("q4_0 is a fused weight format with ggml's block geometry", "[quant][q4_0]") {
  CHECK(std::string(q4_0::name) == "q4_0");
  CHECK(q4_0::ggml_type == 2u);  // GGML_TYPE_Q4_0
  ggml::check_geometry<q4_0>(18, 4.5, kern::best_path);
}

TEST_CASE("q4_0 dequantizes bit-exactly as ggml: (float)(q - 8) * (float)d", "[quant][q4_0]") {
  // d: 1, -1, the smallest and largest subnormal (also negative), 0, -0, a normal fraction, 65504
  const std::uint16_t ds[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x8001, 0x83FF, 0x0000, 0x8000, 0x2E66, 0xC8F3, 0x7BFF};
  // 16 blocks whose 256 bytes of nibbles are every byte value, at an odd (unaligned) offset
  std::uint8_t qs[256];
  for (int v = 0; v < 256; ++v) qs[v] = static_cast<std::uint8_t>(v);
  std::vector<std::byte> buf(16 * bb + 1);
  std::byte* blocks = buf.data() + 1;
  std::vector<float> y(512);
  for (const std::uint16_t d : ds) {
    for (int b = 0; b < 16; ++b) put_block(blocks + b * bb, d, qs + 16 * b);
    q4_0::dequantize_row(blocks, y.data(), 512);
    const auto df = static_cast<float>(half_value(d));  // exact: every half is a float
    INFO("d bits 0x" << std::hex << d);
    for (int b = 0; b < 16; ++b)
      for (int j = 0; j < 16; ++j) {
        const int byte = qs[16 * b + j];
        const float lo = static_cast<float>((byte & 15) - 8) * df, hi = static_cast<float>((byte >> 4) - 8) * df;
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(32 * b + j)]) == std::bit_cast<std::uint32_t>(lo));
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(32 * b + j + 16)]) == std::bit_cast<std::uint32_t>(hi));
      }
  }
  // a matrix dequantizes row by row the same way: rows of 64, block b with scale ds[b]
  quant::matrix<q4_0> m(2, 64);
  for (int b = 0; b < 4; ++b) put_block(m.data() + b * bb, ds[b], qs + 16 * b);
  const auto t = m.to_float();
  for (int j = 0; j < 128; ++j)
    REQUIRE(t.data()[j] == static_cast<float>(block_q(m.data() + j / 32 * bb, j % 32) - 8) * static_cast<float>(half_value(ds[j / 32])));
}

TEST_CASE("q4_0 rounds to a nibble as ggml's ISO C evaluation, whatever the contraction", "[quant][q4_0]") {
  // nibble_of(p, c) == MIN(15, (int8_t)(fl(p + c))) on the 401 floats around every p with p + c an
  // integer (the truncation's boundaries), for both offsets (8.5: q4_0, 0.5: q4_1)
  for (const float c : {8.5f, 0.5f}) {
    for (int n = 0; n <= 16; ++n) {
      float p = static_cast<float>(n) - c;
      for (int s = 0; s < 200; ++s) p = std::nextafter(p, -1e9f);
      for (int s = 0; s < 401; ++s, p = std::nextafter(p, 1e9f)) {
        if (p + c < -0.5f || p + c >= 16.5f) continue;
        INFO("c " << c << " p " << p);
        REQUIRE(kern::nibble_of(p, c) == ggml_nibble(p, c));
      }
    }
    for (const float p : test::random_floats(200000, -c, 16.0f - c, 3)) REQUIRE(kern::nibble_of(p, c) == ggml_nibble(p, c));
    for (const float p : test::random_floats(20000, -1e-6f, 1e-6f, 4)) REQUIRE(kern::nibble_of(p, c) == ggml_nibble(p, c));
  }
  // ISO C, not an fma: in a block with max 3 (d = -0.375), x = 2.8125 gives x * id = -7.5000002,
  // rounded to -7.5, + 8.5 = 1: q = 1 (fl(x * id + 8.5) = 0.99999976 would give 0)
  const float id = 1.0f / -0.375f;
  CHECK(kern::nibble_of(2.8125f * id, 8.5) == 1);
  CHECK(std::fma(2.8125f, id, 8.5f) < 1.0f);
  // degenerate products (a block max below 2^-125, whose 1 / d overflows) give 0 as on x86 ggml
  CHECK(kern::nibble_of(std::numeric_limits<float>::infinity(), 8.5) == 0);
  CHECK(kern::nibble_of(-std::numeric_limits<float>::infinity(), 8.5) == 0);
  CHECK(kern::nibble_of(std::numeric_limits<float>::quiet_NaN(), 8.5) == 0);
}

TEST_CASE("q4_0 quantizes bit-exactly as ggml's quantize_row_q4_0_ref", "[quant][q4_0]") {
  constexpr std::int64_t k = 32 * 64;
  std::mt19937 gen(11);
  // whole rows at one scale each: fp16-subnormal d (|max| < 8 * 2^-14), small, unit, large
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 2e5f}) {
    auto x = ggml::quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    // block 5: a tie in magnitude, the negative first: max = -scale, d > 0
    x[163] = -scale;
    x[170] = scale;
    // block 6: the tie the other way round: max = +scale, d < 0
    x[195] = scale;
    x[202] = -scale;
    // block 10: ggml's own grid at d = 0.25 (max -2): every x * id is an integer, the round trip exact
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(320 + t)] = 0.25f * static_cast<float>(t % 16 - 8);
    // block 11: max 3, d = -0.375, x = 0.375 (j + 0.5) lands next to halves; 2.8125 is the fma case
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(352 + t)] = 0.375f * (static_cast<float>(t % 16 - 8) + 0.5f);
    x[352] = 3.0f;
    x[353] = 2.8125f;

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * bb)), want(got.size());
    q4_0::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q4_0_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    // the hand-checked blocks
    CHECK(block_d(got.data() + 2 * bb) == 0x8000);  // all zero: d = 0 / -8 = -0; q = 8 (x = 0)
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 2 * bb, t) == 8);
    CHECK(block_d(got.data() + 5 * bb) == half_bits_ref(scale / 8));   // max = -scale: d > 0
    CHECK(block_q(got.data() + 5 * bb, 3) == 0);                        // -scale / d = -8
    CHECK(block_d(got.data() + 6 * bb) == half_bits_ref(-scale / 8));  // max = +scale: d < 0
    CHECK(block_q(got.data() + 6 * bb, 3) == 0);
    CHECK(block_q(got.data() + 6 * bb, 10) == 15);  // -max / d = 8: 16.5 truncates to 16, clamped to 15
    CHECK(block_d(got.data() + 10 * bb) == 0x3400);  // d = 0.25
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 10 * bb, t) == t % 16);
    CHECK(block_d(got.data() + 11 * bb) == 0xB600);  // d = -0.375
    CHECK(block_q(got.data() + 11 * bb, 1) == 1);    // 2.8125: 1 as ISO C (an fma gives 0)

    // round trip within the bound at the top of the file
    ggml::check_roundtrip<q4_0>(measured, x, got, [](const float* xb, const std::byte* blk) {
      return [=](int t, float) { return roundtrip_bound(xb, block_q(blk, t), block_d(blk)); };
    });
  }
  // quant::matrix<q4_0>::quantize packs rows the same way
  ggml::check_matrix_packs<q4_0>(ggml_quantize_row_q4_0_ref);
}

TEST_CASE("q4_0 equals gguf-py's quantize and dequantize byte for byte", "[quant][q4_0]") {
  // tests/data/ggml_quants.safetensors: gguf.quants (gguf 0.19, numpy) on 16 rows of 64 floats:
  // random blocks and hand-made ones (ties, zeros, the fma case, fp16-subnormal and -underflowing
  // scales, +-6e4). gguf-py evaluates Q4_0 unfused in float32, like ISO C.
  const auto f = ggml::gguf_py_fixture();
  ggml::check_gguf_py<q4_0>(f, "q4_0");
  // the fma case is in the fixture (row 10, block 1, weight 1): gguf-py says 1 as well
  const auto x = f.load<float>("input");
  const auto packed = f.load<std::uint8_t>("q4_0");
  CHECK((packed(10, bb + 2 + 1) & 15) == 1);
  CHECK(x(10, 33) == 2.8125f);
}

TEST_CASE("q4_0 activations are q8_0's: int8 per block as ggml's Q8_0, float scales, lane sums", "[quant][q4_0]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  const auto x = ggml::padded_rows(activations_for(m, k, 3), m, k, ldx);  // the padding must never be read
  REQUIRE(q4_0::activation_bytes(m, k) == quant::q8_0::activation_bytes(m, k));
  auto a = allocate_aligned<std::byte>(q4_0::activation_bytes(m, k));
  auto b = allocate_aligned<std::byte>(q4_0::activation_bytes(m, k));
  std::memset(a.get(), 0, q4_0::activation_bytes(m, k));
  std::memset(b.get(), 0, q4_0::activation_bytes(m, k));
  q4_0::prepare_activations(x.data(), ldx, m, k, a.get());
  quant::q8_0::prepare_activations(x.data(), ldx, m, k, b.get());
  CHECK(std::memcmp(a.get(), b.get(), q4_0::activation_bytes(m, k)) == 0);
}

TEST_CASE("every compiled q4_0 path equals the scalar reference", "[quant][q4_0]") {
  // weight blocks of random nibbles (every value) and random scales (normal and subnormal, both signs)
  ggml::check_paths_scaled<q4_0, kern::dot>(measured, 16, [](const std::byte* blk, int t) { return block_q(blk, t) - 8; });
}

TEST_CASE("every compiled q4_0 float-activation path equals the dequantized product", "[quant][q4_0]") {
  ggml::check_float_paths<q4_0, kern::float_dot>(16);
}

TEST_CASE("q4_0 paths are exact on integer data, every nibble included", "[quant][q4_0]") {
  // d_w = 1 and activations with amax 127 (d_x = 1, q = x): every product and sum is an integer
  constexpr std::int64_t n = 4, rb = 3 * bb;
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all 0 (weights -8), all 15 (7), alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, qs);
    }
  ggml::check_exact_on_integers<q4_0, kern::dot>(w, [](const std::byte* blk, int t, std::int64_t) { return block_q(blk, t) - 8; });
}

TEST_CASE("ops::linear with q4_0 weights: the fused product when opted in, float products otherwise", "[quant][q4_0]") {
  using fast = quant::int8_activations<q4_0>;  // the spelling a spec uses to switch the fused product on
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q4_0>);
  CHECK(std::string(fast::name) == "q4_0");
  ggml::check_linear<fast>(measured);
  ggml::check_linear<q4_0>(measured);
}

TEST_CASE("q4_0 matrices need whole blocks; the registry knows q4_0", "[quant][q4_0]") {
  ggml::check_whole_blocks_and_registry<q4_0>(36, 4.5);
}
