// quant::int4_group<G> (G = 32, 64, 128): geometry, bytes and dequantized floats bit-exact with the
// reference (tests/data/onnx_quant.safetensors: gguf-py's numpy Q4_1 quantizer and dequantizer run
// on blocks of G, written by tools/make_onnx_quant_fixtures.py), int4_group<32> byte-identical with
// quant::q4_1 (ggml's Q4_1), the quantizer re-derived independently on many groups, all-zero and
// all-equal groups, the round-trip error bound, every compiled float-product path and ops::linear
// within the float dot product bound of float_product_checks.hpp, and the registry.
#include <tformer/quant/formats.hpp>
#include <tformer/quant/int4_group.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q4_1.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "catch.hpp"
#include "float_product_checks.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

using namespace tformer;
using quant::int4_group;

namespace {

io::safetensors_file fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/onnx_quant.safetensors");
}
std::uint16_t u16(const std::byte* p) { return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | std::to_integer<unsigned>(p[1]) << 8); }

/// The quantizer of int4_group.hpp's comment, from its definition: Q4_1's on G values, ISO C
/// evaluation ((x - min) * id and + 0.5f each rounded to float, through volatile), binary16
/// rounding from ggml_test_support's independent half_bits_ref.
template <std::int64_t G>
void reference_group(const float* x, std::byte* blk) {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
  for (std::int64_t j = 0; j < G; ++j) {
    min = x[j] < min ? x[j] : min;
    max = x[j] > max ? x[j] : max;
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const std::uint16_t hd = test::ggml::half_bits_ref(d), hm = test::ggml::half_bits_ref(min);
  blk[0] = std::byte(hd & 0xFF), blk[1] = std::byte(hd >> 8), blk[2] = std::byte(hm & 0xFF), blk[3] = std::byte(hm >> 8);
  auto nib = [&](float v) {
    volatile float p = (v - min) * id;
    volatile float e = p + 0.5f;
    const int q = static_cast<std::int8_t>(e);
    return static_cast<std::uint8_t>(q < 15 ? q : 15);
  };
  for (std::int64_t j = 0; j < G / 2; ++j)
    blk[4 + j] = static_cast<std::byte>(nib(x[j]) | nib(x[j + G / 2]) << 4);
}

template <std::int64_t G>
void check_fixture(const io::safetensors_file& f) {
  using F = int4_group<G>;
  const auto x = f.load<float>("int4.input");
  const std::string name = std::string("int4_g") + std::to_string(G);
  const auto bytes = f.load<std::uint8_t>(name);
  const auto deq = f.load<float>(name + ".dequantized");
  REQUIRE(bytes.dim(1) == quant::row_bytes<F>(256));
  const auto m = quant::matrix<F>::quantize(x.view());
  CHECK(std::memcmp(m.data(), bytes.data(), m.size_bytes()) == 0);
  const auto back = m.to_float();
  CHECK(std::memcmp(back.data(), deq.data(), sizeof(float) * static_cast<std::size_t>(deq.numel())) == 0);
}

template <std::int64_t G>
void check_reference(std::uint32_t seed) {
  using F = int4_group<G>;
  const std::int64_t rows = test::slow_build ? 20 : 200, k = 256;
  tensor<float> x(shape{rows, k});
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> e(-12.0f, 12.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(e(gen)), offset = (r % 3 == 0) ? 3.0f * scale : 0.0f;
    const auto v = test::random_floats(k, -1.0f, 1.0f, seed + static_cast<std::uint32_t>(r));
    for (std::int64_t t = 0; t < k; ++t) x.view()(r, t) = v[static_cast<std::size_t>(t)] * scale + offset;
    if (r % 4 == 1)  // quarter steps of a 15-level grid: the + 0.5 lands on ties
      for (std::int64_t t = 0; t < G; ++t) x.view()(r, t) = static_cast<float>(t % 61) * 0.25f;
  }
  const auto m = quant::matrix<F>::quantize(x.view());
  std::vector<std::byte> blk(static_cast<std::size_t>(F::block_bytes));
  std::int64_t bad = -1;
  double worst = 0;
  const auto back = m.to_float();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t g = 0; g < k / G; ++g) {
      reference_group<G>(x.view().row(r) + g * G, blk.data());
      const std::byte* got = m.row(r) + g * F::block_bytes;
      if (std::memcmp(blk.data(), got, blk.size()) != 0 && bad < 0) bad = r * (k / G) + g;
      // round trip: q from the float d and min, weights from their binary16 roundings
      float mn = std::numeric_limits<float>::max(), mx = -mn;
      for (std::int64_t t = 0; t < G; ++t) {
        mn = std::min(mn, x.view()(r, g * G + t));
        mx = std::max(mx, x.view()(r, g * G + t));
      }
      const double d = (static_cast<double>(mx) - mn) / 15.0;
      const double dh = test::ggml::half_value(u16(got)), mh = test::ggml::half_value(u16(got + 2));
      const double bound = 0.5 * d + 15.0 * std::fabs(dh - d) + std::fabs(mh - mn) + 1e-6 * std::max(std::fabs(mx), std::fabs(mn));
      for (std::int64_t t = 0; t < G; ++t)
        worst = std::max(worst, std::fabs(back.view()(r, g * G + t) - x.view()(r, g * G + t)) / (bound + 1e-37));
    }
  INFO("G " << G);
  CHECK(bad == -1);
  CHECK(worst <= 1.0);
}

template <std::int64_t G>
void check_paths() {
  using F = int4_group<G>;
  using K = typename F::kernels;
  for (const std::int64_t k : {G, 2 * G, 4 * G})
    for (const std::int64_t m : {1, 3, 8, 10}) {
      INFO("G " << G << " k " << k << " m " << m);
      const auto w = test::random_tensor(shape{11, k}, -1.0f, 3.0f, static_cast<std::uint32_t>(k + m));
      const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(k * m));
      const auto wq = quant::matrix<F>::quantize(w.view());
      CHECK(test::path_error(&K::scalar, x, wq) <= 1.0);
#if defined(TFORMER_CHANNEL_DOT_AVX2)
      CHECK(test::path_error(&K::avx2, x, wq) <= 1.0);
#endif
#if defined(TFORMER_CHANNEL_DOT_AVX512F)
      CHECK(test::path_error(&K::avx512, x, wq) <= 1.0);
#endif
    }
}

}  // namespace

TEST_CASE("int4_group<G> geometry: 4 + G / 2 bytes per group, names in the registry", "[quant][int4_group]") {
  STATIC_REQUIRE(int4_group<32>::block_bytes == 20);
  STATIC_REQUIRE(int4_group<64>::block_bytes == 36);
  STATIC_REQUIRE(int4_group<128>::block_bytes == 68);
  CHECK(int4_group<32>::bits_per_weight == 5.0);
  CHECK(int4_group<64>::bits_per_weight == 4.5);
  CHECK(int4_group<128>::bits_per_weight == 4.25);
  STATIC_REQUIRE(quant::float_product_format<int4_group<64>>);
  STATIC_REQUIRE(!quant::fused_format<int4_group<64>>);
  for (const char* name : {"int4_g32", "int4_g64", "int4_g128"}) {
    bool found = false;
    quant::visit_format(name, [&](auto f) { found = std::string(decltype(f)::name) == name; });
    CHECK(found);
  }
  CHECK_THROWS_AS(quant::matrix<int4_group<64>>(2, 96), shape_error);  // rows of whole groups only
}

TEST_CASE("int4_group equals gguf-py's Q4_1 quantizer on groups of G (the fixture) byte for byte", "[quant][int4_group]") {
  const auto f = fixture();
  check_fixture<32>(f);
  check_fixture<64>(f);
  check_fixture<128>(f);
}

TEST_CASE("int4_group<32> is ggml's Q4_1 byte for byte", "[quant][int4_group]") {
  const auto x = test::random_tensor(shape{9, 160}, -4.0f, 7.0f, 12);
  const auto a = quant::matrix<int4_group<32>>::quantize(x.view());
  const auto b = quant::matrix<quant::q4_1>::quantize(x.view());
  REQUIRE(a.size_bytes() == b.size_bytes());
  CHECK(std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
  const auto fa = a.to_float(), fb = b.to_float();
  CHECK(std::memcmp(fa.data(), fb.data(), sizeof(float) * 9 * 160) == 0);
  // and the ggml fixture's Q4_1 bytes
  const auto g = test::ggml::gguf_py_fixture();
  const auto in = g.load<float>("input");
  const auto q41 = g.load<std::uint8_t>("q4_1");
  const auto m = quant::matrix<int4_group<32>>::quantize(in.view());
  CHECK(std::memcmp(m.data(), q41.data(), m.size_bytes()) == 0);
}

TEST_CASE("int4_group quantizes as its definition on many groups, within the round-trip bound", "[quant][int4_group]") {
  check_reference<32>(100);
  check_reference<64>(200);
  check_reference<128>(300);
}

TEST_CASE("int4_group: all-zero and all-equal groups get d = 0 and dequantize to their value", "[quant][int4_group]") {
  tensor<float> x(shape{2, 128});
  for (std::int64_t t = 0; t < 128; ++t) x.view()(1, t) = -0.3f;
  const auto m = quant::matrix<int4_group<128>>::quantize(x.view());
  CHECK(u16(m.row(0)) == 0);      // d = 0
  CHECK(u16(m.row(0) + 2) == 0);  // m = 0
  CHECK(u16(m.row(1)) == 0);
  CHECK(u16(m.row(1) + 2) == test::ggml::half_bits_ref(-0.3f));
  bool nibbles_zero = true;
  for (std::int64_t j = 0; j < 64; ++j) nibbles_zero = nibbles_zero && m.row(1)[4 + j] == std::byte{0};
  CHECK(nibbles_zero);
  const auto back = m.to_float();
  CHECK(back.view()(0, 77) == 0.0f);
  CHECK(back.view()(1, 5) == static_cast<float>(test::ggml::half_value(test::ggml::half_bits_ref(-0.3f))));
}

TEST_CASE("every compiled int4_group float path is within the float dot product bound", "[quant][int4_group]") {
  check_paths<32>();
  check_paths<64>();
  check_paths<128>();
}

TEST_CASE("ops::linear with int4_group weights, decode and prefill", "[quant][int4_group]") {
  test::check_linear<int4_group<32>>(96, 37, 1);
  test::check_linear<int4_group<64>>(128, 300, 2);
  test::check_linear<int4_group<128>>(256, 45, 3);
}
