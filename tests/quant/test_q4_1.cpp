// quant::q4_1 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q4_1 / quantize_row_q4_1_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: (x - min) * id rounded before + 0.5f), both against gguf-py's output
// (tests/data/ggml_quants.safetensors, written by tools/make_quant_fixtures.py), every compiled
// fused-product path against the scalar reference, and ops::linear through each of its paths
// (the fused product for <= 8 rows when the format is int8_activations<q4_1>, float products of
// dequantized rows or tiles otherwise).
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
#include <tformer/core/parallel.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_1.hpp>
#include <tformer/quant/q8_0.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q4_1_kernels;
using quant::q4_1;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q4_1_REPORT is set.
struct report {
  double roundtrip = 0;     // max |x - deq(q(x))| / its bound
  double path_vs_ref = 0;   // max |path - scalar| / ((4 nb + 32) u M)
  double scalar_exact = 0;  // max |scalar - exact| / M
  double fused_err = 0;     // max |fused - float product| / bound
  double fused_rel = 0;     // max |fused - float product| / sum |x w|
  double tiles_rel = 0;     // max |float paths (rows, tiles) - float product| / sum |x w|
  ~report() {
    if (std::getenv("TFORMER_Q4_1_REPORT") == nullptr) return;
    std::printf(
        "q4_1 report: round trip err/bound %.6f | path-scalar err/bound %.3g | scalar-exact err/M %.3g | fused "
        "err/bound %.4f, err/sum|xw| %.3g | float paths err/sum|xw| %.3g\n",
        roundtrip, path_vs_ref, scalar_exact, fused_err, fused_rel, tiles_rel);
  }
} measured;

constexpr std::int64_t bb = 20;  // bytes per block

/// The value of binary16 bits, computed in double from the definition (independent of core/half).
double half_value(std::uint16_t h) {
  const int e = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double mag = e == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

/// float -> binary16 bits, round to nearest even, by searching the finite positive halves (whose
/// values grow with their bits) for the nearest one in double. Finite inputs within half range.
std::uint16_t half_bits_ref(float f) {
  const double a = std::fabs(static_cast<double>(f));
  std::uint16_t lo = 0, hi = 0x7BFF;
  while (hi - lo > 1) {  // half_value(lo) <= a < half_value(hi), or a beyond the range
    const auto mid = static_cast<std::uint16_t>((lo + hi) / 2);
    (half_value(mid) <= a ? lo : hi) = mid;
  }
  const double dl = a - half_value(lo), dh = half_value(hi) - a;
  std::uint16_t r = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
  if (a >= half_value(0x7BFF)) r = 0x7BFF;  // (tests stay well below the largest half)
  return static_cast<std::uint16_t>(r | (std::signbit(f) ? 0x8000 : 0));
}

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
    const std::uint16_t dh = half_bits_ref(d), mh = half_bits_ref(min);
    std::byte* blk = y + i * bb;
    blk[0] = static_cast<std::byte>(dh & 0xFF);  // little endian
    blk[1] = static_cast<std::byte>(dh >> 8);
    blk[2] = static_cast<std::byte>(mh & 0xFF);
    blk[3] = static_cast<std::byte>(mh >> 8);
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
  p[0] = static_cast<std::byte>(d & 0xFF);
  p[1] = static_cast<std::byte>(d >> 8);
  p[2] = static_cast<std::byte>(m & 0xFF);
  p[3] = static_cast<std::byte>(m >> 8);
  std::memcpy(p + 4, qs, 16);
}
std::uint16_t block_half(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
std::uint16_t block_d(const std::byte* p) { return block_half(p); }
std::uint16_t block_m(const std::byte* p) { return block_half(p + 2); }
/// Nibble t (< 32) of a block, in weight order.
int block_q(const std::byte* p, int t) {
  const unsigned byte = std::to_integer<unsigned>(p[4 + t % 16]);
  return static_cast<int>(t < 16 ? byte & 15 : byte >> 4);
}
/// ggml's dequantized weight q * d + m, rounded once (q * d + m is exact in double).
float weight_of(int q, std::uint16_t d, std::uint16_t m) {
  return static_cast<float>(q * half_value(d) + half_value(m));
}

/// Every fused-product path compiled into this test, by name.
using dot_fn = void (*)(const std::byte*, std::int64_t, std::int64_t, const std::byte*, std::int64_t, std::int64_t,
                        float*, std::int64_t);
std::vector<std::pair<std::string, dot_fn>> compiled_paths() {
  std::vector<std::pair<std::string, dot_fn>> p{{"scalar", &kern::dot_scalar}};
#if defined(TFORMER_Q4_1_AVX2)
  p.emplace_back("avx2", &kern::dot_avx2);
#endif
#if defined(TFORMER_Q4_1_AVX512VNNI)
  p.emplace_back("avx512vnni", &kern::dot_avx512vnni);
#endif
  p.emplace_back("fused_product", &q4_1::fused_product);
  return p;
}

/// x [m, k] with a different magnitude in every block (1e-3 .. 1e3), some zeros and an all-zero block.
std::vector<float> activations_for(std::int64_t m, std::int64_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-3.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(m * k));
  for (std::int64_t b = 0; b < m * k / 32; ++b) {
    const float scale = std::pow(10.0f, e(gen));
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(b * 32 + t)] = (t % 7 == 3) ? 0.0f : scale * u(gen);
  }
  if (k >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // block 1 of row 0: d = 0
  return x;
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
  STATIC_REQUIRE(quant::weight_format<q4_1>);
  STATIC_REQUIRE(quant::fused_format<q4_1>);
  STATIC_REQUIRE_FALSE(quant::element_format<q4_1>);
  CHECK(std::string(q4_1::name) == "q4_1");
  CHECK(q4_1::block_size == 32);
  CHECK(q4_1::block_bytes == 20);
  CHECK(q4_1::bits_per_weight == 5.0);
  CHECK(q4_1::bits_per_weight == 8.0 * q4_1::block_bytes / q4_1::block_size);
  CHECK(q4_1::ggml_type == 3u);  // GGML_TYPE_Q4_1
  CHECK(q4_1::max_fused_rows == 8);
  CHECK(quant::row_bytes<q4_1>(4096) == 128 * 20);
  INFO("fused_product uses " << kern::best_path);
  CHECK(std::string(kern::best_path).size() > 0);
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
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;     // scattered zeros
    std::fill(x.begin() + 64, x.begin() + 96, 0.0f);                                    // an all-zero block
    for (std::int64_t j = 128; j < 160; ++j) x[static_cast<std::size_t>(j)] *= 1e-3f;  // a quiet block
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
    std::vector<float> back(static_cast<std::size_t>(k));
    q4_1::dequantize_row(got.data(), back.data(), k);
    for (std::int64_t b = 0; b < k / 32; ++b) {
      float min = x[static_cast<std::size_t>(b * 32)], max = min;
      for (int t = 0; t < 32; ++t) {
        min = std::min(min, x[static_cast<std::size_t>(b * 32 + t)]);
        max = std::max(max, x[static_cast<std::size_t>(b * 32 + t)]);
      }
      const double d = (max - min) / 15.0f, d16 = half_value(block_d(got.data() + b * bb)),
                   m16 = half_value(block_m(got.data() + b * bb));
      for (int t = 0; t < 32; ++t) {
        const auto j = static_cast<std::size_t>(b * 32 + t);
        const double err = std::fabs(static_cast<double>(x[j]) - back[j]);
        const double bound =
            d * (0.5 + 0x1p-17) + 15 * std::fabs(d - d16) + std::fabs(min - m16) + 0x1p-24 * std::fabs(back[j]) + 1e-45;
        REQUIRE(err <= bound);
        measured.roundtrip = std::max(measured.roundtrip, err / bound);
      }
    }
  }
  // quant::matrix<q4_1>::quantize packs rows the same way
  const auto w = test::random_tensor(shape{3, 96}, 5);
  const auto m = quant::matrix<q4_1>::quantize(w);
  std::vector<std::byte> want(3 * 3 * bb);
  for (int r = 0; r < 3; ++r) ggml_quantize_row_q4_1_ref(w.data() + r * 96, want.data() + r * 3 * bb, 96);
  CHECK(std::memcmp(m.data(), want.data(), want.size()) == 0);
}

TEST_CASE("q4_1 equals gguf-py's quantize and dequantize byte for byte", "[quant][q4_1]") {
  // tests/data/ggml_quants.safetensors: gguf.quants (gguf 0.19, numpy) on 16 rows of 64 floats:
  // random blocks (half of them off-centre) and hand-made ones (zeros, constants, halves,
  // fp16-subnormal and -underflowing scales, +-6e4, all-negative, all-positive, signed zeros)
  const io::safetensors_file f(std::string(TFORMER_TEST_DATA_DIR) + "/ggml_quants.safetensors");
  const auto x = f.load<float>("input");
  const auto packed = f.load<std::uint8_t>("q4_1");
  const auto deq = f.load<float>("q4_1.dequantized");
  REQUIRE(x.shape() == shape{16, 64});
  REQUIRE(packed.shape() == shape{16, 2 * bb});
  std::vector<std::byte> mine(2 * bb);
  std::vector<float> y(64);
  for (std::int64_t r = 0; r < 16; ++r) {
    INFO("row " << r);
    q4_1::quantize_row(x.data() + r * 64, mine.data(), 64);
    REQUIRE(std::memcmp(mine.data(), packed.data() + r * 2 * bb, 2 * bb) == 0);
    q4_1::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * 2 * bb), y.data(), 64);
    for (std::int64_t j = 0; j < 64; ++j)
      REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(deq(r, j)));
  }
}

TEST_CASE("q4_1 activations are ggml's Q8_1: q8_0's int8 and scales, plus d_x * sum qx per block", "[quant][q4_1]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  std::vector<float> x(static_cast<std::size_t>(m * ldx), 1e9f);  // the padding must never be read
  const auto v = activations_for(m, k, 3);
  for (std::int64_t i = 0; i < m; ++i) std::copy_n(v.begin() + i * k, k, x.begin() + i * ldx);
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
  const auto paths = compiled_paths();
  std::mt19937 gen(21);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const std::int64_t k : {32, 64, 96, 768, 4096}) {
    const std::int64_t nb = k / 32, rb = nb * bb;
    for (const std::int64_t n : {1, 3, 17, 64}) {
      // n weight rows of random nibbles, scales and offsets (normal and subnormal, both signs), at
      // an odd address: blocks are unaligned
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) {
        std::uint8_t qs[16];
        for (auto& q : qs) q = static_cast<std::uint8_t>(byte(gen));
        const std::uint16_t d = random_half(gen);
        const std::uint16_t m = random_half(gen);
        put_block(w + j * bb, d, m, qs);
      }
      for (std::int64_t m = 1; m <= 8; ++m) {
        const auto x = activations_for(m, k, static_cast<std::uint32_t>(gen()));
        auto acts = allocate_aligned<std::byte>(q4_1::activation_bytes(m, k));
        q4_1::prepare_activations(x.data(), k, m, k, acts.get());
        // exact value and magnitude, from the same integers and float scales
        std::vector<double> exact(static_cast<std::size_t>(m * n)), mag(exact.size());
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const std::byte* blk = w + j * rb + b * bb;
              const float dx = kern::activations::scale(acts.get(), k, i)[b * 8];
              const float s = static_cast<float>(half_value(block_d(blk))) * dx;
              const double mw = half_value(block_m(blk)), c = kern::activation_sums::row(acts.get(), m, k, i)[b * 8];
              std::int64_t dot = 0, adot = 0;
              for (int t = 0; t < 32; ++t) {
                const int qx = kern::activations::q(acts.get(), k, i)[b * 32 + t];
                dot += block_q(blk, t) * qx;
                adot += block_q(blk, t) * std::abs(qx);
              }
              e += static_cast<double>(s) * static_cast<double>(dot) + mw * c;
              a += std::fabs(static_cast<double>(s)) * static_cast<double>(adot) + std::fabs(mw * c);
            }
            exact[static_cast<std::size_t>(i * n + j)] = e;
            mag[static_cast<std::size_t>(i * n + j)] = a;
          }
        // y with a row stride wider than n: the gap must stay untouched
        const std::int64_t ldy = n + 3;
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        kern::dot_scalar(acts.get(), m, k, w, rb, n, ref.data(), ldy);
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(acts.get(), m, k, w, rb, n, y.data(), ldy);
          INFO("path " << name << " k=" << k << " n=" << n << " m=" << m);
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
              const auto o = static_cast<std::size_t>(i * ldy + j), e = static_cast<std::size_t>(i * n + j);
              const double bound = (4.0 * static_cast<double>(nb) + 32.0) * 0x1p-24 * mag[e];
              const double err = std::fabs(static_cast<double>(y[o]) - ref[o]);
              REQUIRE(err <= bound);
              if (bound > 0) measured.path_vs_ref = std::max(measured.path_vs_ref, err / bound);
              const double err_exact = std::fabs(static_cast<double>(ref[o]) - exact[e]);
              REQUIRE(err_exact <= (2.0 * static_cast<double>(nb) + 1.0) * 0x1p-24 * mag[e]);
              if (mag[e] > 0) measured.scalar_exact = std::max(measured.scalar_exact, err_exact / mag[e]);
            }
            for (std::int64_t j = n; j < ldy; ++j) REQUIRE(y[static_cast<std::size_t>(i * ldy + j)] == -7.0f);
          }
        }
      }
    }
  }
}

TEST_CASE("q4_1 paths are exact on integer data, every nibble included", "[quant][q4_1]") {
  // d_w = 1, integer m_w, and activations with amax 127 (d_x = 1, q = x): every term is an integer
  constexpr std::int64_t k = 96, n = 4, m = 8, rb = 3 * bb;
  const std::uint16_t ms[] = {0xC800 /* -8 */, 0x4200 /* 3 */, 0x0000, 0xD3E0 /* -63 */};
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all 0, all 15, alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, ms[j], qs);
    }
  std::vector<float> x(m * k);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t t = 0; t < k; ++t)
      x[static_cast<std::size_t>(i * k + t)] = t % 32 == 0 ? (i % 2 ? -127.0f : 127.0f) : static_cast<float>((t * 53 + i * 11) % 255 - 127);
  auto acts = allocate_aligned<std::byte>(q4_1::activation_bytes(m, k));
  q4_1::prepare_activations(x.data(), k, m, k, acts.get());
  for (const auto& [name, fn] : compiled_paths()) {
    std::vector<float> y(m * n);
    fn(acts.get(), m, k, w.data(), rb, n, y.data(), n);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (std::int64_t t = 0; t < k; ++t)
          want += (std::int64_t{block_q(w.data() + j * rb + t / 32 * bb, static_cast<int>(t % 32))} +
                   static_cast<std::int64_t>(half_value(ms[j]))) *
                  static_cast<std::int64_t>(x[static_cast<std::size_t>(i * k + t)]);
        INFO("path " << name << " i=" << i << " j=" << j);
        REQUIRE(y[static_cast<std::size_t>(i * n + j)] == static_cast<float>(want));
      }
  }
}

namespace {

/// ops::linear with weights in F, q4_1 as it is or int8_activations<q4_1>: up to 8 activation rows
/// take q4_1's fused product when F opts in and float dot products of dequantized rows when it does
/// not; more rows take the dequantized tiles. Every path against the float product on the
/// dequantized weights, and 1 thread against 2, bit for bit.
template <class F>
void check_linear() {
  constexpr bool fused = quant::uses_fused_product<F>;
  test::thread_guard guard;
  std::uint32_t seed = 40;
  for (const std::int64_t k : {32, 96, 768}) {
    const std::int64_t nb = k / 32;
    for (const std::int64_t n : {1, 17, 1000}) {  // 1000 columns: several column tiles
      auto wf = test::random_tensor(shape{n, k}, seed++);
      for (std::int64_t j = 0; j < n; j += 3)  // every third row off-centre: the offsets matter
        for (std::int64_t t = 0; t < k; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
      const auto wq = quant::matrix<F>::quantize(wf);
      const auto wd = wq.to_float();  // the dequantized weights w^
      const auto bias = test::random_tensor(shape{n}, seed++);
      for (const std::int64_t m : {1, 2, 5, 8, 9, 33, 70}) {
        const auto xv = activations_for(m, k, seed++);
        tensor<float> x(shape{m, k});
        std::copy(xv.begin(), xv.end(), x.data());
        for (const bool with_bias : {false, true}) {
          const tensor_view<const float> b = with_bias ? tensor_view<const float>(bias) : tensor_view<const float>();
          tensor<float> y1(shape{m, n}), y2(shape{m, n}), ref(shape{m, n});
          set_num_threads(1);
          ops::linear(x, wq, y1, b);
          ops::linear(x, wd, ref, b);
          set_num_threads(2);
          ops::linear(x, wq, y2, b);
          INFO("k=" << k << " n=" << n << " m=" << m << " bias=" << with_bias << " fused=" << fused);
          REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
          if (fused && m <= q4_1::max_fused_rows) {
            // the fused path: exactly q4_1::fused_product (+ bias), and near the float product
            auto acts = allocate_aligned<std::byte>(q4_1::activation_bytes(m, k));
            q4_1::prepare_activations(x.data(), k, m, k, acts.get());
            tensor<float> yf(shape{m, n});
            q4_1::fused_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                const float want = with_bias ? yf(i, j) + bias(j) : yf(i, j);
                REQUIRE(std::bit_cast<std::uint32_t>(y1(i, j)) == std::bit_cast<std::uint32_t>(want));
                double qerr = 0, terms = 0, mag = with_bias ? std::fabs(bias(j)) : 0.0;
                for (std::int64_t bk = 0; bk < nb; ++bk) {
                  const std::byte* blk = wq.row(j) + bk * bb;
                  const double dx = kern::activations::scale(acts.get(), k, i)[bk * 8];
                  double amax = 0, wsum = 0;
                  for (int t = 0; t < 32; ++t) {
                    const double xt = x(i, bk * 32 + t), wt = wd(j, bk * 32 + t);
                    const double qx = kern::activations::q(acts.get(), k, i)[bk * 32 + t];
                    amax = std::max(amax, std::fabs(xt));
                    wsum += std::fabs(wt);
                    mag += std::fabs(xt * wt);
                    terms += std::fabs(dx * qx) *
                             (std::fabs(half_value(block_d(blk))) * block_q(blk, t) + std::fabs(half_value(block_m(blk))));
                  }
                  qerr += wsum * amax / 254 * (1 + 0x1p-15) * (1 + 0x1p-24) * (1 + 0x1p-24);
                }
                const double bound = qerr + 0x1p-24 * mag + (2.0 * static_cast<double>(nb) + 16) * 0x1p-24 * terms * 1.001 +
                                     1e-5 * mag + 1e-30;
                const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
                REQUIRE(err <= bound);
                measured.fused_err = std::max(measured.fused_err, err / bound);
                if (mag > 0) measured.fused_rel = std::max(measured.fused_rel, err / mag);
              }
          } else {
            // float products on the dequantized weights (rows for few activation rows, tiles beyond)
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                double mag = with_bias ? std::fabs(bias(j)) : 0.0;
                for (std::int64_t t = 0; t < k; ++t) mag += std::fabs(static_cast<double>(x(i, t)) * wd(j, t));
                const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
                REQUIRE(err <= 1e-5 * mag + 1e-30);
                if (mag > 0) measured.tiles_rel = std::max(measured.tiles_rel, err / mag);
              }
          }
        }
      }
    }
  }
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
  for (const std::int64_t cols : {1, 31, 33, 48, 100}) {
    const auto msg = test::thrown_message<shape_error>([&] { quant::matrix<q4_1>(2, cols); });
    INFO(msg);
    CHECK(msg.find("q4_1") != std::string::npos);
    CHECK(msg.find(std::to_string(cols)) != std::string::npos);
  }
  CHECK_THROWS_AS(quant::matrix<q4_1>::quantize(test::random_tensor(shape{2, 40}, 1)), shape_error);
  const quant::matrix<q4_1> ok(3, 64);
  CHECK(ok.row_bytes() == 40);
  CHECK(ok.size_bytes() == 120);

  std::string seen;
  double bits = 0;
  quant::visit_format("q4_1", [&](auto f) {
    using F = decltype(f);
    seen = F::name;
    bits = F::bits_per_weight;
    CHECK((std::is_same_v<F, q4_1>));
  });
  CHECK(seen == "q4_1");
  CHECK(bits == 5.0);
  CHECK(quant::is_known_format("q4_1"));
}
