// Stacks that mix layer types (models::layer_types with the spec's layer_type rule) and per-layer
// settings (model_config::layer_rule): the model equals its layers run one by one, and decoding
// through the per-layer states equals one full pass.
#include <tformer/models/decoder.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/nn/sliding_window_cache.hpp>

#include <cmath>
#include <type_traits>
#include <variant>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
using sequential = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                         nn::gated_mlp<simd::act::silu>>;
using parallel = nn::parallel_layer<nn::rms_norm, nn::multi_head_attention<nn::rotary>, nn::mlp<simd::act::gelu>>;

// layers 0, 1, 3: sequential; layer 2: parallel
struct mixed_spec {
  using layers = models::layer_types<sequential, parallel>;
  static std::size_t layer_type(std::int64_t i) { return i == 2 ? 1 : 0; }
  using final_norm = nn::rms_norm;
};

models::model_config config() {
  models::model_config c;
  c.vocab = 48, c.layers = 4;
  c.layer.attention = {.d_model = 32, .heads = 4, .kv_heads = 2, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 32, .d_ff = 48, .bias = false};
  c.layer_rule = [](std::int64_t i, nn::layer_config& l) { l.attention.window = i % 2 == 0 ? 3 : 0; };  // local, global, ...
  return c;
}
}  // namespace

static_assert(std::is_same_v<models::decoder_lm<mixed_spec>::stack_type::layer_type, std::variant<sequential, parallel>>);

TEST_CASE("a mixed stack runs each layer as its own type with its own settings", "[models][stack]") {
  models::decoder_lm<mixed_spec> m(config());
  nn::init_random(m, 21);
  REQUIRE(m.stack.layers.size() == 4);
  CHECK(m.stack.layers[0].index() == 0);
  CHECK(m.stack.layers[2].index() == 1);
  CHECK(std::get<0>(m.stack.layers[0]).self_attn.config.window == 3);
  CHECK(std::get<0>(m.stack.layers[1]).self_attn.config.window == 0);
  CHECK(nn::parameter_names(m).size() == nn::parameter_names(m).size());

  tensor<std::int32_t> ids(shape{2, 9}), lengths(shape{2});
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<std::int32_t>((i * 5 + 1) % 48);
  lengths(0) = 9, lengths(1) = 6;
  const auto logits = m.forward(ids, lengths);

  // the same by hand: embed, each layer as its type, final norm, head
  tensor<float> x(shape{2, 9, 32}), want(shape{2, 9, 48});
  m.embed.forward(ids, {}, x);
  ops::attention_mask causal;
  causal.causal = true;
  for (std::size_t i = 0; i < 4; ++i)
    std::visit([&](const auto& l) { l.forward(x, nn::sequence_info{lengths, {}}, causal); }, m.stack.layers[i]);
  m.stack.final_norm.forward(x, x);
  m.head(x, want);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t s = 0; s < lengths(b); ++s)
      for (std::int64_t v = 0; v < 48; ++v) REQUIRE(logits(b, s, v) == want(b, s, v));

  // one token per step through the states equals the full pass (windows applied by each layer)
  auto state = m.make_state(2, 9);
  CHECK(state.layers[2].index() == 1);
  for (std::int64_t s = 0; s < 9; ++s) {
    tensor<std::int32_t> step(shape{2, 1}), n(shape{2});
    for (std::int64_t b = 0; b < 2; ++b) {
      step(b, 0) = ids(b, s);
      n(b) = s < lengths(b) ? 1 : 0;
    }
    const auto out = m.forward(step, n, &state);
    for (std::int64_t b = 0; b < 2; ++b)
      if (s < lengths(b))
        for (std::int64_t v = 0; v < 48; ++v) REQUIRE(std::fabs(out(b, 0, v) - logits(b, s, v)) <= 1e-5f);
  }
}

TEST_CASE("a layer_type rule outside the list is refused", "[models][stack][errors]") {
  struct bad_spec {
    using layers = models::layer_types<sequential, parallel>;
    static std::size_t layer_type(std::int64_t i) { return static_cast<std::size_t>(i); }
  };
  CHECK_THROWS_AS(models::decoder_lm<bad_spec>(config()), value_error);
}

// ---- the README's alternating local / global decoder (Gemma 2 style) ---------------------------
namespace {
struct local_attention {  // sliding window: a ring buffer of the last `window` keys
  using rope = nn::rotary;
  using state = nn::sliding_window_cache;
};
using local_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::attention<local_attention>,
                                          nn::gated_mlp<simd::act::gelu_tanh>>;
using global_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                           nn::gated_mlp<simd::act::gelu_tanh>>;
struct gemma2_style_spec {
  using layers = models::layer_types<local_layer, global_layer>;  // layer i: local when i is even
  using final_norm = nn::rms_norm;
  static constexpr bool tie_embeddings = true;
};
// The same model with a full cache everywhere: the reference.
struct full_cache_spec {
  using layer = global_layer;
  using final_norm = nn::rms_norm;
  static constexpr bool tie_embeddings = true;
};
models::model_config alternating_config(std::int64_t window) {
  models::model_config c;
  c.vocab = 96, c.layers = 4;
  c.layer.attention = {.d_model = 32, .heads = 4, .kv_heads = 1, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 32, .d_ff = 64, .bias = false};
  c.layer_rule = [window](std::int64_t i, nn::layer_config& l) { l.attention.window = i % 2 == 0 ? window : 0; };
  return c;
}
}  // namespace

TEST_CASE("the alternating local/global decoder of the README equals a full-mask reference", "[models][stack][readme]") {
  constexpr std::int64_t window = 16, steps = 300;
  models::decoder_lm<gemma2_style_spec> model(alternating_config(window));
  models::decoder_lm<full_cache_spec> reference(alternating_config(window));
  nn::init_random(model, 5);
  nn::init_random(reference, 5);  // same names and shapes: the same weights
  tensor<std::int32_t> ids(shape{1, steps});
  for (std::int64_t i = 0; i < steps; ++i) ids.data()[i] = static_cast<std::int32_t>((i * 29 + i / 3) % 96);
  const auto full = reference.forward(ids);  // one pass, every window applied by the mask: [1, steps, vocab]

  auto state = model.make_state(1, steps);  // local layers: a ring of window - 1 + 64 slots
  CHECK(state.layers[0].index() == 0);
  CHECK(state.layers[1].index() == 1);
  const auto local_bytes = std::visit([](const auto& s) { return s.bytes(); }, state.layers[0]);
  const auto global_bytes = std::visit([](const auto& s) { return s.bytes(); }, state.layers[1]);
  CHECK(local_bytes * 3 < global_bytes);
  tensor<std::int32_t> prompt(shape{1, 40});  // longer than the window
  std::copy_n(ids.data(), 40, prompt.data());
  const auto first = model.forward(prompt, {}, &state);
  double worst = 0;
  for (std::int64_t s = 0; s < 40; ++s)
    for (std::int64_t v = 0; v < 96; ++v) worst = std::max(worst, static_cast<double>(std::fabs(first(0, s, v) - full(0, s, v))));
  tensor<float> logits(shape{1, 1, 96});
  for (std::int64_t s = 40; s < steps; ++s) {
    const tensor<std::int32_t> id(shape{1, 1}, ids(0, s));
    model.forward(id, {}, state, logits);
    for (std::int64_t v = 0; v < 96; ++v) worst = std::max(worst, static_cast<double>(std::fabs(logits(0, 0, v) - full(0, s, v))));
  }
  INFO("max abs difference " << worst);
  CHECK(worst <= 1e-5);
}
