// ops::attention (tiled, online softmax) against a direct double-precision evaluation of
// softmax(scale q k^T + bias + mask) v with the full score matrix.
// Bound: |out - ref| <= 2e-6 + 2e-6 |ref| for inputs in [-1, 1] (float products over D <= 64 and an
// online softmax over <= 300 keys; measured errors are below 5e-7).
#include <tformer/ops/attention.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using tformer::test::random_tensor;

using tformer::shape;
using tformer::tensor;
using tformer::ops::attention_mask;

namespace {


using bias_fn = std::function<double(std::int64_t b, std::int64_t h, std::int64_t q, std::int64_t k)>;

// The definition, with the mask rules spelled out independently of the kernel.
std::vector<double> reference(const tensor<float>& q, const tensor<float>& k, const tensor<float>& v,
                              const attention_mask& m, double scale, const bias_fn& bias) {
  const auto B = q.dim(0), Sq = q.dim(1), Hq = q.dim(2), D = q.dim(3), Sk = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  std::vector<double> out(static_cast<std::size_t>(B * Sq * Hq * Dv), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < Hq; ++h) {
      const std::int64_t kh = h / (Hq / Hkv);
      const std::int64_t len = m.key_lengths.data() ? m.key_lengths(b) : Sk;
      for (std::int64_t i = 0; i < Sq; ++i) {
        const std::int64_t qp = (m.query_start.data() ? m.query_start(b) : m.query_offset) + i;
        std::vector<double> s(static_cast<std::size_t>(Sk), -INFINITY);
        double mx = -INFINITY;
        for (std::int64_t j = 0; j < len; ++j) {
          bool vis = true;
          if (m.causal && j > qp && j >= m.prefix) vis = false;
          const bool global = qp < m.global_tokens || j < m.global_tokens;
          if (m.window > 0 && !global && std::llabs(qp - j) >= m.window) vis = false;
          if (!vis) continue;
          double d = 0;
          for (std::int64_t c = 0; c < D; ++c) d += static_cast<double>(q(b, i, h, c)) * k(b, j, kh, c);
          s[static_cast<std::size_t>(j)] = d * scale + (bias ? bias(b, h, qp, j) : 0.0);
          mx = std::max(mx, s[static_cast<std::size_t>(j)]);
        }
        if (mx == -INFINITY) continue;  // sees nothing: zeros
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - mx));
        for (std::int64_t c = 0; c < Dv; ++c) {
          double acc = 0;
          for (std::int64_t j = 0; j < Sk; ++j) acc += s[static_cast<std::size_t>(j)] * v(b, j, kh, c);
          out[static_cast<std::size_t>(((b * Sq + i) * Hq + h) * Dv + c)] = acc / sum;
        }
      }
    }
  return out;
}

struct case_spec {
  std::int64_t B, Sq, Sk, Hq, Hkv, D;
};

void check(const case_spec& c, const attention_mask& m, tformer::ops::attention_tiles tiles, std::uint32_t seed,
           std::optional<float> scale = std::nullopt) {
  auto q = random_tensor(shape{c.B, c.Sq, c.Hq, c.D}, seed);
  auto k = random_tensor(shape{c.B, c.Sk, c.Hkv, c.D}, seed + 1);
  auto v = random_tensor(shape{c.B, c.Sk, c.Hkv, c.D}, seed + 2);
  tensor<float> out(shape{c.B, c.Sq, c.Hq, c.D}, 123.0f);
  tformer::ops::attention(q, k, v, out, m, scale, tformer::ops::no_bias{}, tiles);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  const auto ref = reference(q, k, v, m, sc, nullptr);
  for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(out.data()[i] - ref[i]) <= 2e-6 + 2e-6 * std::fabs(ref[i]));
}

// ALiBi-style test bias: slope_h * (k - q) with slope_h = 2^-(h+1).
struct alibi {
  static constexpr bool enabled = true;
  void add(std::int64_t, std::int64_t h, std::int64_t qp, std::int64_t k0, std::int64_t n, float* row) const {
    const float slope = std::pow(2.0f, -static_cast<float>(h + 1));
    for (std::int64_t i = 0; i < n; ++i) row[i] += slope * static_cast<float>(k0 + i - qp);
  }
};

}  // namespace

TEST_CASE("attention matches the definition for MHA, GQA and MQA across tile sizes", "[attention]") {
  const std::vector<case_spec> cases = {{1, 1, 1, 1, 1, 1}, {2, 5, 7, 4, 4, 8}, {2, 33, 33, 8, 2, 16},
                                        {1, 70, 300, 4, 1, 64}, {3, 1, 129, 6, 3, 32}};
  std::uint32_t seed = 10;
  for (const auto& c : cases)
    for (auto tiles : {tformer::ops::attention_tiles{}, tformer::ops::attention_tiles{3, 5}}) {
      INFO("B=" << c.B << " Sq=" << c.Sq << " Sk=" << c.Sk << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " D=" << c.D
                << " tiles " << tiles.query_block << "x" << tiles.key_block);
      check(c, {}, tiles, seed += 3);
      attention_mask causal;
      causal.causal = true;
      if (c.Sq == c.Sk) check(c, causal, tiles, seed += 3);
      check(c, {}, tiles, seed += 3, 1.0f);  // T5: no scaling
    }
}

TEST_CASE("attention masks: causal, padding, window, global tokens, prefix-LM, decode offsets", "[attention]") {
  const case_spec c{2, 40, 40, 4, 2, 16};
  tensor<std::int32_t> lens(shape{2});
  lens(0) = 40;
  lens(1) = 23;
  std::uint32_t seed = 100;
  for (auto tiles : {tformer::ops::attention_tiles{}, tformer::ops::attention_tiles{8, 16}, tformer::ops::attention_tiles{5, 3}}) {
    attention_mask m;
    m.key_lengths = lens;  // key padding
    check(c, m, tiles, seed += 3);
    m.causal = true;  // causal + padding
    check(c, m, tiles, seed += 3);
    m.window = 6;  // causal sliding window
    check(c, m, tiles, seed += 3);
    m.global_tokens = 3;  // with global tokens
    check(c, m, tiles, seed += 3);
    attention_mask bi;  // bidirectional window with global tokens
    bi.window = 5;
    check(c, bi, tiles, seed += 3);
    bi.global_tokens = 2;
    check(c, bi, tiles, seed += 3);
    attention_mask prefix;  // prefix-LM: bidirectional over the first 9, causal after
    prefix.causal = true;
    prefix.prefix = 9;
    check(c, prefix, tiles, seed += 3);
  }
  // decode: 1 or 3 new queries per sequence at per-sequence positions against a cache
  tensor<std::int32_t> start(shape{2});
  start(0) = 39;
  start(1) = 20;
  tensor<std::int32_t> lens3(shape{2});
  lens3(0) = 40;
  lens3(1) = 23;
  for (std::int64_t sq : {1, 3}) {
    attention_mask m;
    m.causal = true;
    m.query_start = start;
    m.key_lengths = lens3;
    check({2, sq, 40, 4, 2, 16}, m, {}, seed += 3);
  }
}

TEST_CASE("a query that sees no key gets zeros, never NaN", "[attention]") {
  auto q = random_tensor(shape{2, 4, 2, 8}, 1), k = random_tensor(shape{2, 6, 2, 8}, 2), v = random_tensor(shape{2, 6, 2, 8}, 3);
  tensor<std::int32_t> lens(shape{2});
  lens(0) = 0;  // an empty sequence in the batch
  lens(1) = 6;
  attention_mask m;
  m.key_lengths = lens;
  tensor<float> out(shape{2, 4, 2, 8}, 7.0f);
  tformer::ops::attention(q, k, v, out, m);
  for (std::int64_t i = 0; i < out[0].numel(); ++i) REQUIRE(out[0].data()[i] == 0.0f);
  for (std::int64_t i = 0; i < out[1].numel(); ++i) REQUIRE(std::isfinite(out[1].data()[i]));
}

TEST_CASE("attention reads a strided KV cache and applies a bias hook", "[attention]") {
  // cache [B, 64, Hkv, D], 29 valid positions; an ALiBi-style bias slope_h * (k - q)
  const std::int64_t B = 2, Smax = 64, S = 29, Hq = 4, Hkv = 2, D = 8;
  auto cache_k = random_tensor(shape{B, Smax, Hkv, D}, 41), cache_v = random_tensor(shape{B, Smax, Hkv, D}, 42);
  auto q = random_tensor(shape{B, S, Hq, D}, 43);
  attention_mask m;
  m.causal = true;
  auto k = cache_k.view().slice(1, 0, S), v = cache_v.view().slice(1, 0, S);
  tensor<float> out(shape{B, S, Hq, D});
  tformer::ops::attention(q, tformer::tensor_view<const float>(k), tformer::tensor_view<const float>(v), out, m,
                          std::nullopt, alibi{}, {8, 8});
  auto kc = tensor<float>::copy_of(k), vc = tensor<float>::copy_of(v);
  const auto ref = reference(q, kc, vc, m, 1.0 / std::sqrt(8.0), [](auto, auto h, auto qp, auto kp) {
    return std::pow(2.0, -static_cast<double>(h + 1)) * static_cast<double>(kp - qp);
  });
  for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(out.data()[i] - ref[i]) <= 2e-6 + 2e-6 * std::fabs(ref[i]));
}

TEST_CASE("attention reads keys from a position range and from a ring buffer", "[attention][state]") {
  const std::int64_t B = 2, Hq = 4, Hkv = 2, D = 8, R = 40, Sq = 3;
  const std::int64_t L[B] = {100, 57};  // positions held per sequence: [L - R, L) in a ring of R slots
  auto full_k = random_tensor(shape{B, 100, Hkv, D}, 51), full_v = random_tensor(shape{B, 100, Hkv, D}, 52);
  auto q = random_tensor(shape{B, Sq, Hq, D}, 53);
  tensor<float> ring_k(shape{B, R, Hkv, D}, 9.0f), ring_v(shape{B, R, Hkv, D}, 9.0f);
  tensor<std::int32_t> begin(shape{B}), end(shape{B}), qstart(shape{B});
  for (std::int64_t b = 0; b < B; ++b) {
    begin(b) = static_cast<std::int32_t>(L[b] - R), end(b) = static_cast<std::int32_t>(L[b]);
    qstart(b) = static_cast<std::int32_t>(L[b] - Sq);
    for (std::int64_t p = L[b] - R; p < L[b]; ++p)
      for (std::int64_t h = 0; h < Hkv; ++h)
        for (std::int64_t c = 0; c < D; ++c) {
          ring_k(b, p % R, h, c) = full_k(b, p, h, c);
          ring_v(b, p % R, h, c) = full_v(b, p, h, c);
        }
  }
  for (std::int64_t window : {std::int64_t{30}, std::int64_t{38}}) {  // every visible key is in the ring
    attention_mask m;
    m.causal = true;
    m.window = window;
    m.query_start = qstart;
    m.key_lengths = end;
    const auto ref = reference(q, full_k, full_v, m, 1.0 / std::sqrt(8.0), nullptr);
    m.key_begin = begin;
    m.ring = R;
    tensor<float> out(shape{B, Sq, Hq, D});
    tformer::ops::attention(q, ring_k, ring_v, out, m, std::nullopt, tformer::ops::no_bias{}, {2, 16});  // tiles wrap
    for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(out.data()[i] - ref[i]) <= 2e-6 + 2e-6 * std::fabs(ref[i]));
  }
  // a position range in a linear layout: keys [10, 40) equal a pass over those keys alone
  attention_mask m;
  m.causal = true;
  tensor<std::int32_t> b10(shape{B}, 10), e40(shape{B}, 40), q37(shape{B}, 37), q27(shape{B}, 27);
  m.key_begin = b10, m.key_lengths = e40, m.query_start = q37;
  tensor<float> out(shape{B, Sq, Hq, D});
  tformer::ops::attention(q, full_k, full_v, out, m);
  attention_mask shifted;
  shifted.causal = true;
  shifted.query_start = q27;
  auto k30 = tensor<float>::copy_of(full_k.view().slice(1, 10, 40)), v30 = tensor<float>::copy_of(full_v.view().slice(1, 10, 40));
  const auto ref = reference(q, k30, v30, shifted, 1.0 / std::sqrt(8.0), nullptr);
  for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(out.data()[i] - ref[i]) <= 2e-6 + 2e-6 * std::fabs(ref[i]));
  // a ring that cannot hold the range is refused
  m.ring = 20;
  CHECK_THROWS_AS(tformer::ops::attention(q, ring_k, ring_v, out, m), tformer::value_error);
}

TEST_CASE("attention gives identical bits for any thread count", "[attention][parallel]") {
  tformer::test::thread_guard guard;
  auto q = random_tensor(shape{2, 100, 4, 32}, 5), k = random_tensor(shape{2, 100, 2, 32}, 6), v = random_tensor(shape{2, 100, 2, 32}, 7);
  attention_mask m;
  m.causal = true;
  tensor<float> o1(shape{2, 100, 4, 32}), o2(shape{2, 100, 4, 32});
  tformer::set_num_threads(1);
  tformer::ops::attention(q, k, v, o1, m);
  tformer::set_num_threads(2);
  tformer::ops::attention(q, k, v, o2, m);
  REQUIRE(std::memcmp(o1.data(), o2.data(), static_cast<std::size_t>(o1.numel()) * 4) == 0);
}

TEST_CASE("attention rejects bad shapes and heads", "[attention]") {
  tensor<float> q(shape{1, 4, 6, 8}), k(shape{1, 5, 4, 8}), v(shape{1, 5, 4, 8}), out(shape{1, 4, 6, 8});
  CHECK_THROWS_AS(tformer::ops::attention(q, k, v, out), tformer::shape_error);  // 6 query heads, 4 kv heads
  tensor<float> k2(shape{1, 5, 3, 7}), v2(shape{1, 5, 3, 8});
  CHECK_THROWS_AS(tformer::ops::attention(q, k2, v2, out), tformer::shape_error);  // head dims differ
  tensor<float> q3(shape{4, 6, 8});
  CHECK_THROWS_AS(tformer::ops::attention(q3, k, v, out), tformer::shape_error);
  tensor<float> k3(shape{1, 5, 3, 8}), v3(shape{1, 5, 3, 8});
  tensor<std::int32_t> lens(shape{1}, 9);
  attention_mask m;
  m.key_lengths = lens;
  CHECK_THROWS_AS(tformer::ops::attention(q, k3, v3, out, m), tformer::value_error);  // 9 > Sk = 5
}
