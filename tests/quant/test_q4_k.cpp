// quant::q4_k against ggml: dequantization bit-exact with ggml's dequantize_row_q4_K (re-written
// here from ggml-quants.c, over every scale byte and nibble) and with the reference fixture
// (tests/data/ggml_kquants.safetensors: ggml's own quantize_row_q4_K_ref / dequantize_row_q4_K,
// through tools/make_kquant_fixtures.py), quantization byte for byte with the fixture (edge
// super-blocks and 32 LCG ones), every compiled fused-product path bit-identical to the scalar
// reference, every float-product path within its summation bound, ops::linear through each of its
// paths, a GGUF round trip and bad input. The shared checks are in kquant_checks.hpp.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_k.hpp>

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
namespace kern = tformer::quant::detail::q4_k_kernels;
namespace ggml = tformer::test::ggml;
namespace kq = tformer::test::kquant;
using quant::q4_k;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q4_K_REPORT is set.
ggml::report measured("TFORMER_Q4_K_REPORT", "q4_k", "float paths");

constexpr std::int64_t bb = 144;  // bytes per super-block

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

/// ggml's dequantize_row_q4_K, written out as in ggml-quants.c (binary16 from its definition).
void ggml_dequantize_row_q4_K(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const std::byte* blk = x + i * bb;
    const auto* scales = reinterpret_cast<const std::uint8_t*>(blk + 4);
    const auto* q = reinterpret_cast<const std::uint8_t*>(blk + 16);
    const auto d = static_cast<float>(ggml::half_value(ggml::u16_at(blk)));
    const auto min = static_cast<float>(ggml::half_value(ggml::u16_at(blk + 2)));
    int is = 0;
    std::uint8_t sc, m;
    for (int j = 0; j < 256; j += 64) {
      ggml_get_scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      ggml_get_scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void fill(std::mt19937& gen, std::byte* blk) { kq::random_superblock(gen, blk, bb, {0, 2}); }

}  // namespace

TEST_CASE("q4_k is a fused weight format with ggml's Q4_K geometry", "[quant][q4_k]") {
  CHECK(std::string(q4_k::name) == "q4_k");
  CHECK(q4_k::ggml_type == 12u);  // GGML_TYPE_Q4_K
  kq::check_geometry<q4_k>(144, 4.5, kern::best_path, kern::best_float_path);
}

TEST_CASE("q4_k dequantizes bit-exactly as ggml's dequantize_row_q4_K", "[quant][q4_k]") {
  // 22 super-blocks whose 12-byte scale fields hold every byte value, and whose nibbles too
  kq::check_dequantize_systematic<q4_k>(4, {16, 144}, {0, 2}, ggml_dequantize_row_q4_K);
}

TEST_CASE("q4_k quantizes and dequantizes the reference fixture byte for byte", "[quant][q4_k]") {
  kq::check_fixture<q4_k>("q4_k");
}

TEST_CASE("every compiled q4_k fused path equals the scalar reference bit for bit", "[quant][q4_k]") {
  kq::check_fused_paths<q4_k, kern::fused, kern::blocks>(measured, fill);
}

TEST_CASE("every compiled q4_k float-activation path is within its bound", "[quant][q4_k]") {
  kq::check_float_paths<q4_k, kern::float_dot>(measured, fill);
}

TEST_CASE("ops::linear with q4_k weights: the fused product when opted in, float products otherwise", "[quant][q4_k]") {
  using fast = quant::int8_activations<q4_k>;
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q4_k>);
  kq::check_linear<fast, kern::blocks>(measured);
  kq::check_linear<q4_k, kern::blocks>(measured);
}

TEST_CASE("q4_k goes through a GGUF file as type Q4_K", "[quant][q4_k][gguf]") {
  ggml::check_gguf_round_trip<q4_k>("Q4_K", 512);
}

TEST_CASE("q4_k matrices need whole super-blocks; NaN scales stay NaN; the registry knows q4_k", "[quant][q4_k]") {
  kq::check_whole_blocks_and_registry<q4_k>();
  kq::check_nan_scale<q4_k>([](std::byte* blk) { ggml::put_u16(blk, 0x7E00); });
}
