// quant::q2_k against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_q2_K / quantize_row_q2_K_ref (with make_qkx2_quants; re-implemented here
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
#include <tformer/quant/q2_k.hpp>

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
namespace kern = tformer::quant::detail::q2_k_kernels;
namespace ggml = tformer::test::ggml;
namespace sb = tformer::test::superblock;
using quant::q2_k;

namespace {

constexpr std::int64_t bb = 84;  // bytes per block
constexpr int d_at = 80, dmin_at = 82;

/// The parts of a block, as ggml's struct names them.
struct view {
  std::byte* p;
  std::uint8_t* scales() const { return reinterpret_cast<std::uint8_t*>(p); }
  std::uint8_t* qs() const { return reinterpret_cast<std::uint8_t*>(p + 16); }
  float d() const { return static_cast<float>(ggml::half_value(ggml::u16_at(p + d_at))); }
  float dmin() const { return static_cast<float>(ggml::half_value(ggml::u16_at(p + dmin_at))); }
};

/// A product rounded to float before it is used (ISO C evaluation of ggml's expressions).
float r(float v) {
  volatile float t = v;
  return t;
}

/// ggml's dequantize_row_q2_K, written out as in ggml-quants.c (dl * q stored before - ml).
void ggml_dequantize_row_q2_K(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const view v{const_cast<std::byte*>(x + i * bb)};
    const float d = v.d(), min = v.dmin();
    const std::uint8_t* q = v.qs();
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        std::uint8_t sc = v.scales()[is++];
        float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = r(dl * static_cast<float>(static_cast<std::int8_t>((q[l] >> shift) & 3))) - ml;
        sc = v.scales()[is++];
        dl = d * static_cast<float>(sc & 0xF);
        ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = r(dl * static_cast<float>(static_cast<std::int8_t>((q[l + 16] >> shift) & 3))) - ml;
        shift += 2;
      }
      q += 32;
    }
  }
}

using ggml::ggml_nearest_int;

/// ggml's make_qkx2_quants, written out as in ggml-quants.c.
float ggml_make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                            std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = r(sum_w * x[0]);
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += r(w * x[i]);
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = ggml_nearest_int(r(iscale * (x[i] - min)));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = r(scale * static_cast<float>(L[i])) + min - x[i];
    diff = use_mad ? std::fabs(diff) : r(diff * diff);
    const float w = weights[i];
    best_error += r(w * diff);
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + r(rdelta * static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = ggml_nearest_int(r(iscale * (x[i] - min)));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += r(w * static_cast<float>(l));
      sum_l2 += r(r(w * static_cast<float>(l)) * static_cast<float>(l));
      sum_xl += r(r(w * static_cast<float>(l)) * x[i]);
    }
    const float D = r(sum_w * sum_l2) - r(sum_l * sum_l);
    if (D > 0) {
      float this_scale = (r(sum_w * sum_xl) - r(sum_x * sum_l)) / D;
      float this_min = (r(sum_l2 * sum_x) - r(sum_l * sum_xl)) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = r(this_scale * static_cast<float>(Laux[i])) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : r(diff * diff);
        const float w = weights[i];
        cur_error += r(w * diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// ggml's quantize_row_q2_K_ref, written out as in ggml-quants.c.
void ggml_quantize_row_q2_K_ref(const float* x, std::byte* out, std::int64_t k) {
  std::uint8_t L[256], Laux[16];
  float weights[16], mins[16], scales[16];
  const float q4scale = 15.f;
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const view y{out + i * bb};
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = ggml_make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) y.scales()[j] = static_cast<std::uint8_t>(ggml_nearest_int(r(iscale * scales[j])));
      ggml::put_u16(y.p + d_at, ggml::half_bits_ref(max_scale / q4scale));
    } else {
      for (int j = 0; j < 16; ++j) y.scales()[j] = 0;
      ggml::put_u16(y.p + d_at, ggml::half_bits_ref(0.f));
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) {
        const int l = ggml_nearest_int(r(iscale * mins[j]));
        y.scales()[j] = static_cast<std::uint8_t>(y.scales()[j] | (l << 4));
      }
      ggml::put_u16(y.p + dmin_at, ggml::half_bits_ref(max_min / q4scale));
    } else {
      ggml::put_u16(y.p + dmin_at, ggml::half_bits_ref(0.f));
    }
    for (int j = 0; j < 16; ++j) {
      const float d = y.d() * static_cast<float>(y.scales()[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = y.dmin() * static_cast<float>(y.scales()[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = ggml_nearest_int((x[16 * j + ii] + dm) / d);
        l = std::max(0, std::min(3, l));
        L[16 * j + ii] = static_cast<std::uint8_t>(l);
      }
    }
    for (int j = 0; j < 256; j += 128)
      for (int l = 0; l < 32; ++l)
        y.qs()[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    x += 256;
  }
}

/// The code (0 .. 3) of weight t of a block.
int block_code(const std::byte* p, int t) {
  return (std::to_integer<int>(p[16 + 32 * (t / 128) + t % 32]) >> (2 * ((t % 128) / 32))) & 3;
}


/// The block's integers for the fused product: d sc q - dmin m per group of 16.
sb::int_block decode(const std::byte* p) {
  sb::int_block w;
  const view v{const_cast<std::byte*>(p)};
  w.d = v.d();
  w.dmin = v.dmin();
  for (int g = 0; g < 16; ++g) {
    w.s[g] = v.scales()[g] & 0xF;
    w.m[g] = v.scales()[g] >> 4;
  }
  for (int t = 0; t < 256; ++t) w.q[t] = block_code(p, t);
  return w;
}

}  // namespace

TEST_CASE("q2_k is a float-product weight format with ggml's block geometry", "[quant][q2_k]") {
  CHECK(std::string(q2_k::name) == "q2_k");
  CHECK(q2_k::ggml_type == 10u);  // GGML_TYPE_Q2_K
  sb::check_geometry<q2_k>(84, 2.625);
}

TEST_CASE("q2_k dequantizes bit-exactly as ggml: d sc q - dmin m, every code, scale byte, d and dmin", "[quant][q2_k]") {
  // every finite d (a sample in the unoptimized build), each with a random dmin and random scale
  // and code bytes (every scale byte occurs, checked below)
  const auto ds = sb::finite_halves();
  const std::size_t step = test::slow_build ? 31 : 1;
  std::vector<std::byte> buf(bb + 1);  // at an odd address: blocks are unaligned
  const view v{buf.data() + 1};
  std::vector<float> got(256), want(256);
  sb::failures bad;
  std::vector<int> seen(256, 0);
  std::mt19937 gen(5);
  for (std::size_t i = 0; i < ds.size(); i += step) {
    for (int t = 0; t < 80; ++t) v.p[t] = static_cast<std::byte>(gen() >> 24);
    ggml::put_u16(v.p + d_at, ds[i]);
    ggml::put_u16(v.p + dmin_at, ds[(i * 7919 + 13) % ds.size()]);
    for (int j = 0; j < 16; ++j) ++seen[v.scales()[j]];
    q2_k::dequantize_row(v.p, got.data(), 256);
    ggml_dequantize_row_q2_K(v.p, want.data(), 256);
    for (int t = 0; t < 256; ++t)
      if (sb::bits(got[static_cast<std::size_t>(t)]) != sb::bits(want[static_cast<std::size_t>(t)]))
        bad.add([&](auto& s) { s << "d bits " << ds[i] << " weight " << t << ": " << got[static_cast<std::size_t>(t)] << " vs " << want[static_cast<std::size_t>(t)]; });
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  for (int s = 0; s < 256; ++s) CHECK(seen[static_cast<std::size_t>(s)] > 0);
  // the layout, by hand: sub-block 13 (weights 208 ..) has scales[13]; weight 209's code is bits
  // 4, 5 of qs[32 + 17]
  std::memset(v.p, 0, bb);
  ggml::put_u16(v.p + d_at, 0x3C00);     // d = 1
  ggml::put_u16(v.p + dmin_at, 0x3800);  // dmin = 0.5
  v.scales()[13] = 0x37;                 // scale 7, min 3: dl = 7, ml = 1.5
  v.qs()[32 + 17] = 0x20;                // code 2
  q2_k::dequantize_row(v.p, got.data(), 256);
  CHECK(got[209] == 7.0f * 2.0f - 1.5f);
  CHECK(got[208] == -1.5f);
  CHECK(got[0] == 0.0f);
}

TEST_CASE("q2_k quantizes bit-exactly as ggml's quantize_row_q2_K_ref", "[quant][q2_k]") {
  constexpr std::int64_t k = 256 * 8;
  std::mt19937 gen(11);
  double worst_rel = 0;
  for (const float scale : {1e-7f, 3e-4f, 1.0f, 37.0f, 1e4f, 6e4f}) {
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;  // scattered zeros
    std::fill(x.begin() + 256, x.begin() + 512, 0.0f);                              // block 1: all zero
    x[512 + 77] = -std::min(300.0f * scale, 6e4f);                                   // block 2: one outlier
    std::fill(x.begin() + 768 + 32, x.begin() + 768 + 48, 0.0f);                    // block 3: a zero sub-block,
    std::fill(x.begin() + 768 + 64, x.begin() + 768 + 80, 0.5f * scale);            // a constant one,
    for (int t = 96; t < 112; ++t) x[static_cast<std::size_t>(768 + t)] *= 1e-3f;  // a quiet one
    for (int t = 0; t < 256; ++t)  // block 4: all positive, off zero (the mins matter)
      x[static_cast<std::size_t>(1024 + t)] = std::fabs(x[static_cast<std::size_t>(1024 + t)]) + 2.0f * scale;
    for (int t = 0; t < 256; ++t) x[static_cast<std::size_t>(1280 + t)] = scale * (t == 255 ? -1.0f : 0.0f);  // block 5: one nonzero

    std::vector<std::byte> got(static_cast<std::size_t>(k / 256 * bb)), want(got.size());
    q2_k::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_q2_K_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    sb::require_same_blocks<q2_k>(got, want);

    // the all-zero block: every field 0
    const std::byte* b1 = got.data() + bb;
    for (int t = 0; t < bb; ++t) REQUIRE(b1[t] == std::byte{0});
    // one nonzero, negative: its sub-block's min is its magnitude, its code 0
    CHECK(block_code(got.data() + 5 * bb, 255) == 0);
    CHECK(std::to_integer<int>(got[5 * bb + 15]) >> 4 == 15);

    // round trip on the random blocks: the relative RMS error per block
    sb::check_block_rms<q2_k>(x, got, scale, 0.5, worst_rel);
  }
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q2_k round trip: worst block rms(x - w) / rms(x) = %.4f\n", worst_rel);
}

TEST_CASE("q2_k equals ggml's C reference on the fixture, byte for byte", "[quant][q2_k]") {
  sb::check_fixture<q2_k>(sb::lowbit_fixture(), "q2_k");
}

TEST_CASE("every compiled q2_k float-activation path equals the dequantized product", "[quant][q2_k]") {
  const double worst = sb::check_float_paths<q2_k, kern::float_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at, dmin_at}); });
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q2_k float paths: max |y - exact| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("every compiled q2_k fused int8 path gives the scalar reference's bits, near the exact value", "[quant][q2_k]") {
  STATIC_REQUIRE(quant::fused_format<q2_k>);
  CHECK(q2_k::max_fused_rows == 8);
  const double worst = sb::check_fused_paths<q2_k, kern::fused_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {d_at, dmin_at}); }, decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q2_k fused scalar: max |y - exact| / M = %.3g\n", worst);
}

TEST_CASE("ops::linear with int8_activations<q2_k>: ggml's Q8_K activations and the fused product", "[quant][q2_k]") {
  STATIC_REQUIRE(quant::uses_fused_product<quant::int8_activations<q2_k>>);
  const double worst = sb::check_fused_linear<q2_k>(decode);
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q2_k fused linear: max |fused - float| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("ops::linear with q2_k weights: float_product for few rows, tiles beyond", "[quant][q2_k]") {
  // every third weight row off-centre: the mins matter
  const double worst = sb::check_linear<q2_k>([](tensor<float>& wf) {
    for (std::int64_t j = 0; j < wf.shape()[0]; j += 3)
      for (std::int64_t t = 0; t < wf.shape()[1]; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
  });
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("q2_k linear: max err / sum|xw| = %.3g\n", worst);
}

TEST_CASE("q2_k goes through a GGUF file as type Q2_K", "[quant][q2_k][gguf]") {
  sb::check_gguf_round_trip<q2_k>("Q2_K");
}

TEST_CASE("q2_k matrices need whole blocks; NaN scales stay NaN; the registry knows q2_k", "[quant][q2_k]") {
  sb::check_whole_blocks_and_registry<q2_k>();
  // both scales NaN: dl q and ml are NaN even where the 4-bit scale or min is 0
  sb::check_nan_scale<q2_k>([](std::byte* blk) {
    ggml::put_u16(blk + d_at, 0x7E00);
    ggml::put_u16(blk + dmin_at, 0x7E00);
  });
}
