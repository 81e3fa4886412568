// quant::q4_1 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q4_1 / quantize_row_q4_1_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: (x - min) * id rounded before + 0.5f), both against gguf-py's output
// (tests/data/ggml_quants.safetensors, written by tools/make_quant_fixtures.py), every compiled
// fused-product path against the scalar reference, and ops::linear through each of its paths
// (the fused product for <= 8 rows when the format is int8_activations<q4_1>, float products of
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
  constexpr std::int64_t k = 32 * 64;
  std::mt19937 gen(11);
  // whole rows at one scale each: fp16-subnormal d and m, small, unit, large (min within fp16)
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 3e4f}) {
    auto x = ggml::quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    std::fill(x.begin() + 160, x.begin() + 192, 0.7f * scale);                          // block 5: constant
    for (std::int64_t j = 192; j < 224; ++j) x[static_cast<std::size_t>(j)] = std::fabs(x[static_cast<std::size_t>(j)]) + scale;
    // block 10: min 0, max 15: d = 1, id = 1, (x - min) * id + 0.5 exact: k + 0.5 -> k + 1
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(320 + t)] = t == 0 ? 0.0f : t == 1 ? 15.0f : static_cast<float>(t % 15) + 0.5f;
    // block 11: min -1, max 2: d = 0.2 inexact, values next to halves
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(352 + t)] = -1.0f + 0.2f * (static_cast<float>(t % 15) + 0.5f);
    x[352] = -1.0f;
    x[353] = 2.0f;

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * bb)), want(got.size());
    q4_1::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q4_1_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    // the hand-checked blocks
    CHECK(block_d(got.data() + 2 * bb) == 0x0000);  // all zero: d = 0, m = 0, q = 0
    CHECK(block_m(got.data() + 2 * bb) == 0x0000);
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 2 * bb, t) == 0);
    CHECK(block_d(got.data() + 5 * bb) == 0x0000);  // constant: d = 0, m = the constant, q = 0
    CHECK(block_m(got.data() + 5 * bb) == half_bits_ref(0.7f * scale));
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 5 * bb, t) == 0);
    CHECK(block_d(got.data() + 10 * bb) == 0x3C00);  // d = 1
    CHECK(block_m(got.data() + 10 * bb) == 0x0000);
    for (int t = 2; t < 32; ++t) REQUIRE(block_q(got.data() + 10 * bb, t) == t % 15 + 1);
    CHECK(block_q(got.data() + 10 * bb, 1) == 15);
    CHECK(block_m(got.data() + 11 * bb) == 0xBC00);  // m = -1

    // round trip within the bound at the top of the file
    ggml::check_roundtrip<q4_1>(measured, x, got, [](const float* xb, const std::byte* blk) {
      float min = xb[0], max = min;
      for (int t = 0; t < 32; ++t) {
        min = std::min(min, xb[t]);
        max = std::max(max, xb[t]);
      }
      const double d = (max - min) / 15.0f, d16 = half_value(block_d(blk)), m16 = half_value(block_m(blk));
      return [=](int, float back) {
        return d * (0.5 + 0x1p-17) + 15 * std::fabs(d - d16) + std::fabs(min - m16) + 0x1p-24 * std::fabs(back) + 1e-45;
      };
    });
  }
  // quant::matrix<q4_1>::quantize packs rows the same way
  ggml::check_matrix_packs<q4_1>(ggml_quantize_row_q4_1_ref);
}

TEST_CASE("q4_1 equals gguf-py's quantize and dequantize byte for byte", "[quant][q4_1]") {
  // tests/data/ggml_quants.safetensors: gguf.quants (gguf 0.19, numpy) on 16 rows of 64 floats:
  // random blocks (half of them off-centre) and hand-made ones (zeros, constants, halves,
  // fp16-subnormal and -underflowing scales, +-6e4, all-negative, all-positive, signed zeros)
  ggml::check_gguf_py<q4_1>(ggml::gguf_py_fixture(), "q4_1");
}

TEST_CASE("q4_1 activations are ggml's Q8_1: q8_0's int8 and scales, plus d_x * sum qx per block", "[quant][q4_1]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  const auto x = ggml::padded_rows(activations_for(m, k, 3), m, k, ldx);  // the padding must never be read
  const std::size_t q8_bytes = quant::q8_0::activation_bytes(m, k);
  REQUIRE(q4_1::activation_bytes(m, k) == q8_bytes + m * k);
  auto a = allocate_aligned<std::byte>(q4_1::activation_bytes(m, k));
  auto b = allocate_aligned<std::byte>(q8_bytes);
  std::memset(a.get(), 0, q4_1::activation_bytes(m, k));
  std::memset(b.get(), 0, q8_bytes);
  q4_1::prepare_activations(x.data(), ldx, m, k, a.get());
  quant::q8_0::prepare_activations(x.data(), ldx, m, k, b.get());
  CHECK(std::memcmp(a.get(), b.get(), q8_bytes) == 0);  // the int8, scales and lane sums of q8_0
  for (std::int64_t i = 0; i < m; ++i)
    for (int blk = 0; blk < 3; ++blk) {
      int sum = 0;
      for (int t = 0; t < 32; ++t) sum += kern::activations::q(a.get(), k, i)[blk * 32 + t];
      const float dx = kern::activations::scale(a.get(), k, i)[blk * 8];
      for (int l = 0; l < 8; ++l) REQUIRE(kern::activation_sums::row(a.get(), m, k, i)[blk * 8 + l] == dx * static_cast<float>(sum));
    }
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

/// check_linear's bound for Q4_1's fused product (see the top of the file): the exact weights
/// q d + m against the rounded w^, the activations' quantization, the roundings of s_b and c_b
/// and the 2 nb float terms, plus the float product's own sums.
template <class M>
std::pair<double, double> q4_1_fused_bound(const tensor<float>& x, const M& wq, const tensor<float>& wd, const std::byte* acts,
                                           std::int64_t k, std::int64_t i, std::int64_t j, double mag) {
  const std::int64_t nb = k / 32;
  double qerr = 0, terms = 0;
  for (std::int64_t bk = 0; bk < nb; ++bk) {
    const std::byte* blk = wq.row(j) + bk * bb;
    const double dx = kern::activations::scale(acts, k, i)[bk * 8];
    double amax = 0, wsum = 0;
    for (int t = 0; t < 32; ++t) {
      const double xt = x(i, bk * 32 + t), wt = wd(j, bk * 32 + t);
      const double qx = kern::activations::q(acts, k, i)[bk * 32 + t];
      amax = std::max(amax, std::fabs(xt));
      wsum += std::fabs(wt);
      mag += std::fabs(xt * wt);
      terms += std::fabs(dx * qx) * (std::fabs(half_value(block_d(blk))) * block_q(blk, t) + std::fabs(half_value(block_m(blk))));
    }
    qerr += wsum * amax / 254 * (1 + 0x1p-15) * (1 + 0x1p-24) * (1 + 0x1p-24);
  }
  const double bound =
      qerr + 0x1p-24 * mag + (2.0 * static_cast<double>(nb) + 16) * 0x1p-24 * terms * 1.001 + 1e-5 * mag + 1e-30;
  return {bound, mag};
}

/// ops::linear with weights in F, q4_1 as it is or int8_activations<q4_1>, every third weight row
/// off-centre (the offsets matter).
template <class F>
void check_linear() {
  const auto off_centre = [](tensor<float>& wf) {
    for (std::int64_t j = 0; j < wf.shape()[0]; j += 3)
      for (std::int64_t t = 0; t < wf.shape()[1]; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
  };
  ggml::check_linear<F>(measured, off_centre, q4_1_fused_bound<quant::matrix<F>>);
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
