// quant::q8_0 against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q8_0 / quantize_row_q8_0_ref (re-implemented here independently, fp16 rounding
// included), every compiled fused-product path against the scalar reference, and ops::linear
// through both of its paths (fused for <= 8 rows, dequantized tiles otherwise).
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
#include <tformer/core/parallel.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q8_0.hpp>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q8_0_kernels;
using quant::q8_0;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q8_0_REPORT is set.
struct report {
  double roundtrip = 0;     // max |x - deq(q(x))| / its bound
  double path_vs_ref = 0;   // max |path - scalar| / ((2 nb + 32) u M)
  double scalar_exact = 0;  // max |scalar - exact| / M
  double fused_err = 0;     // max |fused - float product| / bound
  double fused_rel = 0;     // max |fused - float product| / sum |x w|
  double tiles_rel = 0;     // max |tiles path - float product| / sum |x w|
  ~report() {
    if (std::getenv("TFORMER_Q8_0_REPORT") == nullptr) return;
    std::printf(
        "q8_0 report: round trip err/bound %.6f | path-scalar err/bound %.3g | scalar-exact err/M %.3g | fused "
        "err/bound %.4f, err/sum|xw| %.3g | tiles err/sum|xw| %.3g\n",
        roundtrip, path_vs_ref, scalar_exact, fused_err, fused_rel, tiles_rel);
  }
} measured;

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
    const std::uint16_t dh = half_bits_ref(d);
    std::byte* blk = y + i * 34;
    blk[0] = static_cast<std::byte>(dh & 0xFF);  // little endian
    blk[1] = static_cast<std::byte>(dh >> 8);
    for (int j = 0; j < QK8_0; ++j) {
      const float x0 = x[i * QK8_0 + j] * id;
      blk[2 + j] = static_cast<std::byte>(static_cast<std::int8_t>(std::round(x0)));
    }
  }
}

/// A block: scale bits d (little endian) and 32 int8.
void put_block(std::byte* p, std::uint16_t d, const std::int8_t* qs) {
  p[0] = static_cast<std::byte>(d & 0xFF);
  p[1] = static_cast<std::byte>(d >> 8);
  std::memcpy(p + 2, qs, 32);
}
std::uint16_t block_d(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
std::int8_t block_q(const std::byte* p, int t) { return static_cast<std::int8_t>(std::to_integer<unsigned>(p[2 + t])); }

/// Every fused-product path compiled into this test, by name.
using dot_fn = void (*)(const std::byte*, std::int64_t, std::int64_t, const std::byte*, std::int64_t, std::int64_t,
                        float*, std::int64_t);
std::vector<std::pair<std::string, dot_fn>> compiled_paths() {
  std::vector<std::pair<std::string, dot_fn>> p{{"scalar", &kern::dot_scalar}};
#if defined(TFORMER_Q8_0_AVX2)
  p.emplace_back("avx2", &kern::dot_avx2);
#endif
#if defined(TFORMER_Q8_0_AVX512VNNI)
  p.emplace_back("avx512vnni", &kern::dot_avx512vnni);
#endif
  p.emplace_back("fused_product", &q8_0::fused_product);
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

}  // namespace

TEST_CASE("q8_0 is a fused weight format with ggml's block geometry", "[quant][q8_0]") {
  STATIC_REQUIRE(quant::weight_format<q8_0>);
  STATIC_REQUIRE(quant::fused_format<q8_0>);
  STATIC_REQUIRE_FALSE(quant::element_format<q8_0>);
  CHECK(std::string(q8_0::name) == "q8_0");
  CHECK(q8_0::block_size == 32);
  CHECK(q8_0::block_bytes == 34);
  CHECK(q8_0::bits_per_weight == 8.5);
  CHECK(q8_0::bits_per_weight == 8.0 * q8_0::block_bytes / q8_0::block_size);
  CHECK(q8_0::max_fused_rows == 8);
  CHECK(quant::row_bytes<q8_0>(4096) == 128 * 34);
  INFO("fused_product uses " << kern::best_path);
  CHECK(std::string(kern::best_path).size() > 0);
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
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;       // scattered zeros
    std::fill(x.begin() + 64, x.begin() + 96, 0.0f);                                      // an all-zero block
    for (std::int64_t j = 128; j < 160; ++j) x[static_cast<std::size_t>(j)] *= 1e-3f;    // a quiet block
    x[200] = -scale;                                                                       // amax from a negative
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
    std::vector<float> back(static_cast<std::size_t>(k));
    q8_0::dequantize_row(got.data(), back.data(), k);
    for (std::int64_t b = 0; b < k / 32; ++b) {
      float amax = 0.0f;
      for (int t = 0; t < 32; ++t) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(b * 32 + t)]));
      const double d = amax / 127.0f, d16 = half_value(block_d(got.data() + b * 34));
      for (int t = 0; t < 32; ++t) {
        const auto j = static_cast<std::size_t>(b * 32 + t);
        const double err = std::fabs(static_cast<double>(x[j]) - back[j]);
        const double bound = d / 2 * (1 + 0x1p-15) + 127 * std::fabs(d - d16) + 1e-45;
        REQUIRE(err <= bound);
        measured.roundtrip = std::max(measured.roundtrip, err / bound);
      }
    }
  }
  // quant::matrix<q8_0>::quantize packs rows the same way
  const auto w = test::random_tensor(shape{3, 96}, 5);
  const auto m = quant::matrix<q8_0>::quantize(w);
  std::vector<std::byte> want(3 * 102);
  for (int r = 0; r < 3; ++r) ggml_quantize_row_q8_0_ref(w.data() + r * 96, want.data() + r * 102, 96);
  CHECK(std::memcmp(m.data(), want.data(), want.size()) == 0);
}

TEST_CASE("q8_0 activations: int8 per block as ggml, float scales, lane sums", "[quant][q8_0]") {
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  std::vector<float> x(static_cast<std::size_t>(m * ldx), 1e9f);  // the padding must never be read
  auto v = activations_for(m, k, 3);
  // row 1, block 1: amax 127 (d = 1), so x * id lands exactly on halves: they round away from zero
  const float halves[] = {127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 63.5f, 0.49999997f, -1.0f};
  for (int t = 0; t < 32; ++t) v[static_cast<std::size_t>(k + 32 + t)] = halves[t % 12];
  for (std::int64_t i = 0; i < m; ++i) std::copy_n(v.begin() + i * k, k, x.begin() + i * ldx);
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
#if defined(TFORMER_Q8_0_AVX2)
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
  const auto paths = compiled_paths();
  std::mt19937 gen(21);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const std::int64_t k : {32, 64, 96, 768, 4096}) {
    const std::int64_t nb = k / 32, rb = nb * 34;
    for (const std::int64_t n : {1, 3, 17, 64}) {
      // n weight rows of random bytes (every int8, -128 included) and random scales (normal and
      // subnormal, both signs), at an odd address: blocks are unaligned
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) {
        std::byte* blk = w + j * 34;
        for (int t = 0; t < 32; ++t) blk[2 + t] = static_cast<std::byte>(byte(gen));
        // d in [2^-13 .. 2^-6) mostly, a subnormal 1 in 8 (one draw per statement: a fixed order)
        const int e = byte(gen) % 8;
        const int mant_hi = byte(gen), mant_lo = byte(gen) % 4, sign = byte(gen) % 2;
        const auto d = static_cast<std::uint16_t>((e == 0 ? 0 : (e + 1) << 10) | mant_hi << 2 | mant_lo | sign << 15);
        blk[0] = static_cast<std::byte>(d & 0xFF);
        blk[1] = static_cast<std::byte>(d >> 8);
      }
      for (std::int64_t m = 1; m <= 8; ++m) {
        const auto x = activations_for(m, k, static_cast<std::uint32_t>(gen()));
        auto acts = allocate_aligned<std::byte>(q8_0::activation_bytes(m, k));
        q8_0::prepare_activations(x.data(), k, m, k, acts.get());
        // exact value and magnitude, from the same integers and float scales
        std::vector<double> exact(static_cast<std::size_t>(m * n)), mag(exact.size());
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const std::byte* blk = w + j * rb + b * 34;
              const float s = static_cast<float>(half_value(block_d(blk))) * kern::activations::scale(acts.get(), k, i)[b * 8];
              std::int64_t sum = 0, asum = 0;
              for (int t = 0; t < 32; ++t) {
                const int p = block_q(blk, t) * kern::activations::q(acts.get(), k, i)[b * 32 + t];
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

TEST_CASE("q8_0 paths are exact on integer data, -128 weights included", "[quant][q8_0]") {
  // d_w = 1 and activations with amax 127 (d_x = 1, q = x): every product and sum is an integer
  constexpr std::int64_t k = 96, n = 4, m = 8, rb = 3 * 34;
  std::vector<std::byte> w(n * rb);
  std::int8_t qs[32];
  for (std::int64_t j = 0; j < n; ++j)
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 32; ++t)
        qs[t] = static_cast<std::int8_t>(j == 0 ? -128 : j == 1 ? (t % 2 ? -128 : 127) : j == 2 ? 127 : (t * 37 + b) % 256 - 128);
      put_block(w.data() + j * rb + b * 34, 0x3C00, qs);
    }
  std::vector<float> x(m * k);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t t = 0; t < k; ++t)
      x[static_cast<std::size_t>(i * k + t)] = t % 32 == 0 ? (i % 2 ? -127.0f : 127.0f) : static_cast<float>((t * 53 + i * 11) % 255 - 127);
  auto acts = allocate_aligned<std::byte>(q8_0::activation_bytes(m, k));
  q8_0::prepare_activations(x.data(), k, m, k, acts.get());
  for (const auto& [name, fn] : compiled_paths()) {
    std::vector<float> y(m * n);
    fn(acts.get(), m, k, w.data(), rb, n, y.data(), n);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (std::int64_t t = 0; t < k; ++t)
          want += std::int64_t{block_q(w.data() + j * rb + t / 32 * 34, static_cast<int>(t % 32))} *
                  static_cast<std::int64_t>(x[static_cast<std::size_t>(i * k + t)]);
        INFO("path " << name << " i=" << i << " j=" << j);
        REQUIRE(y[static_cast<std::size_t>(i * n + j)] == static_cast<float>(want));
      }
  }
}

TEST_CASE("ops::linear with q8_0 weights: fused for <= 8 rows (int8 activations), dequantized tiles beyond",
          "[quant][q8_0]") {
  test::thread_guard guard;
  std::uint32_t seed = 40;
  for (const std::int64_t k : {32, 96, 768}) {
    for (const std::int64_t n : {1, 17, 1000}) {  // 1000 columns: several column tiles
      const auto wf = test::random_tensor(shape{n, k}, seed++);
      const auto wq = quant::matrix<quant::int8_activations<q8_0>>::quantize(wf);  // the fused product on
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
          INFO("k=" << k << " n=" << n << " m=" << m << " bias=" << with_bias);
          REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
          if (m <= q8_0::max_fused_rows) {
            // the fused path: exactly q8_0::fused_product (+ bias), and near the float product
            auto acts = allocate_aligned<std::byte>(q8_0::activation_bytes(m, k));
            q8_0::prepare_activations(x.data(), k, m, k, acts.get());
            tensor<float> yf(shape{m, n});
            q8_0::fused_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                const float want = with_bias ? yf(i, j) + bias(j) : yf(i, j);
                REQUIRE(std::bit_cast<std::uint32_t>(y1(i, j)) == std::bit_cast<std::uint32_t>(want));
                double qerr = 0, mag = with_bias ? std::fabs(bias(j)) : 0.0;
                for (std::int64_t bb = 0; bb < k / 32; ++bb) {
                  double amax = 0, wsum = 0;
                  for (int t = 0; t < 32; ++t) {
                    amax = std::max(amax, std::fabs(static_cast<double>(x(i, bb * 32 + t))));
                    wsum += std::fabs(static_cast<double>(wd(j, bb * 32 + t)));
                    mag += std::fabs(static_cast<double>(x(i, bb * 32 + t)) * wd(j, bb * 32 + t));
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
            // the tiles path: dequantize, then the float product
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

TEST_CASE("q8_0 matrices need whole blocks; the registry knows q8_0", "[quant][q8_0]") {
  for (const std::int64_t cols : {1, 31, 33, 48, 100}) {
    const auto msg = test::thrown_message<shape_error>([&] { quant::matrix<q8_0>(2, cols); });
    INFO(msg);
    CHECK(msg.find("q8_0") != std::string::npos);
    CHECK(msg.find(std::to_string(cols)) != std::string::npos);
  }
  CHECK_THROWS_AS(quant::matrix<q8_0>::quantize(test::random_tensor(shape{2, 40}, 1)), shape_error);
  const quant::matrix<q8_0> ok(3, 64);
  CHECK(ok.row_bytes() == 68);
  CHECK(ok.size_bytes() == 204);

  std::string seen;
  double bits = 0;
  quant::visit_format("q8_0", [&](auto f) {
    using F = decltype(f);
    seen = F::name;
    bits = F::bits_per_weight;
    CHECK((std::is_same_v<F, q8_0>));
  });
  CHECK(seen == "q8_0");
  CHECK(bits == 8.5);
  CHECK(quant::is_known_format("q8_0"));
}
