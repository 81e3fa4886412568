// quant::q5_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q5_0 / quantize_row_q5_0_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: x * id rounded before + 16.5f), both against the reference fixture
// (tests/data/ggml_quants.safetensors: gguf-py's quantize / dequantize, which agree with ggml's C
// reference on it; written by tools/make_quant_fixtures.py), every compiled fused-product and
// float-product path against the scalar reference, ops::linear through each of its paths, a GGUF
// round trip, and bad input. The checks shared with the other ggml formats are in
// ggml_test_support.hpp and ggml_format_checks.hpp; the bounds are test_q4_0's, with 16 levels
// below zero instead of 8.
#include <tformer/core/memory.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q5_0.hpp>
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
namespace kern = tformer::quant::detail::q5_0_kernels;
namespace ggml = tformer::test::ggml;
using ggml::activations_for;
using ggml::block_d;
using ggml::half_bits_ref;
using ggml::half_value;
using quant::q5_0;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q5_0_REPORT is set.
ggml::report measured("TFORMER_Q5_0_REPORT", "q5_0", "float paths");

constexpr std::int64_t bb = 22;  // bytes per block

/// ggml's MIN(31, (int8_t)(x0 + c)) where x0 is a float variable (ggml::ggml_clamped_int8).
std::uint8_t ggml_q5(float product, float c) { return ggml::ggml_clamped_int8(product, c, 31); }

/// ggml's quantize_row_q5_0_ref, written out as in ggml-quants.c.
void ggml_quantize_row_q5_0_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int qk = 32;
  for (std::int64_t i = 0; i < k / qk; ++i) {
    const float max = ggml::ggml_block_max(x + i * qk);
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* blk = y + i * bb;
    ggml::put_u16(blk, half_bits_ref(d));
    std::uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const std::uint8_t xi0 = ggml_q5(x[i * qk + 0 + j] * id, 16.5f);
      const std::uint8_t xi1 = ggml_q5(x[i * qk + qk / 2 + j] * id, 16.5f);
      blk[6 + j] = static_cast<std::byte>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    for (int b = 0; b < 4; ++b) blk[2 + b] = static_cast<std::byte>(qh >> (8 * b));  // memcpy on little endian
  }
}

/// A block: scale bits d, fifth bits qh, 16 bytes of nibbles.
void put_block(std::byte* p, std::uint16_t d, std::uint32_t qh, const std::uint8_t* qs) {
  ggml::put_u16(p, d);
  for (int b = 0; b < 4; ++b) p[2 + b] = static_cast<std::byte>(qh >> (8 * b));
  std::memcpy(p + 6, qs, 16);
}
std::uint32_t block_qh(const std::byte* p) {
  std::uint32_t qh = 0;
  for (int b = 0; b < 4; ++b) qh |= std::to_integer<std::uint32_t>(p[2 + b]) << (8 * b);
  return qh;
}
/// q_t (< 32) of a block, in weight order, as ggml's dequantize_row_q5_0 forms it.
int block_q(const std::byte* p, int t) {
  const std::uint32_t qh = block_qh(p);
  const int j = t % 16;
  const auto xh = t < 16 ? ((qh >> (j + 0)) << 4) & 0x10 : ((qh >> (j + 12))) & 0x10;
  return ggml::nibble_at(p + 6, t) | static_cast<int>(xh);
}

/// The bound on |x - deq(q(x))| for one weight (test_q4_0's, with 16 levels below zero).
double roundtrip_bound(const float* block, int q, std::uint16_t d16) {
  const float max = ggml::ggml_block_max(block);
  const double d = max / -16.0f;
  return std::fabs(d) * ((q == 31 ? 1.0 : 0.5) + 0x1p-17) + 16 * std::fabs(d - half_value(d16)) + 1e-45;
}

}  // namespace

TEST_CASE("q5_0 is a fused weight format with ggml's block geometry", "[quant][q5_0]") {
  CHECK(std::string(q5_0::name) == "q5_0");
  CHECK(q5_0::ggml_type == 6u);  // GGML_TYPE_Q5_0
  ggml::check_geometry<q5_0>(22, 5.5, kern::best_path);
}

TEST_CASE("q5_0 dequantizes bit-exactly as ggml: (float)(q - 16) * (float)d", "[quant][q5_0]") {
  const std::uint16_t ds[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x8001, 0x83FF, 0x0000, 0x8000, 0x2E66, 0xC8F3, 0x7BFF};
  // 16 blocks whose 256 bytes of nibbles are every byte value, fifth bits of every pattern
  std::uint8_t qs[256];
  for (int v = 0; v < 256; ++v) qs[v] = static_cast<std::uint8_t>(v);
  const std::uint32_t qhs[16] = {0, 0xFFFFFFFF, 0xAAAAAAAA, 0x55555555, 0x0000FFFF, 0xFFFF0000, 0x80000001, 0x12345678,
                                 0x9ABCDEF0, 1, 0x80000000, 0x00010000, 0x00008000, 0xDEADBEEF, 0x0F0F0F0F, 0xF0F0F0F0};
  std::vector<std::byte> buf(16 * bb + 1);
  std::byte* blocks = buf.data() + 1;
  std::vector<float> y(512);
  for (const std::uint16_t d : ds) {
    for (int b = 0; b < 16; ++b) put_block(blocks + b * bb, d, qhs[b], qs + 16 * b);
    q5_0::dequantize_row(blocks, y.data(), 512);
    const auto df = static_cast<float>(half_value(d));
    INFO("d bits 0x" << std::hex << d);
    for (int b = 0; b < 16; ++b)
      for (int t = 0; t < 32; ++t) {
        const float want = static_cast<float>(block_q(blocks + b * bb, t) - 16) * df;
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(32 * b + t)]) == std::bit_cast<std::uint32_t>(want));
      }
  }
  // every q in [0, 31] occurs
  std::vector<int> seen(32, 0);
  for (int b = 0; b < 16; ++b)
    for (int t = 0; t < 32; ++t) ++seen[static_cast<std::size_t>(block_q(blocks + b * bb, t))];
  for (int q = 0; q < 32; ++q) CHECK(seen[static_cast<std::size_t>(q)] > 0);
}

TEST_CASE("q5_0 rounds to 5 bits as ggml's ISO C evaluation, whatever the contraction", "[quant][q5_0]") {
  for (const float c : {16.5f, 0.5f}) {
    for (int n = 0; n <= 32; ++n) {
      float p = static_cast<float>(n) - c;
      for (int s = 0; s < 200; ++s) p = std::nextafter(p, -1e9f);
      for (int s = 0; s < 401; ++s, p = std::nextafter(p, 1e9f)) {
        if (p + c < -0.5f || p + c >= 32.5f) continue;
        INFO("c " << c << " p " << p);
        REQUIRE(kern::quant_of(p, c) == ggml_q5(p, c));
      }
    }
    for (const float p : test::random_floats(200000, -c, 32.0f - c, 3)) REQUIRE(kern::quant_of(p, c) == ggml_q5(p, c));
    for (const float p : test::random_floats(20000, -1e-6f, 1e-6f, 4)) REQUIRE(kern::quant_of(p, c) == ggml_q5(p, c));
  }
  // degenerate products (1 / d overflowed) give 0 as on x86 ggml
  CHECK(kern::quant_of(std::numeric_limits<float>::infinity(), 16.5) == 0);
  CHECK(kern::quant_of(-std::numeric_limits<float>::infinity(), 16.5) == 0);
  CHECK(kern::quant_of(std::numeric_limits<float>::quiet_NaN(), 16.5) == 0);
}

TEST_CASE("q5_0 quantizes bit-exactly as ggml's quantize_row_q5_0_ref", "[quant][q5_0]") {
  constexpr std::int64_t k = 32 * 64;
  std::mt19937 gen(11);
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 2e5f}) {
    auto x = ggml::quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    x[163] = -scale;  // block 5: a tie in magnitude, the negative first: max = -scale, d > 0
    x[170] = scale;
    x[195] = scale;  // block 6: the tie the other way round: max = +scale, d < 0
    x[202] = -scale;
    // block 10: ggml's own grid at d = 0.25 (max -4): every x * id is an integer
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(320 + t)] = 0.25f * static_cast<float>(t - 16);
    // block 11: one large outlier (d stays within binary16's range)
    x[357] = std::min(1000.0f * scale, 1e6f);

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * bb)), want(got.size());
    q5_0::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q5_0_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);

    CHECK(block_d(got.data() + 2 * bb) == 0x8000);  // all zero: d = -0, q = 16
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 2 * bb, t) == 16);
    CHECK(block_d(got.data() + 5 * bb) == half_bits_ref(scale / 16));
    CHECK(block_q(got.data() + 5 * bb, 3) == 0);
    CHECK(block_d(got.data() + 6 * bb) == half_bits_ref(-scale / 16));
    CHECK(block_q(got.data() + 6 * bb, 10) == 31);  // -max / d = 16: 32.5 truncates to 32, clamped to 31
    CHECK(block_d(got.data() + 10 * bb) == 0x3400);  // d = 0.25
    for (int t = 0; t < 32; ++t) REQUIRE(block_q(got.data() + 10 * bb, t) == t);
    CHECK(block_q(got.data() + 11 * bb, 5) == 0);  // the outlier is the max: -16

    ggml::check_roundtrip<q5_0>(measured, x, got, [](const float* xb, const std::byte* blk) {
      return [=](int t, float) { return roundtrip_bound(xb, block_q(blk, t), block_d(blk)); };
    });
  }
  ggml::check_matrix_packs<q5_0>(ggml_quantize_row_q5_0_ref);
}

TEST_CASE("q5_0 equals the reference fixture's quantize and dequantize byte for byte", "[quant][q5_0]") {
  const auto f = ggml::gguf_py_fixture();
  ggml::check_gguf_py<q5_0>(f, "q5_0");
  ggml::check_fixture_rows<q5_0>(f, "input.extra", "q5_0.extra");
}

TEST_CASE("q5_0 activations are q8_0's: int8 per block as ggml's Q8_0, float scales, lane sums", "[quant][q5_0]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  const auto x = ggml::padded_rows(activations_for(m, k, 3), m, k, ldx);
  REQUIRE(q5_0::activation_bytes(m, k) == quant::q8_0::activation_bytes(m, k));
  auto a = allocate_aligned<std::byte>(q5_0::activation_bytes(m, k));
  auto b = allocate_aligned<std::byte>(q5_0::activation_bytes(m, k));
  std::memset(a.get(), 0, q5_0::activation_bytes(m, k));
  std::memset(b.get(), 0, q5_0::activation_bytes(m, k));
  q5_0::prepare_activations(x.data(), ldx, m, k, a.get());
  quant::q8_0::prepare_activations(x.data(), ldx, m, k, b.get());
  CHECK(std::memcmp(a.get(), b.get(), q5_0::activation_bytes(m, k)) == 0);
}

TEST_CASE("every compiled q5_0 path equals the scalar reference", "[quant][q5_0]") {
  // random fifth bits and nibbles (every q), random scales (normal and subnormal, both signs)
  ggml::check_paths_scaled<q5_0, kern::dot>(measured, 20, [](const std::byte* blk, int t) { return block_q(blk, t) - 16; });
}

TEST_CASE("every compiled q5_0 float-activation path equals the dequantized product", "[quant][q5_0]") {
  ggml::check_float_paths<q5_0, kern::float_dot>(20);
}

TEST_CASE("q5_0 paths are exact on integer data, every q included", "[quant][q5_0]") {
  constexpr std::int64_t n = 4, rb = 3 * bb;
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      const std::uint32_t qh = j == 0 ? 0u : j == 1 ? 0xFFFFFFFFu : j == 2 ? 0xAAAAAAAAu : 0x12345678u * static_cast<std::uint32_t>(b + 1);
      put_block(w.data() + j * rb + b * bb, 0x3C00, qh, qs);
    }
  ggml::check_exact_on_integers<q5_0, kern::dot>(w, [](const std::byte* blk, int t, std::int64_t) { return block_q(blk, t) - 16; });
}

TEST_CASE("ops::linear with q5_0 weights: the fused product when opted in, float products otherwise", "[quant][q5_0]") {
  using fast = quant::int8_activations<q5_0>;
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q5_0>);
  CHECK(std::string(fast::name) == "q5_0");
  ggml::check_linear<fast>(measured);
  ggml::check_linear<q5_0>(measured);
}

TEST_CASE("q5_0 goes through a GGUF file as type Q5_0", "[quant][q5_0][gguf]") {
  ggml::check_gguf_round_trip<q5_0>("Q5_0", 96);
}

TEST_CASE("q5_0 matrices need whole blocks; NaN scales stay NaN; the registry knows q5_0", "[quant][q5_0]") {
  ggml::check_whole_blocks_and_registry<q5_0>(44, 5.5);
  ggml::check_nan_scale<q5_0>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
}
