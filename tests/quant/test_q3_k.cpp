// quant::q3_k against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q3_K / quantize_row_q3_K_ref (with make_q3_quants; re-implemented here
// independently as ggml's code is written, fp16 rounding included, evaluated as ISO C: every
// product stored to a volatile float before it is added), both against the reference fixture
// (tests/data/ggml_lowbit_quants.safetensors: ggml's C functions, written by
// tools/make_lowbit_fixtures.py), every compiled float-product path against the scalar reference,
// every compiled fused int8 path (ggml's Q8_K activations) against the scalar one and the exact
// value, ops::linear (float and fused), a GGUF round trip, and bad input. The shared checks are in superblock_checks.hpp.
// Set TFORMER_LOWBIT_REPORT to print the measured worst cases.
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q3_k.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "superblock_checks.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q3_k_kernels;
namespace ggml = tformer::test::ggml;
namespace sb = tformer::test::superblock;
using quant::q3_k;

namespace {

constexpr std::int64_t bb = 110;  // bytes per block
constexpr int d_at = 108;         // offset of d

/// The parts of a block, as ggml's struct names them.
struct view {
  std::byte* p;
  std::uint8_t* hmask() const { return reinterpret_cast<std::uint8_t*>(p); }
  std::uint8_t* qs() const { return reinterpret_cast<std::uint8_t*>(p + 32); }
  std::uint8_t* scales() const { return reinterpret_cast<std::uint8_t*>(p + 96); }
  void set_d(std::uint16_t h) const { ggml::put_u16(p + d_at, h); }
  float d() const { return static_cast<float>(ggml::half_value(ggml::u16_at(p + d_at))); }
};

/// The 16 6-bit scales (0 .. 63) of a block, unpacked as ggml's dequantize_row_q3_K does: through
/// four uint32 words and the kmasks.
void ggml_scales(const view& v, std::int8_t* scales) {
  const std::uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  std::uint32_t aux[4];
  std::memcpy(aux, v.scales(), 12);  // (a little-endian host)
  const std::uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  std::memcpy(scales, aux, 16);
}

/// ggml's dequantize_row_q3_K, written out as in ggml-quants.c.
void ggml_dequantize_row_q3_K(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const view v{const_cast<std::byte*>(x + i * bb)};
    const float d_all = v.d();
    const std::uint8_t* q = v.qs();
    const std::uint8_t* hm = v.hmask();
    std::uint8_t m = 1;
    std::int8_t scales[16];
    ggml_scales(v, scales);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<std::int8_t>((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
        dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<std::int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
        shift += 2;
        m = static_cast<std::uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

using ggml::ggml_nearest_int;

/// A product rounded to float before it is used (ISO C evaluation of ggml's expressions).
float r(float v) {
  volatile float t = v;
  return t;
}

/// ggml's make_q3_quants, written out as in ggml-quants.c.
float ggml_make_q3_quants(int n, int nmax, const float* x, std::int8_t* L, bool do_rmse) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  if (do_rmse) {
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = ggml_nearest_int(r(iscale * x[i]));
      l = std::max(-nmax, std::min(nmax - 1, l));
      L[i] = static_cast<std::int8_t>(l);
      const float w = x[i] * x[i];
      sumlx += r(r(w * x[i]) * static_cast<float>(l));
      suml2 += r(r(w * static_cast<float>(l)) * static_cast<float>(l));
    }
    for (int itry = 0; itry < 5; ++itry) {
      int n_changed = 0;
      for (int i = 0; i < n; ++i) {
        const float w = x[i] * x[i];
        float slx = sumlx - r(r(w * x[i]) * static_cast<float>(L[i]));
        if (slx > 0) {
          float sl2 = suml2 - r(r(w * static_cast<float>(L[i])) * static_cast<float>(L[i]));
          int new_l = ggml_nearest_int(r(r(x[i] * sl2) / slx));
          new_l = std::max(-nmax, std::min(nmax - 1, new_l));
          if (new_l != L[i]) {
            slx += r(r(w * x[i]) * static_cast<float>(new_l));
            sl2 += r(r(w * static_cast<float>(new_l)) * static_cast<float>(new_l));
            if (sl2 > 0 && r(r(slx * slx) * suml2) > r(r(sumlx * sumlx) * sl2)) {
              L[i] = static_cast<std::int8_t>(new_l);
              sumlx = slx;
              suml2 = sl2;
              ++n_changed;
            }
          }
        }
      }
      if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
  }
  for (int i = 0; i < n; ++i) {
    int l = ggml_nearest_int(r(iscale * x[i]));
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<std::int8_t>(l + nmax);
  }
  return 1 / iscale;
}

/// ggml's quantize_row_q3_K_ref, written out as in ggml-quants.c.
void ggml_quantize_row_q3_K_ref(const float* x, std::byte* out, std::int64_t k) {
  std::int8_t L[256];
  float scales[16];
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const view y{out + i * bb};
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = ggml_make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(y.scales(), 0, 12);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        auto l = static_cast<std::int8_t>(ggml_nearest_int(r(iscale * scales[j])));
        l = static_cast<std::int8_t>(std::max<int>(-32, std::min<int>(31, l)) + 32);
        if (j < 8) y.scales()[j] = static_cast<std::uint8_t>(l & 0xF);
        else y.scales()[j - 8] = static_cast<std::uint8_t>(y.scales()[j - 8] | ((l & 0xF) << 4));
        l = static_cast<std::int8_t>(l >> 4);
        y.scales()[j % 4 + 8] = static_cast<std::uint8_t>(y.scales()[j % 4 + 8] | (l << (2 * (j / 4))));
      }
      y.set_d(ggml::half_bits_ref(1 / iscale));
    } else {
      y.set_d(ggml::half_bits_ref(0.f));
    }
    for (int j = 0; j < 16; ++j) {
      auto sc = static_cast<std::int8_t>(j < 8 ? y.scales()[j] & 0xF : y.scales()[j - 8] >> 4);
      sc = static_cast<std::int8_t>((sc | (((y.scales()[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
      const float d = y.d() * static_cast<float>(sc);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = ggml_nearest_int(x[16 * j + ii] / d);
        l = std::max(-4, std::min(3, l));
        L[16 * j + ii] = static_cast<std::int8_t>(l + 4);
      }
    }
    std::memset(y.hmask(), 0, 32);
    int m = 0;
    std::uint8_t hm = 1;
    for (int j = 0; j < 256; ++j) {
      if (L[j] > 3) {
        y.hmask()[m] = static_cast<std::uint8_t>(y.hmask()[m] | hm);
        L[j] = static_cast<std::int8_t>(L[j] - 4);
      }
      if (++m == 32) {
        m = 0;
        hm = static_cast<std::uint8_t>(hm << 1);
      }
    }
    for (int j = 0; j < 256; j += 128)
      for (int l = 0; l < 32; ++l)
        y.qs()[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    x += 256;
  }
}

/// The code (-4 .. 3) of weight t of a block.
int block_code(const std::byte* p, int t) {
  const int low = (std::to_integer<int>(p[32 + 32 * (t / 128) + t % 32]) >> (2 * ((t % 128) / 32))) & 3;
  const int high = (std::to_integer<int>(p[t % 32]) >> (t / 32)) & 1;
  return low - (high ? 0 : 4);
}


/// The block's integers for the fused product: d (sc - 32) code per group of 16.
sb::int_block decode(const std::byte* p) {
  sb::int_block w;
  const view v{const_cast<std::byte*>(p)};
  w.d = v.d();
  std::int8_t sc[16];
  ggml_scales(v, sc);
  for (int g = 0; g < 16; ++g) w.s[g] = sc[g] - 32;
  for (int t = 0; t < 256; ++t) w.q[t] = block_code(p, t);
  return w;
}

}  // namespace

TEST_CASE("q3_k is a float-product weight format with ggml's block geometry", "[quant][q3_k]") {
  CHECK(std::string(q3_k::name) == "q3_k");
  CHECK(q3_k::ggml_type == 11u);  // GGML_TYPE_Q3_K
  sb::check_geometry<q3_k>(110, 3.4375);
}

TEST_CASE("q3_k dequantizes bit-exactly as ggml: d (sc - 32) code, every code, scale and d", "[quant][q3_k]") {
  // every finite d (a sample in the unoptimized build), each with random code, high-bit and scale
  // bytes (every 6-bit scale occurs, checked below)
  const auto ds = sb::finite_halves();
  const std::size_t step = test::slow_build ? 31 : 1;
  std::vector<std::byte> buf(bb + 1);  // at an odd address: blocks are unaligned
  const view v{buf.data() + 1};
  std::vector<float> got(256), want(256);
  sb::failures bad;
  std::vector<int> seen_sc(64, 0);
  std::mt19937 gen(5);
  for (std::size_t i = 0; i < ds.size(); i += step) {
    for (int t = 0; t < 108; ++t) v.p[t] = static_cast<std::byte>(gen() >> 24);
    v.set_d(ds[i]);
    int sc[16];
    kern::sub_scales(v.p, sc);
    for (const int s : sc) ++seen_sc[static_cast<std::size_t>(s + 32)];
    q3_k::dequantize_row(v.p, got.data(), 256);
    ggml_dequantize_row_q3_K(v.p, want.data(), 256);
    for (int t = 0; t < 256; ++t)
      if (sb::bits(got[static_cast<std::size_t>(t)]) != sb::bits(want[static_cast<std::size_t>(t)]))
        bad.add([&](auto& s) { s << "d bits " << ds[i] << " weight " << t << ": " << got[static_cast<std::size_t>(t)] << " vs " << want[static_cast<std::size_t>(t)]; });
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  for (int s = 0; s < 64; ++s) CHECK(seen_sc[static_cast<std::size_t>(s)] > 0);
  // the layout, by hand: sub-block 13 (weights 208 ..) takes scales[5] >> 4 and bits 6, 7 of
  // scales[9]; weight 209's code: low bits 2 of qs[32 + 17] >> 4 (j = 2), high bit 6 of hmask[17]
  std::memset(v.p, 0, bb);
  v.set_d(0x3C00);           // d = 1
  v.scales()[5] = 0x90;      // sc_13 low 9
  v.scales()[9] = 0xC0;      // sc_13 high 3: 57 - 32 = 25
  v.qs()[32 + 17] = 0x20;    // low 2
  v.hmask()[17] = 0x40;      // high bit set: code 2
  q3_k::dequantize_row(v.p, got.data(), 256);
  CHECK(got[209] == 25.0f * 2.0f);
  CHECK(got[208] == 25.0f * -4.0f);
  CHECK(got[0] == -32.0f * -4.0f);
}

TEST_CASE("q3_k quantizes bit-exactly as ggml's quantize_row_q3_K_ref", "[quant][q3_k]") {
  constexpr std::int64_t k = 256 * 8;
  std::mt19937 gen(11);
  double worst_rel = 0;
  for (const float scale : {1e-7f, 3e-4f, 1.0f, 37.0f, 1e4f, 6e4f}) {
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;  // scattered zeros
    std::fill(x.begin() + 256, x.begin() + 512, 0.0f);                              // block 1: all zero
    x[512 + 77] = -std::min(300.0f * scale, 6e4f);                                   // block 2: one outlier
    std::fill(x.begin() + 768 + 32, x.begin() + 768 + 48, 0.0f);                    // block 3: a zero sub-block,
    for (int t = 64; t < 80; ++t) x[static_cast<std::size_t>(768 + t)] *= 1e-18f;  // one below GROUP_MAX_EPS,
    for (int t = 96; t < 112; ++t) x[static_cast<std::size_t>(768 + t)] *= 1e-3f;  // a quiet one
    for (int t = 0; t < 256; ++t)  // block 4: the codes' own grid, halves between them
      x[static_cast<std::size_t>(1024 + t)] = 0.01f * scale * static_cast<float>(t % 8 - 4) * (t % 3 == 0 ? 1.125f : 1.0f);
    for (int t = 0; t < 256; ++t) x[static_cast<std::size_t>(1280 + t)] = scale * (t == 255 ? -1.0f : 0.0f);  // block 5: one nonzero

    std::vector<std::byte> got(static_cast<std::size_t>(k / 256 * bb)), want(got.size());
    q3_k::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q3_K_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    sb::require_same_blocks<q3_k>(got, want);

    // the all-zero block: d = 0, every scale byte 0, every code -4 (L = 0)
    const std::byte* b1 = got.data() + bb;
    CHECK(ggml::u16_at(b1 + d_at) == 0x0000);
    for (int t = 0; t < 108; ++t) REQUIRE(b1[t] == std::byte{0});
    // one nonzero: it sets the scale; its code is the largest magnitude, -4
    CHECK(block_code(got.data() + 5 * bb, 255) == -4);

    // round trip on the random blocks: the relative RMS error per block
    sb::check_block_rms<q3_k>(x, got, scale, 0.25, worst_rel);
  }
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q3_k round trip: worst block rms(x - w) / rms(x) = %.4f\n", worst_rel);
}

TEST_CASE("q3_k rounds as ggml's nearest_int, halves to even, wrapped bits beyond 2^22", "[quant][q3_k]") {
  using quant::detail::ggml_rounding::nearest_int;
  sb::failures bad;
  const auto check = [&](float v) {
    if (nearest_int(v) != ggml_nearest_int(v)) bad.add([&](auto& s) { s << "v = " << v << ": " << nearest_int(v) << " vs " << ggml_nearest_int(v); });
  };
  for (const float v : test::random_floats(100000, -40.0f, 40.0f, 3)) check(v);
  for (int n = -20; n <= 20; ++n) {  // around every half-integer
    float p = static_cast<float>(n) + 0.5f;
    for (int s = 0; s < 50; ++s) p = std::nextafter(p, -1e9f);
    for (int s = 0; s < 101; ++s, p = std::nextafter(p, 1e9f)) check(p);
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  // a product that rounds to a half-integer in float while the exact one lies above it: ggml rounds
  // the float (2.5 -> 2); forming the product exactly (in double, or fused) would give 3
  int found = 0, wrong = 0;
  for (const float a : test::random_floats(20000, 1.0f, 2.0f, 4)) {
    const volatile float vb = 2.5f / a;
    const float b = vb;
    if (static_cast<double>(a) * b <= 2.5 || a * b != 2.5f) continue;
    ++found;
    wrong += nearest_int(a * b) != 2 ? 1 : 0;
  }
  CHECK(found > 100);
  CHECK(wrong == 0);
  for (const float v : {4194303.0f, 4194304.0f, -4194305.0f, 1e7f, -3e9f, 1e30f, 1e-30f, -0.0f})
    CHECK(nearest_int(v) == ggml_nearest_int(v));
}

TEST_CASE("q3_k equals ggml's C reference on the fixture, byte for byte", "[quant][q3_k]") {
  sb::check_fixture<q3_k>(sb::lowbit_fixture(), "q3_k");
}

TEST_CASE("every compiled q3_k float-activation path equals the dequantized product", "[quant][q3_k]") {
  const double worst = sb::check_float_paths<q3_k, kern::float_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at}); });
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q3_k float paths: max |y - exact| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("every compiled q3_k fused int8 path gives the scalar reference's bits, near the exact value", "[quant][q3_k]") {
  STATIC_REQUIRE(quant::fused_format<q3_k>);
  CHECK(q3_k::max_fused_rows == 8);
  const double worst = sb::check_fused_paths<q3_k, kern::fused_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at}); }, decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q3_k fused scalar: max |y - exact| / M = %.3g\n", worst);
}

TEST_CASE("ops::linear with int8_activations<q3_k>: ggml's Q8_K activations and the fused product", "[quant][q3_k]") {
  STATIC_REQUIRE(quant::uses_fused_product<quant::int8_activations<q3_k>>);
  const double worst = sb::check_fused_linear<q3_k>(decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q3_k fused linear: max |fused - float| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("ops::linear with q3_k weights: float_product for few rows, tiles beyond", "[quant][q3_k]") {
  const double worst = sb::check_linear<q3_k>([](tensor<float>&) {});
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q3_k linear: max err / sum|xw| = %.3g\n", worst);
}

TEST_CASE("q3_k goes through a GGUF file as type Q3_K", "[quant][q3_k][gguf]") {
  sb::check_gguf_round_trip<q3_k>("Q3_K");
}

TEST_CASE("q3_k matrices need whole blocks; NaN scales stay NaN; the registry knows q3_k", "[quant][q3_k]") {
  sb::check_whole_blocks_and_registry<q3_k>();
  sb::check_nan_scale<q3_k>([](std::byte* blk) { ggml::put_u16(blk + d_at, 0x7E00); });
}
