// quant::q8_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q8_0 / quantize_row_q8_0_ref (re-implemented here independently, fp16 rounding
// included), both against gguf-py's output (tests/data/ggml_quants.safetensors, written by
// tools/make_quant_fixtures.py), every compiled fused-product path against the scalar reference,
// and ops::linear through both of its paths (fused for up to 64 rows, dequantized tiles otherwise).
// The checks shared with q4_0 and q4_1 are in ggml_test_support.hpp.
//
// Bounds (u = 2^-24):
// - paths vs scalar: every path computes the same exact int32 sums I_b and the same float scales
//   s_b = fl(d_w d_x); they differ only in how the terms s_b I_b are summed in float (one chain of
//   fma in the scalar path; 8 or 16 lanes of nb / lanes fma each, then a lane reduction in SIMD).
//   Each is within (nb + 16) u * M of the exact sum, M = sum_b |s_b| sum_t |qw qx|, so two paths
//   differ by at most (2 nb + 32) u M.
// - fused vs float product on the dequantized weights: the weights are the same numbers (d_w * qw
//   is exact in float), so the difference is the activations' quantization: x_t = d_x q_t + e_t
//   with |e_t| <= d_x (1/2 + 254 u) = d_x / 2 (1 + 508 u) < d_x / 2 (1 + 2^-15) (x_t * id is rounded
//   once and id = 1 / d_x once, so x_t * id is within 2u * 127 of x_t / d_x before q rounds it),
//   and d_x = amax / 127 (1 + u), so per block |sum_t w_t e_t| <= sum_t |w_t| * amax_b / 254 *
//   (1 + 2^-15)(1 + u). Float summation on both sides adds at most 1e-5 * sum_t |x_t w_t| for
//   K <= 4096.
// - round trip of a weight: |x - q d16| <= |x - q d| + |q| |d - d16| <= d / 2 (1 + 2^-15) + 127 |d - d16|
//   (q * d16 is exact in float: 8 by 11 significant bits).
#include <tformer/core/memory.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q8_0.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q8_0_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::q8_0;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q8_0_REPORT is set.
ggml::report measured("TFORMER_Q8_0_REPORT", "q8_0", "tiles");

/// ggml's quantize_row_q8_0_ref, written out as in ggml-quants.c (MAX, roundf, GGML_FP32_TO_FP16).
void ggml_quantize_row_q8_0_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int QK8_0 = 32;
  for (std::int64_t i = 0; i < k / QK8_0; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) {
      const float v = x[i * QK8_0 + j];
      const float av = std::fabs(v);
      amax = amax > av ? amax : av;  // MAX(amax, fabsf(v))
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* blk = y + i * 34;
    ggml::put_u16(blk, half_bits_ref(d));  // little endian
    for (int j = 0; j < QK8_0; ++j) {
      const float x0 = x[i * QK8_0 + j] * id;
      blk[2 + j] = static_cast<std::byte>(static_cast<std::int8_t>(std::round(x0)));
    }
  }
}

/// A block: scale bits d (little endian) and 32 int8.
void put_block(std::byte* p, std::uint16_t d, const std::int8_t* qs) {
  ggml::put_u16(p, d);
  std::memcpy(p + 2, qs, 32);
}
std::int8_t block_q(const std::byte* p, int t) { return static_cast<std::int8_t>(std::to_integer<unsigned>(p[2 + t])); }

}  // namespace

TEST_CASE("q8_0 is a fused weight format with ggml's block geometry", "[quant][q8_0]") {
  CHECK(std::string(q8_0::name) == "q8_0");
  ggml::check_geometry<q8_0>(34, 8.5, kern::best_path);
}

TEST_CASE("q8_0 dequantizes bit-exactly as ggml: (float)q * (float)d", "[quant][q8_0]") {
  // d: 1, -1, the smallest and largest subnormal (also negative), 0, -0, a normal fraction, 65504
  const std::uint16_t ds[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x8001, 0x83FF, 0x0000, 0x8000, 0x2E66, 0xC8F3, 0x7BFF};
  // 8 blocks whose qs run through every int8 value, -128 .. 127, stored at an odd (unaligned) offset
  std::vector<std::int8_t> qs(256);
  for (int v = -128; v < 128; ++v) qs[static_cast<std::size_t>(v + 128)] = static_cast<std::int8_t>(v);
  std::vector<std::byte> buf(8 * 34 + 1);
  std::byte* blocks = buf.data() + 1;
  std::vector<float> y(256);
  for (const std::uint16_t d : ds) {
    for (int b = 0; b < 8; ++b) put_block(blocks + b * 34, d, qs.data() + b * 32);
    q8_0::dequantize_row(blocks, y.data(), 256);
    const auto df = static_cast<float>(half_value(d));  // exact: every half is a float
    INFO("d bits 0x" << std::hex << d);
    for (int j = 0; j < 256; ++j) {
      const float want = static_cast<float>(qs[static_cast<std::size_t>(j)]) * df;
      REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(want));
    }
  }
  // a matrix dequantizes row by row the same way
  quant::matrix<q8_0> m(2, 64);
  for (int b = 0; b < 4; ++b) put_block(m.data() + b * 34, ds[b], qs.data() + 32 * b);
  const auto t = m.to_float();
  for (int j = 0; j < 128; ++j)
    REQUIRE(t.data()[j] == static_cast<float>(qs[static_cast<std::size_t>(j)]) * static_cast<float>(half_value(ds[j / 32])));
}

TEST_CASE("q8_0 rounds halves away from zero exactly like roundf", "[quant][q8_0]") {
  // every half-integer (and integer) up to +-300 and the 64 floats either side of it
  for (int h = -600; h <= 600; ++h) {
    float v = static_cast<float>(h) / 2.0f;
    for (int s = 0; s < 64; ++s) v = std::nextafter(v, -1e9f);
    for (int s = 0; s < 129; ++s, v = std::nextafter(v, 1e9f)) REQUIRE(kern::round_half_away(v) == std::round(v));
  }
  for (const float v : test::random_floats(100000, -130.0f, 130.0f, 7)) REQUIRE(kern::round_half_away(v) == std::round(v));
  CHECK(kern::round_half_away(0.49999997f) == 0.0f);
  CHECK(kern::round_half_away(-2.5f) == -3.0f);
  CHECK(std::signbit(kern::round_half_away(-0.25f)));  // -0, as roundf (the int8 is 0 either way)
}

TEST_CASE("q8_0 quantizes bit-exactly as ggml's quantize_row_q8_0_ref", "[quant][q8_0]") {
  constexpr std::int64_t k = 32 * 64;
  std::mt19937 gen(11);
  // whole rows at one scale each: fp16-subnormal d (amax < 127 * 2^-14), small, unit, large
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 2e6f}) {
    auto x = ggml::quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    x[200] = -scale;                                                                // amax from a negative
    // exact rounding points: block 10 has amax 127 (d = 1, id = 1), so x * id = x exactly
    const float halves[] = {127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 63.5f, 0.49999997f, -1.0f};
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(320 + t)] = halves[t % 12];
    // block 11: amax 63.5 gives d = 0.5 (exact), id = 2: x = 1.25 -> 2.5 -> 3
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(352 + t)] = (t == 0) ? 63.5f : (t % 2 ? 1.25f : -1.25f);

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * 34)), want(got.size());
    q8_0::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q8_0_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    // the hand-checked blocks
    CHECK(block_d(got.data() + 2 * 34) == 0);  // all-zero block: d = 0, q = 0
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 2 * 34, t) == 0);
    CHECK(block_d(got.data() + 10 * 34) == 0x3C00);  // d = 1
    const int rounded[] = {127, 1, -1, 2, -2, 3, -3, 127, -127, 64, 0, -1};
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 10 * 34, t) == rounded[t % 12]);
    CHECK(block_d(got.data() + 11 * 34) == 0x3800);  // d = 0.5
    for (int t = 1; t < 32; ++t) REQUIRE(block_q(got.data() + 11 * 34, t) == (t % 2 ? 3 : -3));

    // round trip: |x - q * d16| <= d / 2 (1 + 2^-15) + 127 |d - d16|, d the float scale, d16 its half
    ggml::check_roundtrip<q8_0>(measured, x, got, [](const float* xb, const std::byte* blk) {
      float amax = 0.0f;
      for (int t = 0; t < 32; ++t) amax = std::max(amax, std::fabs(xb[t]));
      const double d = amax / 127.0f, d16 = half_value(block_d(blk));
      return [=](int, float) { return d / 2 * (1 + 0x1p-15) + 127 * std::fabs(d - d16) + 1e-45; };
    });
  }
  // quant::matrix<q8_0>::quantize packs rows the same way
  ggml::check_matrix_packs<q8_0>(ggml_quantize_row_q8_0_ref);
}

TEST_CASE("q8_0 equals gguf-py's quantize and dequantize byte for byte", "[quant][q8_0]") {
  // the fixture's Q8_0 entries: gguf.quants on random blocks and hand-made ones (ties, zeros,
  // fp16-subnormal and -underflowing scales, +-6e4)
  ggml::check_gguf_py<q8_0>(ggml::gguf_py_fixture(), "q8_0");
}

TEST_CASE("q8_0 activations: int8 per block as ggml, float scales, lane sums", "[quant][q8_0]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  auto v = activations_for(m, k, 3);
  // row 1, block 1: amax 127 (d = 1), so x * id lands exactly on halves: they round away from zero
  const float halves[] = {127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 63.5f, 0.49999997f, -1.0f};
  for (int t = 0; t < 32; ++t) v[static_cast<std::size_t>(k + 32 + t)] = halves[t % 12];
  const auto x = ggml::padded_rows(v, m, k, ldx);  // the padding must never be read
  CHECK(q8_0::activation_bytes(m, k) == static_cast<std::size_t>(m * 320));  // 3 * 96 = 288, rounded up to 64
  auto acts = allocate_aligned<std::byte>(q8_0::activation_bytes(m, k));
  q8_0::prepare_activations(x.data(), ldx, m, k, acts.get());
  std::vector<std::byte> ref(3 * 34);
  for (std::int64_t i = 0; i < m; ++i) {
    ggml_quantize_row_q8_0_ref(x.data() + i * ldx, ref.data(), k);
    const std::int8_t* q = kern::activations::q(acts.get(), k, i);
    const float* s = kern::activations::scale(acts.get(), k, i);
    const std::int32_t* c = kern::activations::corr(acts.get(), k, i);
    for (int b = 0; b < 3; ++b) {
      float amax = 0.0f;
      for (int t = 0; t < 32; ++t) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(i * ldx + b * 32 + t)]));
      for (int t = 0; t < 32; ++t) REQUIRE(q[b * 32 + t] == block_q(ref.data() + b * 34, t));  // same int8 as ggml
      for (int l = 0; l < 8; ++l) {
        REQUIRE(s[b * 8 + l] == amax / 127.0f);  // the scale kept in float
        const std::int8_t* g = q + b * 32 + 4 * l;
        REQUIRE(c[b * 8 + l] == -128 * (g[0] + g[1] + g[2] + g[3]));
      }
      for (int t = 0; t < 32; ++t) REQUIRE(std::abs(q[b * 32 + t]) <= 127);
    }
  }
}

TEST_CASE("the compiled activation quantizer equals the scalar one", "[quant][q8_0]") {
  // prepare uses the AVX2 block quantizer where compiled: same int8, scales and lane sums, bit for
  // bit, over random blocks of every magnitude (fp16-subnormal to large), ties, zeros and -0
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-12.0f, 12.0f);
  std::uniform_int_distribution<int> pick(0, 5), half(-254, 254);
  for (int it = 0; it < 20000; ++it) {
    alignas(64) float x[32];
    const float scale = std::pow(10.0f, e(gen));
    const int kind = pick(gen);
    for (int t = 0; t < 32; ++t) {
      const float r = u(gen);
      const int h = half(gen);
      x[t] = kind == 0 ? static_cast<float>(h) / 2.0f : kind == 1 ? 0.0f : kind == 2 && t % 3 == 0 ? -0.0f : scale * r;
    }
    if (kind == 0) x[it % 32] = 127.0f;  // d = 1: every x * id is exactly x, many of them halves
    std::int8_t q1[32], q2[32];
    float s1[8], s2[8];
    std::int32_t c1[8], c2[8];
    kern::prepare_block_scalar(x, q1, s1, c1);
#if defined(TFORMER_Q8_ACTIVATIONS_AVX2)
    kern::prepare_block_avx2(x, q2, s2, c2);
#else
    kern::prepare_block_scalar(x, q2, s2, c2);
#endif
    INFO("iteration " << it << " kind " << kind);
    REQUIRE(std::memcmp(q1, q2, sizeof q1) == 0);
    REQUIRE(std::memcmp(s1, s2, sizeof s1) == 0);
    REQUIRE(std::memcmp(c1, c2, sizeof c1) == 0);
  }
}

TEST_CASE("every compiled q8_0 path equals the scalar reference", "[quant][q8_0]") {
  // weight blocks of random bytes (every int8, -128 included) and random scales (normal and
  // subnormal, both signs)
  ggml::check_paths_scaled<q8_0, kern::dot>(measured, 32, [](const std::byte* blk, int t) { return int{block_q(blk, t)}; });
}

TEST_CASE("every compiled q8_0 float-activation path equals the dequantized product", "[quant][q8_0]") {
  ggml::check_float_paths<q8_0, kern::float_dot>(32);
}

TEST_CASE("q8_0 paths are exact on integer data, -128 weights included", "[quant][q8_0]") {
  // d_w = 1 and activations with amax 127 (d_x = 1, q = x): every product and sum is an integer
  constexpr std::int64_t n = 4, rb = 3 * 34;
  std::vector<std::byte> w(n * rb);
  std::int8_t qs[32];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 32; ++t)
        qs[t] = static_cast<std::int8_t>(j == 0 ? -128 : j == 1 ? (t % 2 ? -128 : 127) : j == 2 ? 127 : (t * 37 + b) % 256 - 128);
      put_block(w.data() + j * rb + b * 34, 0x3C00, qs);
    }
  ggml::check_exact_on_integers<q8_0, kern::dot>(w, [](const std::byte* blk, int t, std::int64_t) { return block_q(blk, t); });
}

TEST_CASE("ops::linear with q8_0 weights: float_product for <= 8 rows (fused with int8 activations: <= 64), "
          "dequantized tiles beyond",
          "[quant][q8_0]") {
  ggml::check_linear<q8_0>(measured);                            // float activations (the default)
  ggml::check_linear<quant::int8_activations<q8_0>>(measured);  // the fused product on
}

TEST_CASE("q8_0 matrices need whole blocks; the registry knows q8_0", "[quant][q8_0]") {
  ggml::check_whole_blocks_and_registry<q8_0>(68, 8.5);
}
