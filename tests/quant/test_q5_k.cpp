// quant::q5_k against ggml: dequantization bit-exact with ggml's dequantize_row_q5_K (re-written
// here from ggml-quants.c, over every scale byte and nibble) and with the reference fixture
// (tests/data/ggml_kquants.safetensors: ggml's own quantize_row_q5_K_ref / dequantize_row_q5_K,
// through tools/make_kquant_fixtures.py), quantization byte for byte with the fixture (edge
// super-blocks and 32 LCG ones), every compiled fused-product path bit-identical to the scalar
// reference, every float-product path within its summation bound, ops::linear through each of its
// paths, a GGUF round trip and bad input. The shared checks are in kquant_checks.hpp.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q5_k.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "kquant_checks.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::q5_k_kernels;
namespace ggml = tformer::test::ggml;
namespace kq = tformer::test::kquant;
using quant::q5_k;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q5_K_REPORT is set.
ggml::report measured("TFORMER_Q5_K_REPORT", "q5_k", "float paths");

constexpr std::int64_t bb = 176;  // bytes per super-block

/// ggml's get_scale_min_k4, as in ggml-quants.c.
void ggml_get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* d, std::uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

/// ggml's dequantize_row_q5_K, written out as in ggml-quants.c (binary16 from its definition).
void ggml_dequantize_row_q5_K(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const std::byte* blk = x + i * bb;
    const auto* scales = reinterpret_cast<const std::uint8_t*>(blk + 4);
    const auto* qh = reinterpret_cast<const std::uint8_t*>(blk + 16);
    const auto* ql = reinterpret_cast<const std::uint8_t*>(blk + 48);
    const auto d = static_cast<float>(ggml::half_value(ggml::u16_at(blk)));
    const auto min = static_cast<float>(ggml::half_value(ggml::u16_at(blk + 2)));
    int is = 0;
    std::uint8_t sc, m;
    std::uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
      ggml_get_scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      ggml_get_scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = static_cast<std::uint8_t>(u1 << 2);
      u2 = static_cast<std::uint8_t>(u2 << 2);
    }
  }
}

void fill(std::mt19937& gen, std::byte* blk) { kq::random_superblock(gen, blk, bb, {0, 2}); }

}  // namespace

TEST_CASE("q5_k is a fused weight format with ggml's Q5_K geometry", "[quant][q5_k]") {
  CHECK(std::string(q5_k::name) == "q5_k");
  CHECK(q5_k::ggml_type == 13u);  // GGML_TYPE_Q5_K
  kq::check_geometry<q5_k>(176, 5.5, kern::best_path, kern::best_float_path);
}

TEST_CASE("q5_k dequantizes bit-exactly as ggml's dequantize_row_q5_K", "[quant][q5_k]") {
  // 22 super-blocks whose scale bytes, fifth bits and nibbles hold every byte value
  kq::check_dequantize_systematic<q5_k>(4, {16, 48, 176}, {0, 2}, ggml_dequantize_row_q5_K);
}

TEST_CASE("q5_k quantizes and dequantizes the reference fixture byte for byte", "[quant][q5_k]") {
  kq::check_fixture<q5_k>("q5_k");
}

TEST_CASE("every compiled q5_k fused path equals the scalar reference bit for bit", "[quant][q5_k]") {
  kq::check_fused_paths<q5_k, kern::fused, kern::blocks>(measured, fill);
}

TEST_CASE("every compiled q5_k float-activation path is within its bound", "[quant][q5_k]") {
  kq::check_float_paths<q5_k, kern::float_dot>(measured, fill);
}

TEST_CASE("ops::linear with q5_k weights: the fused product when opted in, float products otherwise", "[quant][q5_k]") {
  using fast = quant::int8_activations<q5_k>;
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q5_k>);
  kq::check_linear<fast, kern::blocks>(measured);
  kq::check_linear<q5_k, kern::blocks>(measured);
}

TEST_CASE("q5_k goes through a GGUF file as type Q5_K", "[quant][q5_k][gguf]") {
  ggml::check_gguf_round_trip<q5_k>("Q5_K", 512);
}

TEST_CASE("q5_k matrices need whole super-blocks; NaN scales stay NaN; the registry knows q5_k", "[quant][q5_k]") {
  kq::check_whole_blocks_and_registry<q5_k>();
  kq::check_nan_scale<q5_k>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
}
