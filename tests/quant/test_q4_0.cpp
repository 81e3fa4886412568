// quant::q4_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q4_0 / quantize_row_q4_0_ref (re-implemented here independently, fp16 rounding
// included, evaluated as ISO C: x * id rounded before + 8.5f), both against gguf-py's output
// (tests/data/ggml_quants.safetensors, written by tools/make_quant_fixtures.py), every compiled
// fused-product path against the scalar reference, and ops::linear through each of its paths
// (the fused product for <= 8 rows when the format is int8_activations<q4_0>, float products of
// dequantized rows or tiles otherwise).
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
#include <tformer/core/parallel.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_0.hpp>
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
namespace kern = tformer::quant::detail::q4_0_kernels;
using quant::q4_0;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q4_0_REPORT is set.
struct report {
  double roundtrip = 0;     // max |x - deq(q(x))| / its bound
  double path_vs_ref = 0;   // max |path - scalar| / ((2 nb + 32) u M)
  double scalar_exact = 0;  // max |scalar - exact| / M
  double fused_err = 0;     // max |fused - float product| / bound
  double fused_rel = 0;     // max |fused - float product| / sum |x w|
  double tiles_rel = 0;     // max |float paths (rows, tiles) - float product| / sum |x w|
  ~report() {
    if (std::getenv("TFORMER_Q4_0_REPORT") == nullptr) return;
    std::printf(
        "q4_0 report: round trip err/bound %.6f | path-scalar err/bound %.3g | scalar-exact err/M %.3g | fused "
        "err/bound %.4f, err/sum|xw| %.3g | float paths err/sum|xw| %.3g\n",
        roundtrip, path_vs_ref, scalar_exact, fused_err, fused_rel, tiles_rel);
  }
} measured;

constexpr std::int64_t bb = 18;  // bytes per block

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

/// ggml's MIN(15, (int8_t)(x0 + c)) where x0 is a float variable: volatile makes the compiler round
/// x0 to float before the add, as ISO C evaluates ggml's two statements (GCC would otherwise
/// contract the product and the add into one fma). Inputs in [-c, 16).
std::uint8_t ggml_nibble(float product, float c) {
  volatile float x0 = product;
  return static_cast<std::uint8_t>(std::min(15, static_cast<int>(static_cast<std::int8_t>(x0 + c))));
}

/// ggml's quantize_row_q4_0_ref, written out as in ggml-quants.c.
void ggml_quantize_row_q4_0_ref(const float* x, std::byte* y, std::int64_t k) {
  constexpr int qk = 32;
  for (std::int64_t i = 0; i < k / qk; ++i) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < qk; ++j) {
      const float v = x[i * qk + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t dh = half_bits_ref(d);
    std::byte* blk = y + i * bb;
    blk[0] = static_cast<std::byte>(dh & 0xFF);  // little endian
    blk[1] = static_cast<std::byte>(dh >> 8);
    for (int j = 0; j < qk / 2; ++j) {
      const std::uint8_t xi0 = ggml_nibble(x[i * qk + 0 + j] * id, 8.5f);
      const std::uint8_t xi1 = ggml_nibble(x[i * qk + qk / 2 + j] * id, 8.5f);
      blk[2 + j] = static_cast<std::byte>(xi0 | xi1 << 4);
    }
  }
}

/// A block: scale bits d (little endian) and 16 bytes of nibbles.
void put_block(std::byte* p, std::uint16_t d, const std::uint8_t* qs) {
  p[0] = static_cast<std::byte>(d & 0xFF);
  p[1] = static_cast<std::byte>(d >> 8);
  std::memcpy(p + 2, qs, 16);
}
std::uint16_t block_d(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
/// Nibble t (< 32) of a block, in weight order.
int block_q(const std::byte* p, int t) {
  const unsigned byte = std::to_integer<unsigned>(p[2 + t % 16]);
  return static_cast<int>(t < 16 ? byte & 15 : byte >> 4);
}

/// Every fused-product path compiled into this test, by name.
using dot_fn = void (*)(const std::byte*, std::int64_t, std::int64_t, const std::byte*, std::int64_t, std::int64_t,
                        float*, std::int64_t);
std::vector<std::pair<std::string, dot_fn>> compiled_paths() {
  std::vector<std::pair<std::string, dot_fn>> p{{"scalar", &kern::dot_scalar}};
#if defined(TFORMER_Q4_0_AVX2)
  p.emplace_back("avx2", &kern::dot_avx2);
#endif
#if defined(TFORMER_Q4_0_AVX512VNNI)
  p.emplace_back("avx512vnni", &kern::dot_avx512vnni);
#endif
  p.emplace_back("fused_product", &q4_0::fused_product);
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

/// The bound on |x - deq(q(x))| for one weight (see the top of the file).
double roundtrip_bound(const float* block, int q, std::uint16_t d16) {
  float amax = 0.0f, max = 0.0f;
  for (int t = 0; t < 32; ++t)
    if (amax < std::fabs(block[t])) {
      amax = std::fabs(block[t]);
      max = block[t];
    }
  const double d = max / -8.0f;
  return std::fabs(d) * ((q == 15 ? 1.0 : 0.5) + 0x1p-18) + 8 * std::fabs(d - half_value(d16)) + 1e-45;
}

}  // namespace

TEST_CASE("q4_0 is a fused weight format with ggml's block geometry", "[quant][q4_0]") {
  STATIC_REQUIRE(quant::weight_format<q4_0>);
  STATIC_REQUIRE(quant::fused_format<q4_0>);
  STATIC_REQUIRE_FALSE(quant::element_format<q4_0>);
  CHECK(std::string(q4_0::name) == "q4_0");
  CHECK(q4_0::block_size == 32);
  CHECK(q4_0::block_bytes == 18);
  CHECK(q4_0::bits_per_weight == 4.5);
  CHECK(q4_0::bits_per_weight == 8.0 * q4_0::block_bytes / q4_0::block_size);
  CHECK(q4_0::ggml_type == 2u);  // GGML_TYPE_Q4_0
  CHECK(q4_0::max_fused_rows == 8);
  CHECK(quant::row_bytes<q4_0>(4096) == 128 * 18);
  INFO("fused_product uses " << kern::best_path);
  CHECK(std::string(kern::best_path).size() > 0);
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
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;     // scattered zeros
    std::fill(x.begin() + 64, x.begin() + 96, 0.0f);                                    // an all-zero block
    for (std::int64_t j = 128; j < 160; ++j) x[static_cast<std::size_t>(j)] *= 1e-3f;  // a quiet block
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
    std::vector<float> back(static_cast<std::size_t>(k));
    q4_0::dequantize_row(got.data(), back.data(), k);
    for (std::int64_t b = 0; b < k / 32; ++b)
      for (int t = 0; t < 32; ++t) {
        const auto j = static_cast<std::size_t>(b * 32 + t);
        const double err = std::fabs(static_cast<double>(x[j]) - back[j]);
        const double bound = roundtrip_bound(x.data() + b * 32, block_q(got.data() + b * bb, t), block_d(got.data() + b * bb));
        REQUIRE(err <= bound);
        measured.roundtrip = std::max(measured.roundtrip, err / bound);
      }
  }
  // quant::matrix<q4_0>::quantize packs rows the same way
  const auto w = test::random_tensor(shape{3, 96}, 5);
  const auto m = quant::matrix<q4_0>::quantize(w);
  std::vector<std::byte> want(3 * 3 * bb);
  for (int r = 0; r < 3; ++r) ggml_quantize_row_q4_0_ref(w.data() + r * 96, want.data() + r * 3 * bb, 96);
  CHECK(std::memcmp(m.data(), want.data(), want.size()) == 0);
}

TEST_CASE("q4_0 and q8_0 equal gguf-py's quantize and dequantize byte for byte", "[quant][q4_0]") {
  // tests/data/ggml_quants.safetensors: gguf.quants (gguf 0.19, numpy) on 16 rows of 64 floats:
  // random blocks and hand-made ones (ties, zeros, the fma case, fp16-subnormal and -underflowing
  // scales, +-6e4). gguf-py evaluates Q4_0 unfused in float32, like ISO C.
  const io::safetensors_file f(std::string(TFORMER_TEST_DATA_DIR) + "/ggml_quants.safetensors");
  const auto x = f.load<float>("input");
  REQUIRE(x.shape() == shape{16, 64});
  const auto check = [&]<class F>(F, const char* name) {
    const auto packed = f.load<std::uint8_t>(name);
    const auto deq = f.load<float>(std::string(name) + ".dequantized");
    const std::int64_t rb = quant::row_bytes<F>(64);
    REQUIRE(packed.shape() == shape{16, rb});
    std::vector<std::byte> mine(static_cast<std::size_t>(rb));
    std::vector<float> y(64);
    for (std::int64_t r = 0; r < 16; ++r) {
      INFO(name << " row " << r);
      F::quantize_row(x.data() + r * 64, mine.data(), 64);
      REQUIRE(std::memcmp(mine.data(), packed.data() + r * rb, static_cast<std::size_t>(rb)) == 0);
      F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * rb), y.data(), 64);
      for (std::int64_t j = 0; j < 64; ++j)
        REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(deq(r, j)));
    }
  };
  check(q4_0{}, "q4_0");
  check(quant::q8_0{}, "q8_0");  // the fixture's Q8_0 entries: q8_0 against gguf-py too
  // the fma case is in the fixture (row 10, block 1, weight 1): gguf-py says 1 as well
  const auto packed = f.load<std::uint8_t>("q4_0");
  CHECK((packed(10, bb + 2 + 1) & 15) == 1);
  CHECK(x(10, 33) == 2.8125f);
}

TEST_CASE("q4_0 activations are q8_0's: int8 per block as ggml's Q8_0, float scales, lane sums", "[quant][q4_0]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  std::vector<float> x(static_cast<std::size_t>(m * ldx), 1e9f);  // the padding must never be read
  const auto v = activations_for(m, k, 3);
  for (std::int64_t i = 0; i < m; ++i) std::copy_n(v.begin() + i * k, k, x.begin() + i * ldx);
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
  const auto paths = compiled_paths();
  std::mt19937 gen(21);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const std::int64_t k : {32, 64, 96, 768, 4096}) {
    const std::int64_t nb = k / 32, rb = nb * bb;
    for (const std::int64_t n : {1, 3, 17, 64}) {
      // n weight rows of random nibbles (every value) and random scales (normal and subnormal,
      // both signs), at an odd address: blocks are unaligned
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) {
        std::byte* blk = w + j * bb;
        for (int t = 0; t < 16; ++t) blk[2 + t] = static_cast<std::byte>(byte(gen));
        // d in [2^-13 .. 2^-6) mostly, a subnormal 1 in 8 (one draw per statement: a fixed order)
        const int e = byte(gen) % 8;
        const int mant_hi = byte(gen), mant_lo = byte(gen) % 4, sign = byte(gen) % 2;
        const auto d = static_cast<std::uint16_t>((e == 0 ? 0 : (e + 1) << 10) | mant_hi << 2 | mant_lo | sign << 15);
        blk[0] = static_cast<std::byte>(d & 0xFF);
        blk[1] = static_cast<std::byte>(d >> 8);
      }
      for (std::int64_t m = 1; m <= 8; ++m) {
        const auto x = activations_for(m, k, static_cast<std::uint32_t>(gen()));
        auto acts = allocate_aligned<std::byte>(q4_0::activation_bytes(m, k));
        q4_0::prepare_activations(x.data(), k, m, k, acts.get());
        // exact value and magnitude, from the same integers and float scales
        std::vector<double> exact(static_cast<std::size_t>(m * n)), mag(exact.size());
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const std::byte* blk = w + j * rb + b * bb;
              const float s = static_cast<float>(half_value(block_d(blk))) * kern::activations::scale(acts.get(), k, i)[b * 8];
              std::int64_t sum = 0, asum = 0;
              for (int t = 0; t < 32; ++t) {
                const int p = (block_q(blk, t) - 8) * kern::activations::q(acts.get(), k, i)[b * 32 + t];
                sum += p;
                asum += std::abs(p);
              }
              e += static_cast<double>(s) * static_cast<double>(sum);
              a += std::fabs(static_cast<double>(s)) * static_cast<double>(asum);
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
              const double bound = (2.0 * static_cast<double>(nb) + 32.0) * 0x1p-24 * mag[e];
              const double err = std::fabs(static_cast<double>(y[o]) - ref[o]);
              REQUIRE(err <= bound);
              if (bound > 0) measured.path_vs_ref = std::max(measured.path_vs_ref, err / bound);
              const double err_exact = std::fabs(static_cast<double>(ref[o]) - exact[e]);
              REQUIRE(err_exact <= (static_cast<double>(nb) + 1.0) * 0x1p-24 * mag[e]);
              if (mag[e] > 0) measured.scalar_exact = std::max(measured.scalar_exact, err_exact / mag[e]);
            }
            for (std::int64_t j = n; j < ldy; ++j) REQUIRE(y[static_cast<std::size_t>(i * ldy + j)] == -7.0f);
          }
        }
      }
    }
  }
}

TEST_CASE("q4_0 paths are exact on integer data, every nibble included", "[quant][q4_0]") {
  // d_w = 1 and activations with amax 127 (d_x = 1, q = x): every product and sum is an integer
  constexpr std::int64_t k = 96, n = 4, m = 8, rb = 3 * bb;
  std::vector<std::byte> w(n * rb);
  std::uint8_t qs[16];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 16; ++t)  // all 0 (weights -8), all 15 (7), alternating, every byte
        qs[t] = static_cast<std::uint8_t>(j == 0 ? 0x00 : j == 1 ? 0xFF : j == 2 ? (t % 2 ? 0xF0 : 0x0F) : (t * 37 + b * 101) % 256);
      put_block(w.data() + j * rb + b * bb, 0x3C00, qs);
    }
  std::vector<float> x(m * k);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t t = 0; t < k; ++t)
      x[static_cast<std::size_t>(i * k + t)] = t % 32 == 0 ? (i % 2 ? -127.0f : 127.0f) : static_cast<float>((t * 53 + i * 11) % 255 - 127);
  auto acts = allocate_aligned<std::byte>(q4_0::activation_bytes(m, k));
  q4_0::prepare_activations(x.data(), k, m, k, acts.get());
  for (const auto& [name, fn] : compiled_paths()) {
    std::vector<float> y(m * n);
    fn(acts.get(), m, k, w.data(), rb, n, y.data(), n);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (std::int64_t t = 0; t < k; ++t)
          want += std::int64_t{block_q(w.data() + j * rb + t / 32 * bb, static_cast<int>(t % 32)) - 8} *
                  static_cast<std::int64_t>(x[static_cast<std::size_t>(i * k + t)]);
        INFO("path " << name << " i=" << i << " j=" << j);
        REQUIRE(y[static_cast<std::size_t>(i * n + j)] == static_cast<float>(want));
      }
  }
}

namespace {

/// ops::linear with weights in F, q4_0 as it is or int8_activations<q4_0>: up to 8 activation rows
/// take q4_0's fused product when F opts in and float dot products of dequantized rows when it does
/// not; more rows take the dequantized tiles. Every path against the float product on the
/// dequantized weights, and 1 thread against 2, bit for bit.
template <class F>
void check_linear() {
  constexpr bool fused = quant::uses_fused_product<F>;
  test::thread_guard guard;
  std::uint32_t seed = 40;
  for (const std::int64_t k : {32, 96, 768}) {
    for (const std::int64_t n : {1, 17, 1000}) {  // 1000 columns: several column tiles
      const auto wf = test::random_tensor(shape{n, k}, seed++);
      const auto wq = quant::matrix<F>::quantize(wf);
      const auto wd = wq.to_float();  // the dequantized weights: exactly what the fused product uses
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
          if (fused && m <= q4_0::max_fused_rows) {
            // the fused path: exactly q4_0::fused_product (+ bias), and near the float product
            auto acts = allocate_aligned<std::byte>(q4_0::activation_bytes(m, k));
            q4_0::prepare_activations(x.data(), k, m, k, acts.get());
            tensor<float> yf(shape{m, n});
            q4_0::fused_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                const float want = with_bias ? yf(i, j) + bias(j) : yf(i, j);
                REQUIRE(std::bit_cast<std::uint32_t>(y1(i, j)) == std::bit_cast<std::uint32_t>(want));
                double qerr = 0, mag = with_bias ? std::fabs(bias(j)) : 0.0;
                for (std::int64_t bk = 0; bk < k / 32; ++bk) {
                  double amax = 0, wsum = 0;
                  for (int t = 0; t < 32; ++t) {
                    amax = std::max(amax, std::fabs(static_cast<double>(x(i, bk * 32 + t))));
                    wsum += std::fabs(static_cast<double>(wd(j, bk * 32 + t)));
                    mag += std::fabs(static_cast<double>(x(i, bk * 32 + t)) * wd(j, bk * 32 + t));
                  }
                  qerr += wsum * amax / 254 * (1 + 0x1p-15) * (1 + 0x1p-24);
                }
                const double bound = qerr + 1e-5 * mag + 1e-30;
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

TEST_CASE("ops::linear with q4_0 weights: the fused product when opted in, float products otherwise", "[quant][q4_0]") {
  using fast = quant::int8_activations<q4_0>;  // the spelling a spec uses to switch the fused product on
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q4_0>);
  CHECK(std::string(fast::name) == "q4_0");
  check_linear<fast>();
  check_linear<q4_0>();
}

TEST_CASE("q4_0 matrices need whole blocks; the registry knows q4_0", "[quant][q4_0]") {
  for (const std::int64_t cols : {1, 31, 33, 48, 100}) {
    const auto msg = test::thrown_message<shape_error>([&] { quant::matrix<q4_0>(2, cols); });
    INFO(msg);
    CHECK(msg.find("q4_0") != std::string::npos);
    CHECK(msg.find(std::to_string(cols)) != std::string::npos);
  }
  CHECK_THROWS_AS(quant::matrix<q4_0>::quantize(test::random_tensor(shape{2, 40}, 1)), shape_error);
  const quant::matrix<q4_0> ok(3, 64);
  CHECK(ok.row_bytes() == 36);
  CHECK(ok.size_bytes() == 108);

  std::string seen;
  double bits = 0;
  quant::visit_format("q4_0", [&](auto f) {
    using F = decltype(f);
    seen = F::name;
    bits = F::bits_per_weight;
    CHECK((std::is_same_v<F, q4_0>));
  });
  CHECK(seen == "q4_0");
  CHECK(bits == 4.5);
  CHECK(quant::is_known_format("q4_0"));
}
