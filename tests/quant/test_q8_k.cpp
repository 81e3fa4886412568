// quant::detail::q8_k, ggml's Q8_K activations of the K-quant products: the block layout, the
// quantizer against the reference fixture (tests/data/ggml_kquants.safetensors: ggml's own
// quantize_row_q8_K_ref through tools/make_kquant_fixtures.py) byte for byte on both paths,
// rounding ties to even, the AVX2 path against the scalar reference on every kind of block
// (non-finite and tiny ones included), and prepare's scratch layout.
#include <tformer/core/memory.hpp>
#include <tformer/quant/q8_k.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"
#include "kquant_checks.hpp"
#include "support.hpp"

using namespace tformer;
namespace q8k = tformer::quant::detail::q8_k;
namespace kq = tformer::test::kquant;

TEST_CASE("q8_k blocks are ggml's block_q8_K: float d, int8 qs[256], int16 bsums[16]", "[quant][q8_k]") {
  STATIC_REQUIRE(q8k::block == 256);
  STATIC_REQUIRE(q8k::block_bytes == 4 + 256 + 2 * 16);
  STATIC_REQUIRE(q8k::qs_at == 4);
  STATIC_REQUIRE(q8k::bsums_at == 260);
  STATIC_REQUIRE(q8k::max_rows == 8);
  for (const std::int64_t k : {256, 512, 1536, 4096}) {
    CHECK(q8k::activations::stride(k) % 64 == 0);
    CHECK(q8k::activations::stride(k) >= k / 256 * 292);
    CHECK(q8k::activations::stride(k) < k / 256 * 292 + 64);
    CHECK(q8k::bytes(3, k) == static_cast<std::size_t>(3 * q8k::activations::stride(k)));
  }
}

TEST_CASE("q8_k quantizes the reference fixture byte for byte on every path", "[quant][q8_k]") {
  const auto f = kq::fixture();
  kq::check_fixture_bytes(f, "q8_k", q8k::block_bytes, [](const float* x, std::byte* blk) {
    std::memset(blk, 0xAB, q8k::block_bytes);  // every byte must be written
    q8k::quantize_block_ref(x, blk);
  });
  kq::check_fixture_bytes(f, "q8_k", q8k::block_bytes, [](const float* x, std::byte* blk) {
    std::memset(blk, 0xAB, q8k::block_bytes);
    q8k::quantize_block(x, blk);
  });
}

TEST_CASE("q8_k rounds iscale * x to nearest, ties to even, and sums each 16", "[quant][q8_k]") {
  // max = -127 (the first of largest magnitude): iscale = 1, d = 1, so q = round-half-even(x)
  float x[256];
  const float vals[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f, 0.49999997f, 3.0f, 127.0f, -0.0f};
  const int want[] = {0, 2, 2, 0, -2, -2, 126, -126, 0, 3, 127, 0};
  for (int t = 0; t < 256; ++t) x[t] = t == 0 ? -127.0f : vals[t % 12];
  std::vector<std::byte> blk(q8k::block_bytes);
  q8k::quantize_block(x, blk.data());
  CHECK(q8k::scale_of(blk.data()) == 1.0f);
  int bad = -1;
  for (int t = 1; t < 256 && bad < 0; ++t)
    if (q8k::q_of(blk.data())[t] != want[t % 12]) bad = t;
  CHECK(bad == -1);
  CHECK(q8k::q_of(blk.data())[0] == -127);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int t = 0; t < 16; ++t) sum += q8k::q_of(blk.data())[16 * g + t];
    CHECK(q8k::bsum_of(blk.data(), g) == sum);
  }
  // the tie in magnitude goes to the first: +127 first gives iscale = -1, d = -1
  x[0] = 127.0f;
  x[5] = -127.0f;
  q8k::quantize_block(x, blk.data());
  CHECK(q8k::scale_of(blk.data()) == -1.0f);
  CHECK(q8k::q_of(blk.data())[0] == -127);
  CHECK(q8k::q_of(blk.data())[5] == 127);
}

TEST_CASE("q8_k's AVX2 path equals the scalar reference on every kind of block", "[quant][q8_k]") {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-40.0f, 38.0f);
  std::uniform_int_distribution<int> pick(0, 255);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::byte> a(q8k::block_bytes), b(q8k::block_bytes);
  float x[256];
  const int blocks = test::slow_build ? 2000 : 20000;
  for (int n = 0; n < blocks; ++n) {
    const float scale = std::pow(10.0f, e(gen));
    for (float& v : x) v = scale * u(gen);
    switch (n % 10) {
      case 0: std::fill(x, x + 256, 0.0f); break;                               // all zero
      case 1: std::fill(x, x + 256, 0.0f); x[pick(gen)] = -scale; break;        // one nonzero
      case 2: x[pick(gen)] = scale * 1e3f; break;                               // an outlier
      case 3: x[pick(gen)] = nan; break;                                        // a NaN
      case 4: x[pick(gen)] = (n % 20 < 10) ? inf : -inf; break;                 // an infinity
      case 5: for (float& v : x) v *= 1e-38f; break;                            // 127 / amax overflows
      case 6: for (int t = 0; t < 256; ++t) x[t] = static_cast<float>(t % 255 - 127) + 0.5f * (t % 2); break;
      case 7: x[3] = scale; x[9] = -scale; break;                               // a tie in magnitude
      default: break;
    }
    std::memset(a.data(), 0x11, a.size());
    std::memset(b.data(), 0x22, b.size());
    q8k::quantize_block_ref(x, a.data());
    q8k::quantize_block(x, b.data());
    INFO("block " << n << " kind " << n % 10 << ": first differing byte " << kq::first_difference(a.data(), b.data(), q8k::block_bytes));
    REQUIRE(kq::first_difference(a.data(), b.data(), q8k::block_bytes) == -1);
  }
}

TEST_CASE("q8_k prepare writes each activation row's blocks at its stride", "[quant][q8_k]") {
  constexpr std::int64_t m = 3, k = 768, ldx = 800;
  const auto x = test::ggml::padded_rows(kq::activations_for(m, k, 3), m, k, ldx);  // padding 1e9: never read
  auto acts = allocate_aligned<std::byte>(q8k::bytes(m, k));
  q8k::prepare(x.data(), ldx, m, k, acts.get());
  std::vector<std::byte> want(q8k::block_bytes);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t b = 0; b < k / 256; ++b) {
      q8k::quantize_block_ref(x.data() + i * ldx + b * 256, want.data());
      INFO("row " << i << " block " << b);
      CHECK(std::memcmp(q8k::activations::block_at(acts.get(), k, i, b), want.data(), want.size()) == 0);
    }
  CHECK(q8k::scale_of(q8k::activations::block_at(acts.get(), k, 0, 1)) == 0.0f);  // the all-zero super-block
}
