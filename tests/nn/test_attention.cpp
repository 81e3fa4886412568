// nn::multi_head_attention against PyTorch's nn.MultiheadAttention (fixtures from
// tools/make_fixtures.py) and its own KV-cache and bad-configuration behaviour.
#include <tformer/io/name_maps.hpp>
#include <tformer/nn/attention.hpp>
#include <tformer/nn/parameters.hpp>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

TEST_CASE("self-attention with causal and padding masks matches nn.MultiheadAttention", "[attention][parity]") {
  test::fixture fx("torch_mha_self");
  nn::multi_head_attention<> mha(nn::attention_config{.d_model = 16, .heads = 4});
  io::load_safetensors(mha, fx.model, io::torch_multihead_attention());
  const auto x = fx.f32("x");
  const auto lengths = fx.i32("lengths");
  tensor<float> y(x.shape());
  ops::attention_mask mask;
  mask.causal = true;
  mha.forward(x, y, nn::sequence_info{lengths, {}}, mask);
  const double err = test::max_abs_diff(y, fx.f32("y"), lengths);
  INFO("max abs error " << err);
  CHECK(err <= 1e-5);  // outputs are O(1); measured ~1e-7
}

TEST_CASE("cross-attention with padding matches nn.MultiheadAttention", "[attention][parity]") {
  test::fixture fx("torch_mha_cross");
  nn::multi_head_attention<> mha(nn::attention_config{.d_model = 16, .heads = 4});
  io::load_safetensors(mha, fx.model, io::torch_multihead_attention());
  const auto q = fx.f32("q");
  nn::cross_kv memory;
  mha.project_kv(fx.f32("memory"), memory);
  tensor<float> y(q.shape());
  mha.forward_cross(q, y, memory, fx.i32("lengths"));
  const double err = test::max_abs_diff(y, fx.f32("y"));
  INFO("max abs error " << err);
  CHECK(err <= 1e-5);
}

TEST_CASE("self-attention through a KV cache, one token at a time, equals one full pass", "[attention][cache]") {
  test::fixture fx("torch_mha_self");
  nn::multi_head_attention<nn::rotary> mha(nn::attention_config{.d_model = 16, .heads = 4, .kv_heads = 2},
                                           nn::rotary{.dim = 2});  // GQA and partial rotary too
  nn::init_random(mha, 5);
  const auto x = fx.f32("x");  // [3, 7, 16]
  const auto lengths = fx.i32("lengths");
  ops::attention_mask causal;
  causal.causal = true;
  tensor<float> full(x.shape());
  mha.forward(x, full, nn::sequence_info{lengths, {}}, causal);

  auto cache = mha.make_state(3, 8);
  tensor<std::int32_t> start(shape{3}), one(shape{3});
  for (std::int64_t s = 0; s < 7; ++s) {
    tensor<float> step(shape{3, 1, 16}), out(shape{3, 1, 16});
    for (std::int64_t b = 0; b < 3; ++b) {
      std::copy_n(x.view()[b][s].data(), 16, step.view()[b][0].data());
      one(b) = s < lengths(b) ? 1 : 0;  // finished sequences add nothing
      start(b) = static_cast<std::int32_t>(std::min<std::int64_t>(s, lengths(b)));
    }
    mha.forward(step, out, nn::sequence_info{one, start}, causal, &cache);
    for (std::int64_t b = 0; b < 3; ++b)
      if (s < lengths(b))
        for (std::int64_t c = 0; c < 16; ++c) REQUIRE(std::fabs(out(b, 0, c) - full(b, s, c)) <= 1e-5f);
  }
}

TEST_CASE("attention configurations that cannot work are rejected by name", "[attention][errors]") {
  CHECK_THROWS_AS(nn::multi_head_attention<>(nn::attention_config{.d_model = 10, .heads = 3}), value_error);
  CHECK_THROWS_AS(nn::multi_head_attention<>(nn::attention_config{.d_model = 16, .heads = 4, .kv_heads = 3}), value_error);
  try {
    nn::multi_head_attention<>(nn::attention_config{.d_model = 16, .heads = 6, .kv_heads = 4, .head_dim = 4});
    FAIL("expected value_error");
  } catch (const value_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("attention") != std::string::npos);
    CHECK(msg.find("kv_heads (4)") != std::string::npos);
    CHECK(msg.find("heads (6)") != std::string::npos);
  }
  nn::multi_head_attention<> mha(nn::attention_config{.d_model = 16, .heads = 4});
  tensor<float> x(shape{2, 3, 12}), y(shape{2, 3, 16});
  CHECK_THROWS_AS(mha.forward(x, y, {}), shape_error);
  auto cache = mha.make_state(2, 2);
  tensor<float> x3(shape{2, 3, 16});
  CHECK_THROWS_AS(mha.forward(x3, y, {}, {}, &cache), value_error);  // 3 tokens into a cache of 2
}

TEST_CASE("QK-norm normalizes each query and key head before the scores", "[attention][qk_norm]") {
  const nn::attention_config c{.d_model = 16, .heads = 4, .kv_heads = 2, .qk_norm_eps = 1e-6f};
  nn::multi_head_attention<nn::no_rope, nn::f32_weights, nn::rms_norm> with_norm(c);
  nn::init_random(with_norm, 12);
  for (std::int64_t i = 0; i < 4; ++i) with_norm.k_norm.weight(i) = 0.5f + 0.25f * static_cast<float>(i);
  nn::multi_head_attention<> plain(c);
  nn::init_random(plain, 12);  // the same projections, no norm
  tensor<float> x(shape{1, 5, 16});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::cos(0.37 * static_cast<double>(i));
  tensor<float> y(shape{1, 5, 16});
  with_norm.forward(x, y, {});

  // by hand: project, RMS-normalize q and k per head, attend, project out
  tensor<float> q(shape{1, 5, 4, 4}), k(shape{1, 5, 2, 4}), v(shape{1, 5, 2, 4}), a(shape{1, 5, 4, 4}), want(shape{1, 5, 16});
  plain.q.forward(x, q.view().reshape(shape{1, 5, 16}));
  plain.k.forward(x, k.view().reshape(shape{1, 5, 8}));
  plain.v.forward(x, v.view().reshape(shape{1, 5, 8}));
  ops::rms_norm(q, with_norm.q_norm.weight, 1e-6f, q);
  ops::rms_norm(k, with_norm.k_norm.weight, 1e-6f, k);
  ops::attention(q, k, v, a);
  plain.o.forward(a.view().reshape(shape{1, 5, 16}), want);
  for (std::int64_t i = 0; i < y.numel(); ++i) REQUIRE(std::fabs(y.data()[i] - want.data()[i]) <= 1e-6f);
}
