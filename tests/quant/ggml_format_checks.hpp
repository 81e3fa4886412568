// Checks shared by the tests of the 5-bit and non-linear ggml formats (test_q5_0, test_q5_1,
// test_iq4_nl) and of the formats with offsets (test_q4_1, test_q5_1), on top of
// ggml_test_support.hpp: the reference fixture's extra rows, NaN scales, and ops::linear with
// off-centre weights and the offsets' bound.
#pragma once

#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

namespace tformer::test::ggml {

/// @brief ggml's max of the block of 32 floats at x (quantize_row_q4_0_ref, quantize_row_q5_0_ref):
/// the x_j of largest magnitude, sign kept, the first one on ties.
inline float ggml_block_max(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float v = x[j];
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
  return max;
}

/// @brief ggml's MIN(top, (int8_t)(x0 + c)) where x0 is a float variable: volatile makes the
/// compiler round x0 to float before the add, as ISO C evaluates ggml's two statements (GCC would
/// otherwise contract the product and the add into one fma).
inline std::uint8_t ggml_clamped_int8(float product, float c, int top) {
  volatile float x0 = product;
  return static_cast<std::uint8_t>(std::min(top, static_cast<int>(static_cast<std::int8_t>(x0 + c))));
}

/// @brief F quantizes the fixture's rows input_name to the fixture's bytes (entry name) and
/// dequantizes those to its floats (name.dequantized), byte for byte.
template <class F>
void check_fixture_rows(const io::safetensors_file& f, const std::string& input_name, const std::string& name) {
  const auto x = f.load<float>(input_name);
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  const auto packed = f.load<std::uint8_t>(name);
  const auto deq = f.load<float>(name + ".dequantized");
  const std::int64_t rb = quant::row_bytes<F>(cols);
  REQUIRE(packed.shape() == shape{rows, rb});
  REQUIRE(deq.shape() == shape{rows, cols});
  std::vector<std::byte> mine(static_cast<std::size_t>(rb));
  std::vector<float> y(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    INFO(name << " row " << r);
    F::quantize_row(x.data() + r * cols, mine.data(), cols);
    REQUIRE(std::memcmp(mine.data(), packed.data() + r * rb, static_cast<std::size_t>(rb)) == 0);
    F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * rb), y.data(), cols);
    for (std::int64_t j = 0; j < cols; ++j)
      REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(deq(r, j)));
  }
}

/// @brief check_nan_scale_fused with 64 weights a row (two blocks of 32).
template <class F, class PutNan>
void check_nan_scale(PutNan put_nan) {
  check_nan_scale_fused<F>(put_nan, activations_for(1, 64, 5));
}

/// @brief ops::linear (check_linear) with weights in F, a format with an offset per block (q4_1,
/// q5_1: the binary16 scale d at byte 0, the offset m at byte 2) as it is or int8_activations of
/// it, every third weight row off-centre (the offsets matter). The fused product's bound: the
/// exact weights q d + m against the rounded w^, the activations' quantization, the roundings of
/// s_b and c_b and the 2 nb float terms, plus the float product's own sums. block_q(blk, t) is
/// the integer q_t (t < 32) of the block at blk.
template <class F, class BlockQ>
void check_offset_linear(report& measured, BlockQ block_q) {
  const auto off_centre = [](tensor<float>& wf) {
    for (std::int64_t j = 0; j < wf.shape()[0]; j += 3)
      for (std::int64_t t = 0; t < wf.shape()[1]; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
  };
  const auto fused_bound = [&](const tensor<float>& x, const quant::matrix<F>& wq, const tensor<float>& wd,
                               const std::byte* acts, std::int64_t k, std::int64_t i, std::int64_t j, double mag) {
    using quant::detail::q8_activations::activations;
    const std::int64_t nb = k / 32;
    double qerr = 0, terms = 0;
    for (std::int64_t bk = 0; bk < nb; ++bk) {
      const std::byte* blk = wq.row(j) + bk * F::block_bytes;
      const double dx = activations::scale(acts, k, i)[bk * 8];
      double amax = 0, wsum = 0;
      for (int t = 0; t < 32; ++t) {
        const double xt = x(i, bk * 32 + t), wt = wd(j, bk * 32 + t);
        const double qx = activations::q(acts, k, i)[bk * 32 + t];
        amax = std::max(amax, std::fabs(xt));
        wsum += std::fabs(wt);
        mag += std::fabs(xt * wt);
        terms += std::fabs(dx * qx) * (std::fabs(half_value(block_d(blk))) * block_q(blk, t) + std::fabs(half_value(u16_at(blk + 2))));
      }
      qerr += wsum * amax / 254 * (1 + 0x1p-15) * (1 + 0x1p-24) * (1 + 0x1p-24);
    }
    const double bound =
        qerr + 0x1p-24 * mag + (2.0 * static_cast<double>(nb) + 16) * 0x1p-24 * terms * 1.001 + 1e-5 * mag + 1e-30;
    return std::pair<double, double>{bound, mag};
  };
  check_linear<F>(measured, off_centre, fused_bound);
}

/// @brief The quantization test of a format with an offset per block (q4_1, q5_1: the binary16
/// scale d at byte 0, the offset m at byte 2, q_t in [0, top]): whole rows at one scale each
/// (fp16-subnormal d and m, small, unit, large) quantize to ggml_ref's bytes (ggml's
/// quantize_row_<fmt>_ref), the hand-checked blocks hold what they must, every weight comes back
/// within the round-trip bound at the top of the format's test (with top levels), and
/// quant::matrix<F>::quantize packs rows the same way. block_q(blk, t) is the integer q_t (t < 32)
/// of the block at blk.
template <class F, class Ref, class BlockQ>
void check_offset_quantization(report& measured, int top, Ref ggml_ref, BlockQ block_q) {
  constexpr std::int64_t k = 32 * 64, bb = F::block_bytes;
  const auto block_m = [](const std::byte* p) { return u16_at(p + 2); };
  const auto ftop = static_cast<float>(top);
  std::mt19937 gen(11);
  for (const float scale : {1e-7f, 3e-4f, 5e-3f, 1.0f, 37.0f, 1e4f, 3e4f}) {
    auto x = quantization_row(k, scale, static_cast<std::uint32_t>(gen()));  // zeros, blocks 2 and 4
    std::fill(x.begin() + 160, x.begin() + 192, 0.7f * scale);              // block 5: constant
    for (std::int64_t j = 192; j < 224; ++j) x[static_cast<std::size_t>(j)] = std::fabs(x[static_cast<std::size_t>(j)]) + scale;
    // block 10: min 0, max top: d = 1, id = 1, (x - min) * id + 0.5 exact: k + 0.5 -> k + 1
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(320 + t)] = t == 0 ? 0.0f : t == 1 ? ftop : static_cast<float>(t % top) + 0.5f;
    // block 11: min -1, max 2: d = 3 / top inexact, values next to halves
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(352 + t)] = -1.0f + (3.0f / ftop) * (static_cast<float>(t % top) + 0.5f);
    x[352] = -1.0f;
    x[353] = 2.0f;

    std::vector<std::byte> got(static_cast<std::size_t>(k / 32 * bb)), want(got.size());
    F::quantize_row(x.data(), got.data(), k);
    ggml_ref(x.data(), want.data(), k);
    INFO(F::name << " scale " << scale);
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
    for (int t = 2; t < 32; ++t) REQUIRE(block_q(got.data() + 10 * bb, t) == t % top + 1);
    CHECK(block_q(got.data() + 10 * bb, 1) == top);
    CHECK(block_m(got.data() + 11 * bb) == 0xBC00);  // m = -1

    // round trip within the bound at the top of the format's test
    check_roundtrip<F>(measured, x, got, [&](const float* xb, const std::byte* blk) {
      float min = xb[0], max = min;
      for (int t = 0; t < 32; ++t) {
        min = std::min(min, xb[t]);
        max = std::max(max, xb[t]);
      }
      const double d = (max - min) / ftop, d16 = half_value(block_d(blk)), m16 = half_value(block_m(blk));
      return [=](int, float back) {
        return d * (0.5 + 0x1p-17) + top * std::fabs(d - d16) + std::fabs(min - m16) + 0x1p-24 * std::fabs(back) + 1e-45;
      };
    });
  }
  // quant::matrix<F>::quantize packs rows the same way
  check_matrix_packs<F>(ggml_ref);
}

/// @brief F's activations (q4_1, q5_1) are ggml's Q8_1: q8_0's int8 and scales, plus d_x * sum qx
/// per block (q4_1_kernels::activation_sums).
template <class F>
void check_q8_1_activations() {
  using quant::detail::q8_activations::activations;
  using quant::detail::q4_1_kernels::activation_sums;
  constexpr std::int64_t m = 3, k = 96, ldx = 100;
  const auto x = padded_rows(activations_for(m, k, 3), m, k, ldx);  // the padding must never be read
  const std::size_t q8_bytes = quant::q8_0::activation_bytes(m, k);
  REQUIRE(F::activation_bytes(m, k) == q8_bytes + m * k);
  auto a = allocate_aligned<std::byte>(F::activation_bytes(m, k));
  auto b = allocate_aligned<std::byte>(q8_bytes);
  std::memset(a.get(), 0, F::activation_bytes(m, k));
  std::memset(b.get(), 0, q8_bytes);
  F::prepare_activations(x.data(), ldx, m, k, a.get());
  quant::q8_0::prepare_activations(x.data(), ldx, m, k, b.get());
  CHECK(std::memcmp(a.get(), b.get(), q8_bytes) == 0);  // the int8, scales and lane sums of q8_0
  for (std::int64_t i = 0; i < m; ++i)
    for (int blk = 0; blk < 3; ++blk) {
      int sum = 0;
      for (int t = 0; t < 32; ++t) sum += activations::q(a.get(), k, i)[blk * 32 + t];
      const float dx = activations::scale(a.get(), k, i)[blk * 8];
      for (int l = 0; l < 8; ++l) REQUIRE(activation_sums::row(a.get(), m, k, i)[blk * 8 + l] == dx * static_cast<float>(sum));
    }
}

}  // namespace tformer::test::ggml
