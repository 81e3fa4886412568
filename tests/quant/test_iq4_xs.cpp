// quant::iq4_xs against ggml's definitions: dequantization and quantization bit-exact with ggml's
// dequantize_row_iq4_xs / quantize_row_iq4_xs_ref (quantize_row_iq4_nl_impl with super-blocks of
// 256, sub-blocks of 32, ntry = 7 and no importance weights; re-implemented here independently as
// ggml's code is written, fp16 rounding included, evaluated as ISO C: every product stored to a
// volatile float before it is added), both against the reference fixture
// (tests/data/ggml_lowbit_quants.safetensors: ggml's C functions, written by
// tools/make_lowbit_fixtures.py), every compiled float-product path against the scalar reference,
// ops::linear, a GGUF round trip, and bad input. The shared checks are in superblock_checks.hpp.
// Set TFORMER_LOWBIT_REPORT to print the measured worst cases.
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/iq4_xs.hpp>
#include <tformer/quant/matrix.hpp>

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
namespace kern = tformer::quant::detail::iq4_xs_kernels;
namespace ggml = tformer::test::ggml;
namespace sb = tformer::test::superblock;
using quant::iq4_xs;

namespace {

constexpr std::int64_t bb = 136;  // bytes per block
constexpr std::int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// The parts of a block, as ggml's struct names them.
struct view {
  std::byte* p;
  void set_d(std::uint16_t h) const { ggml::put_u16(p, h); }
  std::uint16_t scales_h() const { return ggml::u16_at(p + 2); }
  std::uint8_t* scales_l() const { return reinterpret_cast<std::uint8_t*>(p + 4); }
  std::uint8_t* qs() const { return reinterpret_cast<std::uint8_t*>(p + 8); }
};

/// ggml's dequantize_row_iq4_xs, written out as in ggml-quants.c.
void ggml_dequantize_row_iq4_xs(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const view v{const_cast<std::byte*>(x + i * bb)};
    const std::uint8_t* qs = v.qs();
    const auto d = static_cast<float>(ggml::half_value(ggml::u16_at(v.p)));
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((v.scales_l()[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((v.scales_h() >> 2 * ib) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j + 0] = dl * static_cast<float>(kvalues_iq4nl[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kvalues_iq4nl[qs[j] >> 4]);
      }
      y += 32;
      qs += 16;
    }
  }
}

using ggml::ggml_best_index_int8;
using ggml::ggml_nearest_int;

/// ggml's quantize_row_iq4_nl_impl for super_block_size 256, block_size 32, no quant_weights,
/// written out as in ggml-quants.c, every product stored to a volatile float (ISO C evaluation).
void ggml_quantize_iq4_xs_block(const float* x, std::byte* out, const std::int8_t* values, int ntry) {
  constexpr int super_block_size = 256, block_size = 32;
  const view y{out};
  float scales[8], weight[32];
  std::uint8_t L[256];
  std::memset(y.qs(), 0, super_block_size / 2);
  y.set_d(ggml::half_bits_ref(0.f));
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < super_block_size / block_size; ++ib) {
    const float* xb = x + ib * block_size;
    std::uint8_t* Lb = L + ib * block_size;
    for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < block_size; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < 1e-15f) {
      scales[ib] = 0;
      continue;
    }
    float d = ntry > 0 ? -max / values[0] : max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < block_size; ++j) {
      volatile float al = id * xb[j];
      const int l = ggml_best_index_int8(16, values, al);
      Lb[j] = static_cast<std::uint8_t>(l);
      const float q = values[l];
      const float w = weight[j];
      volatile float a = w * q * xb[j], b = w * q * q;
      sumqx += a;
      sumq2 += b;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < block_size; ++j) {
        volatile float al = id * xb[j];
        const int l = ggml_best_index_int8(16, values, al);
        const float q = values[l];
        const float w = weight[j];
        volatile float a = w * q * xb[j], b = w * q * q;
        sumqx += a;
        sumq2 += b;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }
  std::uint16_t scales_h = 0;
  const float d = -max_scale / 32;
  y.set_d(ggml::half_bits_ref(d));
  const float id = d != 0.0f ? 1 / d : 0.f;
  for (int ib = 0; ib < super_block_size / block_size; ++ib) {
    int l = ggml_nearest_int(id * scales[ib]);
    l = std::max(-32, std::min(31, l));
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0.0f ? 1 / dl : 0.f;
    std::uint8_t* Lb = L + ib * block_size;
    const float* xb = x + ib * block_size;
    for (int j = 0; j < block_size; ++j) {
      volatile float a = idl * xb[j];
      Lb[j] = static_cast<std::uint8_t>(ggml_best_index_int8(16, values, a));
    }
    l += 32;
    const auto l_l = static_cast<std::uint8_t>(l & 0xf);
    const auto l_h = static_cast<std::uint8_t>(l >> 4);
    if (ib % 2 == 0) y.scales_l()[ib / 2] = l_l;
    else y.scales_l()[ib / 2] = static_cast<std::uint8_t>(y.scales_l()[ib / 2] | (l_l << 4));
    scales_h = static_cast<std::uint16_t>(scales_h | (l_h << 2 * (ib % 8)));
  }
  ggml::put_u16(y.p + 2, scales_h);
  for (int i = 0; i < super_block_size / 32; ++i)
    for (int j = 0; j < 16; ++j) y.qs()[16 * i + j] = static_cast<std::uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

/// ggml's quantize_row_iq4_xs_ref: quantize_iq4_xs(x, y, 1, k, NULL).
void ggml_quantize_row_iq4_xs_ref(const float* x, std::byte* y, std::int64_t k) {
  for (std::int64_t ibl = 0; ibl < k / 256; ++ibl) ggml_quantize_iq4_xs_block(x + 256 * ibl, y + bb * ibl, kvalues_iq4nl, 7);
}

/// Index t (< 256) of a block, and its sub-block scale ls.
int block_index(const std::byte* p, int t) {
  const int byte = std::to_integer<int>(p[8 + 16 * (t / 32) + t % 16]);
  return t % 32 < 16 ? byte & 15 : byte >> 4;
}

}  // namespace

TEST_CASE("iq4_xs is a float-product weight format with ggml's block geometry", "[quant][iq4_xs]") {
  CHECK(std::string(iq4_xs::name) == "iq4_xs");
  CHECK(iq4_xs::ggml_type == 23u);  // GGML_TYPE_IQ4_XS
  sb::check_geometry<iq4_xs>(136, 4.25);
  for (int i = 0; i < 16; ++i) CHECK(kern::kvalues[i] == kvalues_iq4nl[i]);
}

TEST_CASE("iq4_xs dequantizes bit-exactly as ggml: d (ls - 32) kvalues[q], every index, scale and d", "[quant][iq4_xs]") {
  // every finite d (a sample in the unoptimized build); the sub-block scales and the index bytes
  // shift with d, so every 6-bit scale and every index byte occurs in every position
  const auto ds = sb::finite_halves();
  const std::size_t step = test::slow_build ? 31 : 1;
  std::vector<std::byte> buf(bb + 1);  // at an odd address: blocks are unaligned
  const view v{buf.data() + 1};
  std::vector<float> got(256), want(256);
  sb::failures bad;
  std::vector<int> seen_ls(64, 0);
  for (std::size_t i = 0; i < ds.size(); i += step) {
    for (int t = 0; t < 128; ++t) v.qs()[t] = static_cast<std::uint8_t>((t * 37 + ds[i]) & 255);
    for (int t = 0; t < 4; ++t) v.scales_l()[t] = static_cast<std::uint8_t>((t * 91 + ds[i] * 7) & 255);
    ggml::put_u16(v.p + 2, static_cast<std::uint16_t>(ds[i] * 40503u));
    v.set_d(ds[i]);
    for (int ib = 0; ib < 8; ++ib) ++seen_ls[static_cast<std::size_t>(kern::sub_scale(v.p, ib))];
    iq4_xs::dequantize_row(v.p, got.data(), 256);
    ggml_dequantize_row_iq4_xs(v.p, want.data(), 256);
    for (int t = 0; t < 256; ++t)
      if (sb::bits(got[static_cast<std::size_t>(t)]) != sb::bits(want[static_cast<std::size_t>(t)]))
        bad.add([&](auto& s) { s << "d bits " << ds[i] << " weight " << t << ": " << got[static_cast<std::size_t>(t)] << " vs " << want[static_cast<std::size_t>(t)]; });
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  for (int ls = 0; ls < 64; ++ls) CHECK(seen_ls[static_cast<std::size_t>(ls)] > 0);
  // the layout: sub-block 5's scale from scales_l[2] >> 4 and scales_h bits 10, 11; its index 3 low
  std::memset(v.p, 0, bb);
  v.set_d(0x3C00);                                      // d = 1
  v.scales_l()[2] = 0x70;                               // ls_5 low bits 7
  ggml::put_u16(v.p + 2, 0x0800);                       // ls_5 high bits 2: ls = 39, dl = 7
  v.qs()[16 * 5 + 3] = 0xF2;                            // weight 163: kvalues[2] = -83, 179: kvalues[15] = 113
  iq4_xs::dequantize_row(v.p, got.data(), 256);
  CHECK(got[163] == 7.0f * -83.0f);
  CHECK(got[179] == 7.0f * 113.0f);
  CHECK(got[160] == 7.0f * -127.0f);
  CHECK(got[0] == -32.0f * -127.0f);  // ls = 0: dl = -32
}

TEST_CASE("iq4_xs quantizes bit-exactly as ggml's quantize_row_iq4_xs_ref", "[quant][iq4_xs]") {
  constexpr std::int64_t k = 256 * 8;
  std::mt19937 gen(11);
  double worst_rel = 0;
  for (const float scale : {1e-7f, 3e-4f, 1.0f, 37.0f, 1e4f, 6e4f}) {
    auto x = test::random_floats(k, -scale, scale, static_cast<std::uint32_t>(gen()));
    for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;  // scattered zeros
    std::fill(x.begin() + 256, x.begin() + 512, 0.0f);                              // block 1: all zero
    x[512 + 77] = std::min(300.0f * scale, 6e4f);                                    // block 2: one outlier
    std::fill(x.begin() + 768 + 32, x.begin() + 768 + 64, 0.0f);                    // block 3: a zero sub-block,
    for (int t = 64; t < 96; ++t) x[static_cast<std::size_t>(768 + t)] *= 1e-18f;  // one below GROUP_MAX_EPS,
    for (int t = 96; t < 128; ++t) x[static_cast<std::size_t>(768 + t)] *= 1e-3f;  // a quiet one
    for (int t = 0; t < 256; ++t)  // block 4: the levels themselves and their midpoints
      x[static_cast<std::size_t>(1024 + t)] =
          0.01f * scale * (t % 31 < 16 ? kvalues_iq4nl[t % 31] : 0.5f * static_cast<float>(kvalues_iq4nl[t % 31 - 16] + kvalues_iq4nl[t % 31 - 15]));
    for (int t = 0; t < 256; ++t) x[static_cast<std::size_t>(1280 + t)] = scale * (t == 255 ? -1.0f : 0.0f);  // block 5: one nonzero

    std::vector<std::byte> got(static_cast<std::size_t>(k / 256 * bb)), want(got.size());
    iq4_xs::quantize_row(x.data(), got.data(), k);
    ggml_quantize_row_iq4_xs_ref(x.data(), want.data(), k);
    INFO("scale " << scale);
    sb::require_same_blocks<iq4_xs>(got, want);

    // the all-zero block: d = -0 (0x8000), every scale 32 (l = 0), every index 8 (level 1, the
    // nearest to 0)
    const std::byte* b1 = got.data() + bb;
    CHECK(ggml::u16_at(b1) == 0x8000);
    CHECK(ggml::u16_at(b1 + 2) == 0xAAAA);
    for (int t = 4; t < 8; ++t) CHECK(b1[t] == std::byte{0});
    for (int t = 8; t < bb; ++t) REQUIRE(b1[t] == std::byte{0x88});
    // the outlier takes an end level (113 under a positive sub-block scale, -127 under a negative one)
    const int outlier = block_index(got.data() + 2 * bb, 77);
    if (300.0f * scale <= 6e4f) CHECK((outlier == 0 || outlier == 15));

    // round trip on the random blocks: the relative RMS error per block
    sb::check_block_rms<iq4_xs>(x, got, scale, 0.15, worst_rel);
  }
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("iq4_xs round trip: worst block rms(x - w) / rms(x) = %.4f\n", worst_rel);
}

TEST_CASE("iq4_xs equals ggml's C reference on the fixture, byte for byte", "[quant][iq4_xs]") {
  sb::check_fixture<iq4_xs>(sb::lowbit_fixture(), "iq4_xs");
}

TEST_CASE("every compiled iq4_xs float-activation path equals the dequantized product", "[quant][iq4_xs]") {
  const double worst = sb::check_float_paths<iq4_xs, kern::float_dot>(
      [](std::mt19937& gen, std::byte* blk) { sb::random_block(gen, blk, bb, {0}); });
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("iq4_xs float paths: max |y - exact| / sum|xw| = %.3g\n", worst);
}

TEST_CASE("ops::linear with iq4_xs weights: float_product for few rows, tiles beyond", "[quant][iq4_xs]") {
  const double worst = sb::check_linear<iq4_xs>([](tensor<float>&) {});
  if (std::getenv("TFORMER_LOWBIT_REPORT")) std::printf("iq4_xs linear: max err / sum|xw| = %.3g\n", worst);
}

TEST_CASE("iq4_xs goes through a GGUF file as type IQ4_XS", "[quant][iq4_xs][gguf]") {
  sb::check_gguf_round_trip<iq4_xs>("IQ4_XS");
}

TEST_CASE("iq4_xs matrices need whole blocks; NaN scales stay NaN; the registry knows iq4_xs", "[quant][iq4_xs]") {
  sb::check_whole_blocks_and_registry<iq4_xs>();
  sb::check_nan_scale<iq4_xs>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
}
