// quant::int8_channel and quant::uint8_channel: the row layout (a header with the row's scale, then
// one byte per weight, through quant::row_bytes), quantization bit-exact with the references in
// tests/data/onnx_quant.safetensors (tools/make_onnx_quant_fixtures.py): CTranslate2's own int8
// quantizer (LinearSpec.optimize(quantization="int8")) and ONNX's DynamicQuantizeLinear per row;
// CTranslate2's rounding (rint: ties to even) and scale rules (all-zero rows, tiny rows) against an
// independent re-derivation on many rows; dequantization formulas exactly; every compiled
// float-product path and ops::linear within the float dot product bound of float_product_checks.hpp;
// a zero-bytes matrix reads as zeros; the registry and a checkpoint's byte copy; the fused int8 product
// and the packed one (a GEMM, many rows) the same bits on every path and through ops::linear at any
// row and thread count; the vectorized activation rounding byte for byte against the reference.
#include <tformer/core/memory.hpp>
#include <tformer/io/checkpoint.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/int8_channel.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/quantize_linear.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>

#include "catch.hpp"
#include "float_product_checks.hpp"
#include "support.hpp"

using namespace tformer;
using quant::int8_channel;
using quant::uint8_channel;
namespace kern = tformer::quant::detail::channel_kernels;

namespace {

io::safetensors_file fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/onnx_quant.safetensors");
}
float scale_of(const std::byte* row) {
  float s;
  std::memcpy(&s, row, 4);
  return s;
}
std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

/// CTranslate2 4.x's int8 quantizer for one row, as model_spec.py writes it in numpy, in float32.
void ct2_reference(const float* x, std::int64_t n, float& scale, std::int8_t* q) {
  float amax = 0.0f;
  for (std::int64_t t = 0; t < n; ++t) amax = std::fabs(x[t]) > amax ? std::fabs(x[t]) : amax;  // np.amax(np.absolute)
  if (amax == 0.0f) amax = 127.0f;                                                             // amax[amax == 0] = 127
  const float floor_amax = 127.0f / std::numeric_limits<float>::max();
  if (amax < floor_amax) amax = floor_amax;  // np.maximum(amax, 127 / finfo.max)
  scale = 127.0f / amax;
  for (std::int64_t t = 0; t < n; ++t) {
    volatile float p = x[t] * scale;             // value *= scale (float32, stored)
    q[t] = static_cast<std::int8_t>(std::nearbyint(p));  // np.rint, then astype(int8)
  }
}

}  // namespace

TEST_CASE("int8_channel and uint8_channel rows: a header with the scale, then a byte per weight", "[quant][int8_channel]") {
  STATIC_REQUIRE(quant::float_product_format<int8_channel>);
  STATIC_REQUIRE(quant::float_product_format<uint8_channel>);
  STATIC_REQUIRE(!quant::element_format<int8_channel>);
  STATIC_REQUIRE(quant::row_bytes<int8_channel>(64) == 68);
  STATIC_REQUIRE(quant::row_bytes<uint8_channel>(64) == 72);
  quant::matrix<int8_channel> m(3, 5);
  CHECK(m.row_bytes() == 9);
  CHECK(m.size_bytes() == 27);
  CHECK(m.row(2) - m.row(0) == 18);
  quant::matrix<uint8_channel> u(3, 5);
  CHECK(u.size_bytes() == 39);
  // the zero bytes of a new matrix are zero weights in both (int8_channel's scale 0 is not 0 / 0)
  const auto zf = m.to_float();
  const auto uf = u.to_float();
  bool zeros = true;
  for (std::int64_t i = 0; i < 15; ++i) zeros = zeros && zf.data()[i] == 0.0f && uf.data()[i] == 0.0f;
  CHECK(zeros);
  const auto x = test::random_tensor(shape{2, 5}, 4);
  tensor<float> y(shape{2, 3}, 9.0f);
  ops::linear(x.view(), m, y.view());
  CHECK(y.data()[4] == 0.0f);
  // names in the registry
  for (const char* name : {"int8_channel", "uint8_channel"}) {
    bool found = false;
    quant::visit_format(name, [&](auto f) { found = std::string(decltype(f)::name) == name; });
    CHECK(found);
  }
}

TEST_CASE("int8_channel equals CTranslate2's int8 quantizer (the fixture) bit for bit", "[quant][int8_channel]") {
  const auto f = fixture();
  const auto x = f.load<float>("ct2.input");
  const auto q = f.load<std::int8_t>("ct2.q");
  const auto s = f.load<float>("ct2.scale");
  REQUIRE(x.shape() == shape{6, 40});
  const auto m = quant::matrix<int8_channel>::quantize(x.view());
  std::int64_t bad = -1;
  for (std::int64_t r = 0; r < 6; ++r) {
    INFO("row " << r);
    CHECK(bits(scale_of(m.row(r))) == bits(s.data()[r]));
    if (std::memcmp(m.row(r) + 4, q.data() + r * 40, 40) != 0 && bad < 0) bad = r;
  }
  CHECK(bad == -1);
  CHECK(s.data()[3] == 1.0f);  // the row with amax 127 and its ties: 2.5 -> 2, 3.5 -> 4, -0.5 -> 0, 63.5 -> 64
  CHECK(q.view()(3, 1) == 2);
  CHECK(q.view()(3, 2) == 4);
  CHECK(q.view()(3, 6) == 64);
  CHECK(s.data()[4] == 1.0f);                                  // all-zero row: scale 1
  CHECK(s.data()[5] == std::numeric_limits<float>::max());     // a subnormal row: amax clamped to 127 / FLT_MAX
  // dequantized: q / s, a float division, as io/ctranslate2.hpp reads CTranslate2's int8 weights
  const auto d = m.to_float();
  bad = -1;
  for (std::int64_t r = 0; r < 6; ++r)
    for (std::int64_t t = 0; t < 40; ++t)
      if (bits(d.view()(r, t)) != bits(static_cast<float>(q.view()(r, t)) / s.data()[r]) && bad < 0) bad = r * 40 + t;
  CHECK(bad == -1);
}

TEST_CASE("int8_channel quantizes as CTranslate2 on many rows: ties to even, tiny and huge scales", "[quant][int8_channel]") {
  const std::int64_t n = 96, rows = test::slow_build ? 60 : 600;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
  tensor<float> x(shape{rows, n});
  for (std::int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(mag(gen));
    auto v = test::random_floats(static_cast<std::size_t>(n), -1.0f, 1.0f, static_cast<std::uint32_t>(r));
    for (std::int64_t t = 0; t < n; ++t) x.view()(r, t) = v[static_cast<std::size_t>(t)] * scale;
    if (r % 5 == 0) {  // amax = 127 * 2^e: s = 2^-e exactly, and x = (j + 0.5) 2^e are ties
      const float e = std::exp2(static_cast<float>(r % 40) - 20.0f);
      x.view()(r, 0) = 127.0f * e;
      for (std::int64_t t = 1; t < 20; ++t) x.view()(r, t) = (static_cast<float>(t) - 10.5f) * e;
      for (std::int64_t t = 20; t < n; ++t) x.view()(r, t) = v[static_cast<std::size_t>(t)] * 100.0f * e;
    }
    if (r % 7 == 3)
      for (std::int64_t t = 0; t < n; ++t) x.view()(r, t) = 0.0f;
  }
  const auto m = quant::matrix<int8_channel>::quantize(x.view());
  std::int64_t bad = -1;
  std::int8_t q[n];
  for (std::int64_t r = 0; r < rows; ++r) {
    float s;
    ct2_reference(x.view().row(r), n, s, q);
    if ((bits(s) != bits(scale_of(m.row(r))) || std::memcmp(q, m.row(r) + 4, n) != 0) && bad < 0) bad = r;
  }
  CHECK(bad == -1);
  // the ties went to even (row 0: s = 2^20, x_1 = -9.5 * 2^-20)
  const float s0 = scale_of(m.row(0));
  CHECK(s0 * x.view()(0, 1) == -9.5f);
  CHECK(reinterpret_cast<const std::int8_t*>(m.row(0) + 4)[1] == -10);
  CHECK(reinterpret_cast<const std::int8_t*>(m.row(0) + 4)[2] == -8);  // -8.5 -> -8
}

TEST_CASE("uint8_channel equals ONNX DynamicQuantizeLinear on each row (the fixture)", "[quant][int8_channel]") {
  const auto f = fixture();
  const auto x = f.load<float>("uint8_channel.input");
  const auto q = f.load<std::uint8_t>("uint8_channel.q");
  const auto s = f.load<float>("uint8_channel.scale");
  const auto z = f.load<std::uint8_t>("uint8_channel.zp");
  const std::int64_t rows = x.dim(0), n = x.dim(1);
  const auto m = quant::matrix<uint8_channel>::quantize(x.view());
  std::int64_t bad = -1;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::byte* row = m.row(r);
    const bool ok = bits(scale_of(row)) == bits(s.data()[r]) && std::to_integer<std::uint8_t>(row[4]) == z.data()[r] &&
                    row[5] == std::byte{0} && row[7] == std::byte{0} && std::memcmp(row + 8, q.data() + r * n, n) == 0;
    if (!ok && bad < 0) bad = r;
    // and the operator on the row gives the same
    tensor<std::uint8_t> yr(shape{n});
    const auto dq = quant::dynamic_quantize_linear(x.view()[r], yr.view());
    CHECK(bits(dq.scale) == bits(s.data()[r]));
  }
  CHECK(bad == -1);
  CHECK(z.data()[3] == 0);    // a nonnegative row
  CHECK(z.data()[4] == 255);  // a nonpositive row
  // dequantized: ((float)q - (float)z) * s, ONNX DequantizeLinear
  const auto d = m.to_float();
  bad = -1;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < n; ++t) {
      const float want = (static_cast<float>(q.view()(r, t)) - static_cast<float>(z.data()[r])) * s.data()[r];
      if (bits(d.view()(r, t)) != bits(want) && bad < 0) bad = r * n + t;
    }
  CHECK(bad == -1);
  // an all-zero row: scale 1 / 255, zero point 0
  tensor<float> zeros(shape{1, 8});
  const auto mz = quant::matrix<uint8_channel>::quantize(zeros.view());
  CHECK(scale_of(mz.row(0)) == 1.0f / 255.0f);
  CHECK(mz.row(0)[4] == std::byte{0});
}

TEST_CASE("every compiled int8_channel / uint8_channel float path is within the float dot product bound",
          "[quant][int8_channel]") {
  const std::int64_t ks[] = {1, 7, 16, 33, 100, 257};
  for (const std::int64_t k : ks)
    for (const std::int64_t m : {1, 2, 5, 8, 9}) {
      INFO("k " << k << " m " << m);
      const auto w = test::random_tensor(shape{13, k}, -3.0f, 1.0f, static_cast<std::uint32_t>(k * 10 + m));
      const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(k + m));
      const auto wi = quant::matrix<int8_channel>::quantize(w.view());
      const auto wu = quant::matrix<uint8_channel>::quantize(w.view());
      using si = kern::float_dot<kern::int8_layout>;
      using su = kern::float_dot<kern::uint8_layout>;
      CHECK(test::path_error(&si::scalar, x, wi) <= 1.0);
      CHECK(test::path_error(&su::scalar, x, wu) <= 1.0);
#if defined(TFORMER_CHANNEL_DOT_AVX2)
      CHECK(test::path_error(&si::avx2, x, wi) <= 1.0);
      CHECK(test::path_error(&su::avx2, x, wu) <= 1.0);
#endif
#if defined(TFORMER_CHANNEL_DOT_AVX512F)
      CHECK(test::path_error(&si::avx512, x, wi) <= 1.0);
      CHECK(test::path_error(&su::avx512, x, wu) <= 1.0);
#endif
    }
  // exact on integer data: small integers in x and weights that are integers times the scale
  tensor<float> xi(shape{3, 40});
  for (std::int64_t i = 0; i < xi.numel(); ++i) xi.data()[i] = static_cast<float>(i % 11) - 5.0f;
  tensor<float> wsrc(shape{4, 40});
  for (std::int64_t i = 0; i < wsrc.numel(); ++i) wsrc.data()[i] = static_cast<float>(i % 255) - 127.0f;
  for (std::int64_t r = 0; r < 4; ++r) wsrc.view()(r, 0) = 127.0f;  // s = 1: q = w
  const auto wq = quant::matrix<int8_channel>::quantize(wsrc.view());
  tensor<float> y(shape{3, 4});
  int8_channel::float_product(xi.data(), 40, 3, 40, wq.data(), wq.row_bytes(), 4, y.data(), 4);
  std::int64_t bad = -1;
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 4; ++j) {
      double s = 0;
      for (std::int64_t t = 0; t < 40; ++t) s += xi.view()(i, t) * wsrc.view()(j, t);
      if (y.view()(i, j) != s && bad < 0) bad = i * 4 + j;
    }
  CHECK(bad == -1);
}

TEST_CASE("ops::linear with int8_channel and uint8_channel weights, decode and prefill", "[quant][int8_channel]") {
  test::check_linear<int8_channel>(70, 37, 1);
  test::check_linear<uint8_channel>(70, 37, 2);
  test::check_linear<int8_channel>(256, 400, 3);
}

TEST_CASE("int8_channel bytes load as they are from a checkpoint's packed tensor", "[quant][int8_channel]") {
  const auto x = test::random_tensor(shape{3, 24}, 8);
  const auto m = quant::matrix<int8_channel>::quantize(x.view());
  io::checkpoint_tensor t;
  t.name = "w";
  t.format = "int8_channel";
  t.shape = {3, 24};
  t.bytes = std::span<const std::byte>(m.data(), m.size_bytes());
  const auto back = io::detail::dequantize_bytes("mem", t);
  const auto want = m.to_float();
  CHECK(std::memcmp(back.data(), want.data(), sizeof(float) * 72) == 0);
  t.bytes = t.bytes.first(m.size_bytes() - 1);  // one byte short: the row headers count
  CHECK_THROWS_AS(io::detail::dequantize_bytes("mem", t), io_error);
}

TEST_CASE("int8_channel's fused int8 product: every path the same bits, within the activation rounding bound",
          "[quant][int8_channel]") {
  namespace ck = tformer::quant::detail::channel_kernels;
  for (const std::int64_t k : {1, 31, 32, 64, 65, 200}) {
    for (const std::int64_t m : {1, 3, 8, 9}) {
      INFO("k " << k << " m " << m << " (best " << ck::best_fused_path << ")");
      const auto w = test::random_tensor(shape{19, k}, -1.0f, 2.0f, static_cast<std::uint32_t>(3 * k + m));
      auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(k + 7 * m));
      x.data()[0] = -1.0f;  // an activation of -127 against the weights' extremes
      const auto wq = quant::matrix<int8_channel>::quantize(w.view());
      auto acts = allocate_aligned<std::byte>(int8_channel::activation_bytes(m, k));
      int8_channel::prepare_activations(x.data(), k, m, k, acts.get());
      tensor<float> ref(shape{m, 19});
      ck::int8_dot::scalar(acts.get(), m, k, wq.data(), wq.row_bytes(), 19, ref.data(), 19);
      auto same = [&](auto path) {
        tensor<float> y(shape{m, 19}, -1.0f);
        path(acts.get(), m, k, wq.data(), wq.row_bytes(), 19, y.data(), 19);
        return std::memcmp(y.data(), ref.data(), sizeof(float) * static_cast<std::size_t>(m * 19)) == 0;
      };
#if defined(TFORMER_CHANNEL_DOT_AVX2)
      CHECK(same(&ck::int8_dot::avx2));
#endif
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
      CHECK(same(&ck::int8_dot::avx512vnni));
#endif
      CHECK(same(&int8_channel::fused_product));
      // against the float product of the dequantized weights: each activation is off by at most
      // half its step amax_x / 127, plus the float roundings of the dot product's bound
      const auto wf = wq.to_float();
      double worst = 0;
      for (std::int64_t i = 0; i < m; ++i) {
        float amax = 0;
        for (std::int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(x.view()(i, t)));
        for (std::int64_t j = 0; j < 19; ++j) {
          double exact = 0, mag = 0, wsum = 0;
          for (std::int64_t t = 0; t < k; ++t) {
            exact += static_cast<double>(x.view()(i, t)) * wf.view()(j, t);
            mag += std::fabs(static_cast<double>(x.view()(i, t)) * wf.view()(j, t));
            wsum += std::fabs(wf.view()(j, t));
          }
          const double step = 0.5 * amax / 127.0;
          const double bound = step * wsum * (1 + 1e-5) + 8.0 * std::ldexp(1.0, -24) * (mag + step * wsum) + 1e-30;
          worst = std::max(worst, std::fabs(ref.view()(i, j) - exact) / bound);
        }
      }
      CHECK(worst <= 1.0);
    }
  }
  // ops::linear takes it for int8_activations<int8_channel> (decode), with the same bytes
  using fast = quant::int8_activations<int8_channel>;
  STATIC_REQUIRE(quant::row_bytes<fast>(10) == 14);
  const auto w = test::random_tensor(shape{300, 96}, 21);
  const auto x = test::random_tensor(shape{2, 96}, 22);
  const auto wq = quant::matrix<fast>::quantize(w.view());
  tensor<float> y(shape{2, 300}), want(shape{2, 300});
  ops::linear(x.view(), wq, y.view());
  auto acts = allocate_aligned<std::byte>(int8_channel::activation_bytes(2, 96));
  int8_channel::prepare_activations(x.data(), 96, 2, 96, acts.get());
  int8_channel::fused_product(acts.get(), 2, 96, wq.data(), wq.row_bytes(), 300, want.data(), 300);
  CHECK(std::memcmp(y.data(), want.data(), sizeof(float) * 600) == 0);
}

TEST_CASE("int8_channel's activation rounding: every path the same bytes", "[quant][int8_channel]") {
  for (const std::int64_t k : {1, 15, 16, 17, 64, 100, 768}) {
    INFO("k " << k);
    const std::int64_t m = 5;
    auto x = test::random_tensor(shape{m, k}, -3.0f, 6.0f, static_cast<std::uint32_t>(k + 40));
    // row 0: amax 127 gives the scale 1 exactly, so halves are ties (to even: 0, 2, -2, 126)
    const float ties[] = {127.0f, 0.5f, 1.5f, -2.5f, 125.5f, -0.5f};
    for (std::int64_t t = 0; t < std::min<std::int64_t>(k, 6); ++t) x.data()[t] = ties[t];
    for (std::int64_t t = 6; t < k; ++t) x.data()[t] = std::trunc(x.data()[t] * 20.0f) + 0.5f;  // more ties
    for (std::int64_t t = 0; t < k; ++t) x.data()[3 * k + t] = 0.0f;  // an all-zero row
    const std::size_t bytes = int8_channel::activation_bytes(m, k);
    auto ref = allocate_aligned<std::byte>(bytes), got = allocate_aligned<std::byte>(bytes);
    std::memset(ref.get(), 0x5A, bytes);
    std::memset(got.get(), 0xA5, bytes);
    kern::prepare_int8_scalar(x.data(), k, m, k, ref.get());
    int8_channel::prepare_activations(x.data(), k, m, k, got.get());
    const std::int8_t want_ties[] = {127, 0, 2, -2, 126, 0};
    for (std::int64_t t = 0; t < std::min<std::int64_t>(k, 6); ++t)
      CHECK(reinterpret_cast<const std::int8_t*>(got.get() + 64)[t] == want_ties[t]);
    // the bytes that carry meaning: scale, sum, and the padded integers of each row
    for (std::int64_t i = 0; i < m; ++i) {
      const std::int64_t at = i * kern::fused_stride(k);
      CHECK(std::memcmp(ref.get() + at, got.get() + at, 8) == 0);
      CHECK(std::memcmp(ref.get() + at + 64, got.get() + at + 64, static_cast<std::size_t>((k + 63) / 64 * 64)) == 0);
    }
  }
}

TEST_CASE("int8_channel's packed product (many rows): the fused product's bits", "[quant][int8_channel]") {
  for (const std::int64_t k : {1, 3, 4, 63, 64, 65, 200}) {
    for (const std::int64_t n : {1, 16, 63, 64, 65, 130}) {
      const std::int64_t m = 13;  // two groups of 6 rows and one of 1
      INFO("k " << k << " n " << n << " (packed min rows " << int8_channel::packed_min_rows << ")");
      const auto w = test::random_tensor(shape{n, k}, -1.0f, 2.0f, static_cast<std::uint32_t>(5 * k + n));
      auto wq = quant::matrix<int8_channel>::quantize(w.view());
      if (n > 2) std::memset(wq.row(1), 0, 4);  // a scale of 0 reads as zero weights
      auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(k + 9 * n));
      x.data()[0] = -1.0f;
      auto acts = allocate_aligned<std::byte>(int8_channel::activation_bytes(m, k));
      int8_channel::prepare_activations(x.data(), k, m, k, acts.get());
      tensor<float> ref(shape{m, n});
      kern::int8_dot::scalar(acts.get(), m, k, wq.data(), wq.row_bytes(), n, ref.data(), n);
      const std::size_t pbytes = kern::int8_gemm::packed_bytes(k, n);
      auto packed = allocate_aligned<std::byte>(pbytes), packed_ref = allocate_aligned<std::byte>(pbytes);
      kern::int8_gemm::pack_scalar(wq.data(), wq.row_bytes(), k, n, packed_ref.get());
      kern::int8_gemm::pack(wq.data(), wq.row_bytes(), k, n, packed.get());
      CHECK(std::memcmp(packed.get(), packed_ref.get(), pbytes) == 0);
      auto same = [&](auto&& path) {
        tensor<float> y(shape{m, n + 3}, -1.0f);  // ldy past n: the columns beyond stay untouched
        path(y.data(), n + 3);
        bool ok = true;
        for (std::int64_t i = 0; i < m; ++i) {
          ok = ok && std::memcmp(y.data() + i * (n + 3), ref.data() + i * n, sizeof(float) * static_cast<std::size_t>(n)) == 0;
          for (std::int64_t j = n; j < n + 3; ++j) ok = ok && y.data()[i * (n + 3) + j] == -1.0f;
        }
        return ok;
      };
      CHECK(same([&](float* y, std::int64_t ldy) { kern::int8_gemm::product_scalar(acts.get(), m, k, packed.get(), n, y, ldy); }));
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
      CHECK(same([&](float* y, std::int64_t ldy) { kern::int8_gemm::product_avx512vnni(acts.get(), m, k, packed.get(), n, y, ldy); }));
#endif
      auto scratch = allocate_aligned<std::byte>(int8_channel::packed_bytes(k));
      CHECK(same([&](float* y, std::int64_t ldy) {
        int8_channel::packed_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, y, ldy, scratch.get());
      }));
    }
  }
}

TEST_CASE("ops::linear with int8_activations<int8_channel> on many rows: the fused product's bits, any thread count",
          "[quant][int8_channel]") {
  using fast = quant::int8_activations<int8_channel>;
  for (const std::int64_t m : {9, 16, 65, 300, 700}) {
    INFO("m " << m);
    // without a packed product compiled (no AVX-512 VNNI), rows beyond fused_rows_limit take the
    // dequantized float GEMM, which the test above bounds
    if (m > ops::fused_rows_limit && (int8_channel::packed_min_rows == 0 || m < int8_channel::packed_min_rows)) continue;
    const std::int64_t k = 96, n = 200;  // 200 = 3 panels of 64 and 8 columns
    const auto w = test::random_tensor(shape{n, k}, static_cast<std::uint32_t>(m));
    const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(m + 1));
    const auto bias = test::random_tensor(shape{n}, static_cast<std::uint32_t>(m + 2));
    const auto wq = quant::matrix<fast>::quantize(w.view());
    auto acts = allocate_aligned<std::byte>(int8_channel::activation_bytes(m, k));
    kern::prepare_int8_scalar(x.data(), k, m, k, acts.get());
    tensor<float> want(shape{m, n});
    kern::int8_dot::scalar(acts.get(), m, k, wq.data(), wq.row_bytes(), n, want.data(), n);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) want.data()[i * n + j] += bias.data()[j];
    test::thread_guard guard;
    for (const int threads : {1, 2, 3}) {
      INFO("threads " << threads);
      set_num_threads(threads);
      tensor<float> y(shape{m, n});
      ops::linear(x.view(), wq, y.view(), bias.view());
      CHECK(std::memcmp(y.data(), want.data(), sizeof(float) * static_cast<std::size_t>(m * n)) == 0);
    }
  }
}

TEST_CASE("ops::linear with int8_activations<int8_channel> beyond max_fused_k: the float path, no int32 overflow",
          "[quant][int8_channel]") {
  // x = w = 1 everywhere: every int8 term is 127 * 127, whose int32 sum overflows past
  // max_fused_k (to a negative or far-off value); the float paths give k within a few ulp.
  using fast = quant::int8_activations<int8_channel>;
  STATIC_REQUIRE(fast::max_fused_k == 132104);
  const std::int64_t k = fast::max_fused_k + 8000, n = 3;
  tensor<float> w(shape{n, k}, 1.0f);
  const auto wq = quant::matrix<fast>::quantize(w.view());
  for (const std::int64_t m : {1, 9}) {  // the fused product's rows and the packed product's
    INFO("m " << m);
    tensor<float> x(shape{m, k}, 1.0f), y(shape{m, n});
    ops::linear(x.view(), wq, y.view());
    for (std::int64_t i = 0; i < m * n; ++i) CHECK(y.data()[i] == Approx(static_cast<double>(k)).epsilon(1e-6));
  }
}
