// nn::sliding_window_cache: a ring buffer whose memory stays O(window) however long the sequence,
// against the full cache under the same window mask; its slots, its errors, select.
#include <tformer/models/decoder.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/nn/sliding_window_cache.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
struct ring_attention {
  using rope = nn::rotary;
  using state = nn::sliding_window_cache;
};
struct full_attention {
  using rope = nn::rotary;
};
template <class Attention>
struct spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::attention<Attention>, nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};

models::model_config config(std::int64_t window) {
  models::model_config c;
  c.vocab = 64, c.layers = 2;
  c.layer.attention = {.d_model = 32, .heads = 4, .kv_heads = 2, .qkv_bias = false, .out_bias = false, .window = window};
  c.layer.ffn = {.d_model = 32, .d_ff = 48, .bias = false};
  return c;
}

const nn::attention_config small{.d_model = 8, .heads = 2, .kv_heads = 1, .head_dim = 4, .window = 5};
}  // namespace

TEST_CASE("decoding 4096 tokens through a window-256 ring equals the full cache under the window mask",
          "[state][sliding_window]") {
  constexpr std::int64_t window = 256, steps = 4096, prompt = 600;
  models::decoder_lm<spec<ring_attention>> ring(config(window));
  models::decoder_lm<spec<full_attention>> full(config(window));
  nn::init_random(ring, 17);
  nn::init_random(full, 17);  // the same weights: the two specs differ only in the state kind
  auto ring_state = ring.make_state(1, steps);
  auto full_state = full.make_state(1, steps);
  const auto ring_bytes = ring_state.bytes();
  CHECK(ring_bytes == ring.make_state(1, 1 << 20).bytes());  // independent of the length it may reach
  CHECK(ring_bytes * 8 < full_state.bytes());
  INFO("ring bytes " << ring_bytes << ", full cache bytes " << full_state.bytes());

  std::vector<std::int32_t> tokens(steps);
  for (std::int64_t i = 0; i < steps; ++i) tokens[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 37 + i / 7) % 64);
  // a prompt longer than the window (the ring takes it in chunks), then one token per step
  tensor<std::int32_t> head(shape{1, prompt});
  std::copy_n(tokens.begin(), prompt, head.data());
  const auto a = ring.forward(head, {}, &ring_state), b = full.forward(head, {}, &full_state);
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(a.data()[i] - b.data()[i])));
  tensor<float> la(shape{1, 1, 64}), lb(shape{1, 1, 64});
  for (std::int64_t t = prompt; t < steps; ++t) {
    const tensor<std::int32_t> id(shape{1, 1}, tokens[static_cast<std::size_t>(t)]);
    ring.forward(id, {}, ring_state, la);
    full.forward(id, {}, full_state, lb);
    for (std::int64_t v = 0; v < 64; ++v) worst = std::max(worst, static_cast<double>(std::fabs(la(0, 0, v) - lb(0, 0, v))));
  }
  INFO("max abs difference over " << steps << " positions: " << worst);
  CHECK(worst <= 1e-5);
  CHECK(ring_state.bytes() == ring_bytes);  // constant memory
  CHECK(ring_state.lengths(0) == steps);
}

TEST_CASE("the ring keeps positions [end - slots, end) at slot position % slots", "[state][sliding_window]") {
  nn::sliding_window_cache ring(1, 1000, small);
  CHECK(ring.slots() == 5 - 1 + nn::sliding_window_cache::default_chunk);
  CHECK(ring.max_append() == nn::sliding_window_cache::default_chunk);
  const std::int64_t S = ring.slots();
  for (std::int64_t p = 0; p < 3 * S; p += 7) {
    auto k = test::random_tensor(shape{1, 7, 1, 4}, static_cast<std::uint32_t>(p));
    ring.append(k, k);
    const auto kv = ring.keys();
    CHECK(kv.ring == S);
    CHECK(kv.end(0) == p + 7);
    CHECK(kv.begin(0) == std::max<std::int64_t>(0, p + 7 - S));
    CHECK(kv.k(0, (p + 6) % S, 0, 3) == k(0, 6, 0, 3));
  }
  // a short capacity holds whole sequences like a full cache
  nn::sliding_window_cache tiny(2, 3, small);
  CHECK(tiny.slots() == 3);
  CHECK(tiny.max_append() == 3);
}

TEST_CASE("the ring refuses what would lose keys a query needs", "[state][sliding_window][errors]") {
  CHECK_THROWS_AS(nn::sliding_window_cache(1, 10, nn::attention_config{.d_model = 8, .heads = 2, .kv_heads = 1, .head_dim = 4}),
                  value_error);  // no window
  nn::sliding_window_cache ring(1, 1000, small);
  const auto big = test::random_tensor(shape{1, 80, 1, 4}, 1);
  const auto msg = test::thrown_message<value_error>([&] { ring.append(big, big); });
  CHECK(msg.find("need positions [0, 80) but the ring holds 68") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    const auto k = test::random_tensor(shape{1, 60, 1, 4}, 2);
    ring.append(k, k);  // positions 0 .. 179
  }
  tensor<std::int32_t> back(shape{1}, 100);  // the window of position 100 (96..100) was overwritten
  const auto one = test::random_tensor(shape{1, 1, 1, 4}, 3);
  CHECK_THROWS_AS(ring.append(one, one, {}, back), value_error);
  tensor<std::int32_t> recent(shape{1}, 178);  // rewriting a recent position is fine
  ring.append(one, one, {}, recent);
  CHECK(ring.keys().end(0) == 179);
}

TEST_CASE("select keeps ring rows for beams", "[state][sliding_window]") {
  nn::sliding_window_cache ring(2, 100, small);
  const auto k = test::random_tensor(shape{2, 9, 1, 4}, 4);
  ring.append(k, k);
  const std::vector<std::int64_t> rows = {1, 1, 0};
  ring.select(rows);
  CHECK(ring.batch() == 3);
  CHECK(ring.keys().k(1, 8, 0, 0) == k(1, 8, 0, 0));
  CHECK(ring.keys().k(2, 8, 0, 0) == k(0, 8, 0, 0));
}
