// quant::q6_k against ggml: dequantization bit-exact with ggml's dequantize_row_q6_K (re-written
// here from ggml-quants.c, over every scale byte and nibble) and with the reference fixture
// (tests/data/ggml_kquants.safetensors: ggml's own quantize_row_q6_K_ref / dequantize_row_q6_K,
// through tools/make_kquant_fixtures.py), quantization byte for byte with the fixture (edge
// super-blocks and 32 LCG ones), every compiled fused-product path bit-identical to the scalar
// reference, every float-product path within its summation bound, ops::linear through each of its
// paths, a GGUF round trip and bad input. The shared checks are in kquant_checks.hpp.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q6_k.hpp>

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
namespace kern = tformer::quant::detail::q6_k_kernels;
namespace ggml = tformer::test::ggml;
namespace kq = tformer::test::kquant;
using quant::q6_k;

namespace {

// Measured worst cases, printed at the end when TFORMER_Q6_K_REPORT is set.
ggml::report measured("TFORMER_Q6_K_REPORT", "q6_k", "float paths");

constexpr std::int64_t bb = 210;  // bytes per super-block

/// ggml's dequantize_row_q6_K, written out as in ggml-quants.c (binary16 from its definition).
void ggml_dequantize_row_q6_K(const std::byte* x, float* y, std::int64_t k) {
  for (std::int64_t i = 0; i < k / 256; ++i) {
    const std::byte* blk = x + i * bb;
    const auto d = static_cast<float>(ggml::half_value(ggml::u16_at(blk + 208)));
    const auto* ql = reinterpret_cast<const std::uint8_t*>(blk);
    const auto* qh = reinterpret_cast<const std::uint8_t*>(blk + 128);
    const auto* sc = reinterpret_cast<const std::int8_t*>(blk + 192);
    for (int n = 0; n < 256; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const auto q1 = static_cast<std::int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        const auto q2 = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        const auto q3 = static_cast<std::int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        const auto q4 = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void fill(std::mt19937& gen, std::byte* blk) { kq::random_superblock(gen, blk, bb, {208}); }

}  // namespace

TEST_CASE("q6_k is a fused weight format with ggml's Q6_K geometry", "[quant][q6_k]") {
  CHECK(std::string(q6_k::name) == "q6_k");
  CHECK(q6_k::ggml_type == 14u);  // GGML_TYPE_Q6_K
  kq::check_geometry<q6_k>(210, 6.5625, kern::best_path, kern::best_float_path);
}

TEST_CASE("q6_k dequantizes bit-exactly as ggml's dequantize_row_q6_K", "[quant][q6_k]") {
  // 22 super-blocks whose low bits, high bits and int8 scales hold every byte value
  kq::check_dequantize_systematic<q6_k>(0, {128, 192, 208}, {208}, ggml_dequantize_row_q6_K);
}

TEST_CASE("q6_k quantizes and dequantizes the reference fixture byte for byte", "[quant][q6_k]") {
  kq::check_fixture<q6_k>("q6_k");
}

TEST_CASE("every compiled q6_k fused path equals the scalar reference bit for bit", "[quant][q6_k]") {
  kq::check_fused_paths<q6_k, kern::fused, kern::blocks>(measured, fill);
}

TEST_CASE("every compiled q6_k float-activation path is within its bound", "[quant][q6_k]") {
  kq::check_float_paths<q6_k, kern::float_dot>(measured, fill);
}

TEST_CASE("ops::linear with q6_k weights: the fused product when opted in, float products otherwise", "[quant][q6_k]") {
  using fast = quant::int8_activations<q6_k>;
  STATIC_REQUIRE(quant::uses_fused_product<fast>);
  STATIC_REQUIRE_FALSE(quant::uses_fused_product<q6_k>);
  kq::check_linear<fast, kern::blocks>(measured);
  kq::check_linear<q6_k, kern::blocks>(measured);
}

TEST_CASE("q6_k goes through a GGUF file as type Q6_K", "[quant][q6_k][gguf]") {
  ggml::check_gguf_round_trip<q6_k>("Q6_K", 512);
}

TEST_CASE("q6_k matrices need whole super-blocks; NaN scales stay NaN; the registry knows q6_k", "[quant][q6_k]") {
  kq::check_whole_blocks_and_registry<q6_k>();
  kq::check_nan_scale<q6_k>([](std::byte* blk) { ggml::put_u16(blk + 208, 0x7E00); });
}
