// nn::quantized_kv_cache: attention over it equals attention over the float cache given the same
// keys and values rounded through the formats (the kernel's tile reader changes nothing else);
// decoding a model with an int8 / 4-bit / rotated 4-bit cache stays within stated bounds of the
// float cache; its memory per position; select; bad input.
#include <tformer/models/decoder.hpp>
#include <tformer/nn/kv_cache.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/nn/quantized_kv_cache.hpp>
#include <tformer/ops/attention.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/hadamard.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {

const nn::attention_config small{.d_model = 256, .heads = 4, .kv_heads = 2, .head_dim = 64};

/// x [B, n, H, D] with every head row rounded through format F.
template <class F>
tensor<float> round_trip(const tensor<float>& x) {
  tensor<float> out(x.shape());
  std::vector<std::byte> packed(static_cast<std::size_t>(quant::row_bytes<F>(x.dim(3))));
  for (std::int64_t r = 0; r < x.numel() / x.dim(3); ++r) {
    F::quantize_row(x.data() + r * x.dim(3), packed.data(), x.dim(3));
    F::dequantize_row(packed.data(), out.data() + r * x.dim(3), x.dim(3));
  }
  return out;
}

/// Attention of q [B, n, Hq, D] over a state's keys, queries at positions[b] onwards (causal).
tensor<float> attend(const nn::kv_view& kv, const tensor<float>& q, const tensor<std::int32_t>& positions) {
  tensor<float> out(q.shape());
  ops::attention_mask mask;
  mask.causal = true;
  mask.key_lengths = kv.end;
  mask.query_start = positions.view();
  ops::attention(q.view(), kv.k, kv.v, out.view(), mask, std::nullopt, {}, {}, nullptr, kv.reader);
  return out;
}

template <class KF, class VF>
void check_equals_rounded_float_cache() {
  const std::int64_t B = 2, cap = 300;
  nn::quantized_kv_cache<KF, VF> quantized(B, cap, small);
  nn::kv_cache rounded(B, cap, small);
  std::uint32_t seed = 1;
  // a prompt of 270 tokens (more than one key tile of 256) with 270 and 200 real, then 3 steps of one
  for (std::int64_t n : {270, 1, 1, 1}) {
    const tensor<float> k = test::random_tensor(shape{B, n, 2, 64}, seed++), v = test::random_tensor(shape{B, n, 2, 64}, seed++);
    const tensor<float> q = test::random_tensor(shape{B, n, 4, 64}, seed++);
    tensor<std::int32_t> counts(shape{B}), positions(shape{B});
    for (std::int64_t b = 0; b < B; ++b) {
      positions(b) = static_cast<std::int32_t>(rounded.end(b));
      counts(b) = static_cast<std::int32_t>(n == 270 && b == 1 ? 200 : n);
    }
    quantized.append(k.view(), v.view(), counts.view(), positions.view());
    rounded.append(round_trip<KF>(k).view(), round_trip<VF>(v).view(), counts.view(), positions.view());
    const tensor<float> got = attend(quantized.keys(), q, positions), want = attend(rounded.keys(), q, positions);
    double worst = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(got.data()[i] - want.data()[i])));
    INFO(KF::name << " / " << VF::name << ", append of " << n << ": max abs difference " << worst);
    CHECK(worst == 0);
  }
  CHECK(quantized.end(0) == 273);
  CHECK(quantized.end(1) == 203);
}

struct float_attention {
  using rope = nn::rotary;
};
template <class KF, class VF = KF>
struct quantized_attention {
  using rope = nn::rotary;
  using state = nn::quantized_kv_cache<KF, VF>;
};
template <class Attention>
struct spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::attention<Attention>, nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};

models::model_config config() {
  models::model_config c;
  c.vocab = 96, c.layers = 2;
  c.layer.attention = {.d_model = 128, .heads = 4, .kv_heads = 2, .qkv_bias = false, .out_bias = false};  // head_dim 32
  c.layer.ffn = {.d_model = 128, .d_ff = 192, .bias = false};
  return c;
}

/// Decodes 24 tokens after a 40-token prompt with Attention's state and with the float cache (the
/// same weights); returns the largest logit difference over the logits' largest magnitude.
template <class Attention>
double decode_difference(std::int64_t& bytes, std::int64_t& float_bytes) {
  models::decoder_lm<spec<Attention>> m(config());
  models::decoder_lm<spec<float_attention>> f(config());
  nn::init_random(m, 5);
  nn::init_random(f, 5);
  auto ms = m.make_state(1, 64);
  auto fs = f.make_state(1, 64);
  bytes = ms.bytes();
  float_bytes = fs.bytes();
  tensor<std::int32_t> prompt(shape{1, 40});
  for (std::int64_t i = 0; i < 40; ++i) prompt(0, i) = static_cast<std::int32_t>((i * 29 + 3) % 96);
  const tensor<float> a = m.forward(prompt, {}, &ms), b = f.forward(prompt, {}, &fs);
  double worst = 0, scale = 0;
  auto compare = [&](const float* x, const float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(x[i] - y[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(y[i])));
    }
  };
  compare(a.data(), b.data(), a.numel());
  tensor<float> la(shape{1, 1, 96}), lb(shape{1, 1, 96});
  for (std::int64_t t = 0; t < 24; ++t) {
    const tensor<std::int32_t> id(shape{1, 1}, static_cast<std::int32_t>((t * 13 + 7) % 96));
    m.forward(id, {}, ms, la);
    f.forward(id, {}, fs, lb);
    compare(la.data(), lb.data(), 96);
  }
  return worst / scale;
}

}  // namespace

TEST_CASE("attention over a quantized cache equals attention over the float cache of the rounded keys and values",
          "[state][quantized_kv_cache]") {
  check_equals_rounded_float_cache<quant::q8_0, quant::q8_0>();
  check_equals_rounded_float_cache<quant::q4_0, quant::q8_0>();
  check_equals_rounded_float_cache<quant::hadamard<quant::q4_0>, quant::q4_1>();
}

TEST_CASE("decoding with an int8 or 4-bit cache stays near the float cache, in a fraction of its memory",
          "[state][quantized_kv_cache]") {
  std::int64_t bytes = 0, float_bytes = 0;
  // measured (random weights): 7.3e-3 (q8_0), 0.10 (q4_0), 0.11 (rotated q4_0 keys); bounds at 1.5x
  const double q8 = decode_difference<quantized_attention<quant::q8_0>>(bytes, float_bytes);
  INFO("q8_0 cache: logits within " << q8 << " of their scale; " << bytes << " bytes vs " << float_bytes);
  CHECK(q8 < 0.011);
  CHECK(bytes * 3 < float_bytes);  // 34 / 128 of the rows' bytes, plus the positions
  const double q4 = decode_difference<quantized_attention<quant::q4_0>>(bytes, float_bytes);
  INFO("q4_0 cache: logits within " << q4 << " of their scale; " << bytes << " bytes");
  CHECK(q4 < 0.15);
  CHECK(bytes * 6 < float_bytes);
  const double rotated = decode_difference<quantized_attention<quant::hadamard<quant::q4_0, 32>, quant::q4_0>>(bytes, float_bytes);
  INFO("rotated q4_0 keys: logits within " << rotated << " of their scale");
  CHECK(rotated < 0.17);
}

TEST_CASE("quantized_kv_cache: memory per position, select, bad input", "[state][quantized_kv_cache]") {
  nn::quantized_kv_cache<quant::q8_0, quant::q4_0> c(3, 10, small);
  CHECK(c.bytes_per_position() == 2 * (68 + 36));
  CHECK(c.bytes() == 3 * 10 * c.bytes_per_position() + 12);
  const tensor<float> k = test::random_tensor(shape{3, 4, 2, 64}, 9), v = test::random_tensor(shape{3, 4, 2, 64}, 10);
  tensor<std::int32_t> counts(shape{3});
  counts(0) = 4, counts(1) = 2, counts(2) = 3;
  c.append(k.view(), v.view(), counts.view());
  std::vector<float> before(64), after(64);
  c.read(true, 2, 1, 2, 1, before.data());  // sequence 2, head 1, position 2
  const std::vector<std::int64_t> rows{2, 0};
  c.select(rows);
  REQUIRE(c.batch() == 2);
  CHECK(c.end(0) == 3);
  CHECK(c.end(1) == 4);
  c.read(true, 0, 1, 2, 1, after.data());
  CHECK(before == after);
  // the value rows came along too
  c.read(false, 1, 0, 3, 1, after.data());
  nn::quantized_kv_cache<quant::q8_0, quant::q4_0> fresh(1, 10, small);
  fresh.append(k.view().slice(0, 0, 1), v.view().slice(0, 0, 1));
  fresh.read(false, 0, 0, 3, 1, before.data());
  CHECK(before == after);

  const nn::attention_config odd{.d_model = 96, .heads = 2, .kv_heads = 2, .head_dim = 48};
  CHECK_THAT(test::thrown_message<shape_error>([&] { nn::quantized_kv_cache<quant::q8_0> bad(1, 4, odd); }),
             Catch::Matchers::Contains("head_dim 48 is not a multiple of q8_0's block of 32"));
  nn::quantized_kv_cache<quant::q8_0> full(1, 3, small);
  const tensor<float> four = test::random_tensor(shape{1, 4, 2, 64}, 11);
  CHECK_THAT(test::thrown_message<value_error>([&] { full.append(four.view(), four.view()); }),
             Catch::Matchers::Contains("needs 4 cached positions but the KV cache holds 3"));
  const tensor<float> wrong = test::random_tensor(shape{1, 1, 2, 32}, 12);
  CHECK_THROWS_AS(full.append(wrong.view(), wrong.view()), shape_error);
  static_assert(nn::attention_state<nn::quantized_kv_cache<quant::q8_0>>);
}
