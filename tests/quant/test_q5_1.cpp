// quant::q5_1 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q5_1 / quantize_row_q5_1_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: (x - min) * id rounded before + 0.5f), both against the reference
// fixture (tests/data/ggml_quants.safetensors: gguf-py's quantize / dequantize, which agree with
// ggml's C reference on it; written by tools/make_quant_fixtures.py), every compiled fused-product
// and float-product path against the scalar reference, ops::linear through each of its paths, a
// GGUF round trip, and bad input. The checks shared with the other ggml formats are in
// ggml_test_support.hpp and ggml_format_checks.hpp.
//
// Bounds: test_q5_1's, with q up to 31: the round trip's p = (x - min) id is (x - min) / d within
// 31 * 3u, still below 2^-17 with the 2^-20 of the rounding to float; storing d in fp16 adds
// 31 |d - d16|.
#include <tformer/core/memory.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q5_1.hpp>
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
namespace kern = tformer::quant::detail::q5_1_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::q5_1;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q5_1_REPORT is set.
ggml::report measured("TFORMER_Q5_1_REPORT", "q5_1", "float paths");

constexpr std::int64_t bb = 24;  // bytes per block

/// ggml's quantize_row_q5_1_ref, written out as in ggml-quants.c. volatile makes the compiler round
/// x0 to float before + 0.5f, as ISO C evaluates ggml's two statements (GCC would otherwise
/// contract the product and the add into one fma).
void ggml_quantize_row_q5_1_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int qk = 32;
  for (std::int64_t i = 0; i < k / qk; ++i) {
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
    for (int j = 0; j < qk; ++j) {
      const float v = x[i * qk + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* blk = y + i * bb;
    ggml::put_u16(blk, half_bits_ref(d));  // little endian
    ggml::put_u16(blk + 2, half_bits_ref(min));
    std::uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      volatile float x0 = (x[i * qk + 0 + j] - min) * id;
      volatile float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const auto xi0 = static_cast<std::uint8_t>(x0 + 0.5f);
      const auto xi1 = static_cast<std::uint8_t>(x1 + 0.5f);
      blk[8 + j] = static_cast<std::byte>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    for (int b = 0; b < 4; ++b) blk[4 + b] = static_cast<std::byte>(qh >> (8 * b));  // memcpy on little endian
  }
}

/// A block: scale bits d, offset bits m (little endian), fifth bits qh and 16 bytes of nibbles.
void put_block(std::byte* p, std::uint16_t d, std::uint16_t m, const std::uint8_t* qs, std::uint32_t qh) {
  ggml::put_u16(p, d);
  ggml::put_u16(p + 2, m);
  for (int b = 0; b < 4; ++b) p[4 + b] = static_cast<std::byte>(qh >> (8 * b));
  std::memcpy(p + 8, qs, 16);
}
std::uint16_t block_m(const std::byte* p) { return ggml::u16_at(p + 2); }
/// q_t (< 32) of a block, in weight order, as ggml's dequantize_row_q5_1 forms it.
int block_q(const std::byte* p, int t) {
  std::uint32_t qh = 0;
  for (int b = 0; b < 4; ++b) qh |= std::to_integer<std::uint32_t>(p[4 + b]) << (8 * b);
  const int j = t % 16;
  const auto xh = t < 16 ? ((qh >> (j + 0)) << 4) & 0x10 : ((qh >> (j + 12))) & 0x10;
  return ggml::nibble_at(p + 8, t) | static_cast<int>(xh);
}
/// Fifth bits of every pattern, by block.
constexpr std::uint32_t qhs[16] = {0, 0xFFFFFFFF, 0xAAAAAAAA, 0x55555555, 0x0000FFFF, 0xFFFF0000, 0x80000001, 0x12345678,
                                   0x9ABCDEF0, 1, 0x80000000, 0x00010000, 0x00008000, 0xDEADBEEF, 0x0F0F0F0F, 0xF0F0F0F0};
/// Random fifth bits.
std::uint32_t random_qh(std::mt19937& gen) { return static_cast<std::uint32_t>(gen()); }
/// ggml's dequantized weight q * d + m, rounded once (q * d + m is exact in double).
float weight_of(int q, std::uint16_t d, std::uint16_t m) {
  return static_cast<float>(q * half_value(d) + half_value(m));
}

/// A random binary16: exponent field 1..8 (2^-14 .. 2^-7) mostly, a subnormal 1 in 9, either sign.
std::uint16_t random_half(std::mt19937& gen) {
  std::uniform_int_distribution<int> byte(0, 255);
  const int e = byte(gen) % 9;  // one draw per statement: a fixed order
  const int mant_hi = byte(gen), mant_lo = byte(gen) % 4, sign = byte(gen) % 2;
  return static_cast<std::uint16_t>((e == 0 ? 0 : e << 10) | mant_hi << 2 | mant_lo | sign << 15);
}

}  // namespace

TEST_CASE("q5_1 is a fused weight format with ggml's block geometry", "[quant][q5_1]") {
  CHECK(std::string(q5_1::name) == "q5_1");
  CHECK(q5_1::ggml_type == 7u);  // GGML_TYPE_Q5_1
  ggml::check_geometry<q5_1>(24, 6.0, kern::best_path);
}

TEST_CASE("q5_1 dequantizes bit-exactly as ggml: q * d + m in float", "[quant][q5_1]") {
  // d and m: 1, -1, the smallest and largest subnormal, 0, -0, normal fractions, +-65504
  const std::uint16_t ds[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x0000, 0x8000, 0x2E66, 0x7BFF};
  const std::uint16_t ms[] = {0x0000, 0x8000, 0x3C00, 0xC8F3, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x2E66};
  // 16 blocks whose 256 bytes of nibbles are every byte value, at an odd (unaligned) offset
  std::uint8_t qs[256];
  for (int v = 0; v < 256; ++v) qs[v] = static_cast<std::uint8_t>(v);
  std::vector<std::byte> buf(16 * bb + 1);
  std::byte* blocks = buf.data() + 1;
  std::vector<float> y(512);
  for (const std::uint16_t d : ds)
    for (const std::uint16_t m : ms) {
      for (int b = 0; b < 16; ++b) put_block(blocks + b * bb, d, m, qs + 16 * b, qhs[b]);
      q5_1::dequantize_row(blocks, y.data(), 512);
      INFO("d bits 0x" << std::hex << d << " m bits 0x" << m);
      for (int j = 0; j < 512; ++j) {
        const float want = weight_of(block_q(blocks + j / 32 * bb, j % 32), d, m);
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(want));
      }
    }
  // a matrix dequantizes row by row the same way: rows of 64, block b with d = ds[b], m = ms[b]
  quant::matrix<q5_1> m(2, 64);
  for (int b = 0; b < 4; ++b) put_block(m.data() + b * bb, ds[b], ms[b + 2], qs + 16 * b, qhs[b + 5]);
  const auto t = m.to_float();
  for (int j = 0; j < 128; ++j)
    REQUIRE(t.data()[j] == weight_of(block_q(m.data() + j / 32 * bb, j % 32), ds[j / 32], ms[j / 32 + 2]));
}

TEST_CASE("q5_1 quantizes bit-exactly as ggml's quantize_row_q5_1_ref", "[quant][q5_1]") {
  ggml::check_offset_quantization<q5_1>(measured, 31, ggml_quantize_row_q5_1_ref, block_q);
}

TEST_CASE("q5_1 equals the reference fixture's quantize and dequantize byte for byte", "[quant][q5_1]") {
  const auto f = ggml::gguf_py_fixture();
  ggml::check_gguf_py<q5_1>(f, "q5_1");
  ggml::check_fixture_rows<q5_1>(f, "input.extra", "q5_1.extra");
}

TEST_CASE("q5_1 activations are ggml's Q8_1: q8_0's int8 and scales, plus d_x * sum qx per block", "[quant][q5_1]") {
  ggml::check_q8_1_activations<q5_1>();
}

TEST_CASE("every compiled q5_1 path equals the scalar reference", "[quant][q5_1]") {
  // weight blocks of random nibbles, scales and offsets (normal and subnormal, both signs)
  const auto fill = [](std::mt19937& gen, std::byte* blk) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uint8_t qs[16];
    for (auto& q : qs) q = static_cast<std::uint8_t>(byte(gen));
    const std::uint16_t d = random_half(gen);
    const std::uint16_t m = random_half(gen);
    put_block(blk, d, m, qs, random_qh(gen));
  };
  // block b of row i: s I + m_w c and |s| sum q |qx| + |m_w c|, s = fl(d_w d_x), I = sum_t q qx,
  // c = the block sum from the scratch
  const auto term = [](const std::byte* acts, std::int64_t m, std::int64_t k, std::int64_t i, const std::byte* blk,
                       std::int64_t b) {
    const float dx = kern::activations::scale(acts, k, i)[b * 8];
    const float s = static_cast<float>(half_value(block_d(blk))) * dx;
    const double mw = half_value(block_m(blk)), c = kern::activation_sums::row(acts, m, k, i)[b * 8];
    std::int64_t dot = 0, adot = 0;
    for (int t = 0; t < 32; ++t) {
      const int qx = kern::activations::q(acts, k, i)[b * 32 + t];
      dot += block_q(blk, t) * qx;
      adot += block_q(blk, t) * std::abs(qx);
    }
    return std::pair{static_cast<double>(s) * static_cast<double>(dot) + mw * c,
                     std::fabs(static_cast<double>(s)) * static_cast<double>(adot) + std::fabs(mw * c)};
  };
  ggml::check_paths<q5_1, kern::dot>(measured, 2.0, fill, term);
}

TEST_CASE("every compiled q5_1 float-activation path equals the dequantized product", "[quant][q5_1]") {
  ggml::check_float_paths<q5_1, kern::float_dot>([](std::mt19937& gen, std::byte* blk) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uint8_t qs[16];
    for (auto& q : qs) q = static_cast<std::uint8_t>(byte(gen));
    const std::uint16_t d = random_half(gen);
    const std::uint16_t m = random_half(gen);
    put_block(blk, d, m, qs, random_qh(gen));
  });
}

TEST_CASE("q5_1 paths are exact on integer data, every q included", "[quant][q5_1]") {
  // d_w = 1, integer m_w, and activations with amax 127 (d_x = 1, q = x): every term is an integer
  constexpr std::int64_t n = 4, rb = 3 * bb;
  const std::uint16_t ms[] = {0xC800 /* -8 */, 0x4200 /* 3 */, 0x0000, 0xD3E0 /* -63 */};
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all 0, all 31, alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, ms[j], qs, j == 0 ? 0u : j == 1 ? 0xFFFFFFFFu : qhs[4 * j + b]);
    }
  ggml::check_exact_on_integers<q5_1, kern::dot>(w, [&](const std::byte* blk, int t, std::int64_t j) {
    return std::int64_t{block_q(blk, t)} + static_cast<std::int64_t>(half_value(ms[j]));
  });
}

namespace {

/// ops::linear with weights in F, q5_1 as it is or int8_activations<q5_1>: the bound is at the top of
/// the file.
template <class F>
void check_linear() {
  ggml::check_offset_linear<F>(measured, [](const std::byte* blk, int t) { return block_q(blk, t); });
}

}  // namespace

TEST_CASE("ops::linear with q5_1 weights: the fused product when opted in, float products otherwise", "[quant][q5_1]") {
  using fast = quant::int8_activations<q5_1>;  // the spelling a spec uses to switch the fused product on
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q5_1>);
  CHECK(std::string(fast::name) == "q5_1");
  check_linear<fast>();
  check_linear<q5_1>();
}

TEST_CASE("q5_1 matrices need whole blocks; NaN scales stay NaN; the registry knows q5_1", "[quant][q5_1]") {
  ggml::check_whole_blocks_and_registry<q5_1>(48, 6.0);
  ggml::check_nan_scale<q5_1>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
  ggml::check_nan_scale<q5_1>([](std::byte* blk) { ggml::put_u16(blk + 2, 0x7E00); });  // a NaN offset
}

TEST_CASE("q5_1 goes through a GGUF file as type Q5_1", "[quant][q5_1][gguf]") {
  ggml::check_gguf_round_trip<q5_1>("Q5_1", 96);
}
