// quant::q4_1 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q4_1 / quantize_row_q4_1_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: (x - min) * id rounded before + 0.5f), both against gguf-py's output
// (tests/data/ggml_quants.safetensors, written by tools/make_quant_fixtures.py), every compiled
// fused-product path against the scalar reference, and ops::linear through each of its paths
// (the fused product for up to 64 rows when the format is int8_activations<q4_1>, float products of
// dequantized rows or tiles otherwise). The checks shared with q8_0 and q4_0 are in
// ggml_test_support.hpp.
//
// Bounds (u = 2^-24):
// - paths vs scalar: every path computes the same exact int32 sums I_b = sum_t q_t qx_t, the same
//   float scales s_b = fl(d_w d_x), and takes the same block sums c_b = fl(d_x sum_t qx_t) from the
//   scratch; they differ only in how the 2 nb terms s_b I_b, m_b c_b are summed (one chain of fma in
//   the scalar path; 8 or 16 lanes plus a scalar chain in SIMD), so two paths differ by at most
//   (4 nb + 32) u M, M = sum_b |s_b| sum_t |q_t qx_t| + |m_b c_b|.
// - fused vs float product on the dequantized weights w^ = fl(q d + m): the fused product uses the
//   exact w~ = q d + m (|w~ - w^| <= u |w^|) and the activations d_x qx (per block within amax / 254
//   (1 + 2^-15)(1 + u) of x, as in test_q8_0), rounds s_b and c_b once each, and sums 2 nb float
//   terms: |fused - float| <= sum_t |w^_t| amax / 254 (1 + 2^-15)(1 + u)^2 + u sum |x w^| +
//   (2 nb + 16) u M' + 1e-5 sum |x w^|, M' = sum_t |d_x qx_t| (|d_w| q_t + |m_w|) >= M / (1 + u), the
//   last term for the float product's own sums (K <= 768 here).
// - round trip of a weight: p = (x - min) id is (x - min) / d within 15 * 3u (three roundings), and
//   trunc(fl(p + 0.5)) is p rounded to the nearest integer, halves up, within 2^-20, so
//   |x - (q d + min)| <= d (1/2 + 2^-17); storing d and min in fp16 adds 15 |d - d16| + |min - m16|,
//   and the float sum q d16 + m16 one rounding, u |x^|.
#include <tformer/core/memory.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_1.hpp>
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
namespace kern = tformer::quant::detail::q4_1_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::q4_1;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q4_1_REPORT is set.
ggml::report measured("TFORMER_Q4_1_REPORT", "q4_1", "float paths");

constexpr std::int64_t bb = 20;  // bytes per block

/// ggml's quantize_row_q4_1_ref, written out as in ggml-quants.c. volatile makes the compiler round
/// x0 to float before + 0.5f, as ISO C evaluates ggml's two statements (GCC would otherwise
/// contract the product and the add into one fma).
void ggml_quantize_row_q4_1_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int qk = 32;
  for (std::int64_t i = 0; i < k / qk; ++i) {
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
    for (int j = 0; j < qk; ++j) {
      const float v = x[i * qk + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* blk = y + i * bb;
    ggml::put_u16(blk, half_bits_ref(d));  // little endian
    ggml::put_u16(blk + 2, half_bits_ref(min));
    for (int j = 0; j < qk / 2; ++j) {
      volatile float x0 = (x[i * qk + 0 + j] - min) * id;
      volatile float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const int xi0 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x0 + 0.5f)));
      const int xi1 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x1 + 0.5f)));
      blk[4 + j] = static_cast<std::byte>(xi0 | xi1 << 4);
    }
  }
}

/// A block: scale bits d, offset bits m (little endian) and 16 bytes of nibbles.
void put_block(std::byte* p, std::uint16_t d, std::uint16_t m, const std::uint8_t* qs) {
  ggml::put_u16(p, d);
  ggml::put_u16(p + 2, m);
  std::memcpy(p + 4, qs, 16);
}
std::uint16_t block_m(const std::byte* p) { return ggml::u16_at(p + 2); }
/// Nibble t (< 32) of a block, in weight order.
int block_q(const std::byte* p, int t) { return ggml::nibble_at(p + 4, t); }
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

TEST_CASE("q4_1 is a fused weight format with ggml's block geometry", "[quant][q4_1]") {
  CHECK(std::string(q4_1::name) == "q4_1");
  CHECK(q4_1::ggml_type == 3u);  // GGML_TYPE_Q4_1
  ggml::check_geometry<q4_1>(20, 5.0, kern::best_path);
}

TEST_CASE("q4_1 dequantizes bit-exactly as ggml: q * d + m in float", "[quant][q4_1]") {
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
      for (int b = 0; b < 16; ++b) put_block(blocks + b * bb, d, m, qs + 16 * b);
      q4_1::dequantize_row(blocks, y.data(), 512);
      INFO("d bits 0x" << std::hex << d << " m bits 0x" << m);
      for (int j = 0; j < 512; ++j) {
        const float want = weight_of(block_q(blocks + j / 32 * bb, j % 32), d, m);
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(want));
      }
    }
  // a matrix dequantizes row by row the same way: rows of 64, block b with d = ds[b], m = ms[b]
  quant::matrix<q4_1> m(2, 64);
  for (int b = 0; b < 4; ++b) put_block(m.data() + b * bb, ds[b], ms[b + 2], qs + 16 * b);
  const auto t = m.to_float();
  for (int j = 0; j < 128; ++j)
    REQUIRE(t.data()[j] == weight_of(block_q(m.data() + j / 32 * bb, j % 32), ds[j / 32], ms[j / 32 + 2]));
}

TEST_CASE("q4_1 quantizes bit-exactly as ggml's quantize_row_q4_1_ref", "[quant][q4_1]") {
  ggml::check_offset_quantization<q4_1>(measured, 15, ggml_quantize_row_q4_1_ref, block_q);
}

TEST_CASE("q4_1 equals gguf-py's quantize and dequantize byte for byte", "[quant][q4_1]") {
  // tests/data/ggml_quants.safetensors: gguf.quants (gguf 0.19, numpy) on 16 rows of 64 floats:
  // random blocks (half of them off-centre) and hand-made ones (zeros, constants, halves,
  // fp16-subnormal and -underflowing scales, +-6e4, all-negative, all-positive, signed zeros)
  ggml::check_gguf_py<q4_1>(ggml::gguf_py_fixture(), "q4_1");
}

TEST_CASE("q4_1 activations are ggml's Q8_1: q8_0's int8 and scales, plus d_x * sum qx per block", "[quant][q4_1]") {
  ggml::check_q8_1_activations<q4_1>();
}

TEST_CASE("every compiled q4_1 path equals the scalar reference", "[quant][q4_1]") {
  // weight blocks of random nibbles, scales and offsets (normal and subnormal, both signs)
  const auto fill = [](std::mt19937& gen, std::byte* blk) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uint8_t qs[16];
    for (auto& q : qs) q = static_cast<std::uint8_t>(byte(gen));
    const std::uint16_t d = random_half(gen);
    const std::uint16_t m = random_half(gen);
    put_block(blk, d, m, qs);
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
  ggml::check_paths<q4_1, kern::dot>(measured, 2.0, fill, term);
}

TEST_CASE("every compiled q4_1 float-activation path equals the dequantized product", "[quant][q4_1]") {
  ggml::check_float_paths<q4_1, kern::float_dot>([](std::mt19937& gen, std::byte* blk) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uint8_t qs[16];
    for (auto& q : qs) q = static_cast<std::uint8_t>(byte(gen));
    put_block(blk, random_half(gen), random_half(gen), qs);
  });
}

TEST_CASE("q4_1 paths are exact on integer data, every nibble included", "[quant][q4_1]") {
  // d_w = 1, integer m_w, and activations with amax 127 (d_x = 1, q = x): every term is an integer
  constexpr std::int64_t n = 4, rb = 3 * bb;
  const std::uint16_t ms[] = {0xC800 /* -8 */, 0x4200 /* 3 */, 0x0000, 0xD3E0 /* -63 */};
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all 0, all 15, alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, ms[j], qs);
    }
  ggml::check_exact_on_integers<q4_1, kern::dot>(w, [&](const std::byte* blk, int t, std::int64_t j) {
    return std::int64_t{block_q(blk, t)} + static_cast<std::int64_t>(half_value(ms[j]));
  });
}

namespace {

/// ops::linear with weights in F, q4_1 as it is or int8_activations<q4_1>: the bound is at the top of
/// the file.
template <class F>
void check_linear() {
  ggml::check_offset_linear<F>(measured, [](const std::byte* blk, int t) { return block_q(blk, t); });
}

}  // namespace

TEST_CASE("ops::linear with q4_1 weights: the fused product when opted in, float products otherwise", "[quant][q4_1]") {
  using fast = quant::int8_activations<q4_1>;  // the spelling a spec uses to switch the fused product on
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q4_1>);
  CHECK(std::string(fast::name) == "q4_1");
  check_linear<fast>();
  check_linear<q4_1>();
}

TEST_CASE("q4_1 matrices need whole blocks; the registry knows q4_1", "[quant][q4_1]") {
  ggml::check_whole_blocks_and_registry<q4_1>(40, 5.0);
}
