// models::decoder_lm as GPT-2 and as Llama against Hugging Face (tiny, randomly initialised,
// padded batch), and incremental decoding through the KV cache against one full pass.
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/nn/parameters.hpp>

#include "catch.hpp"
#include "fixture.hpp"
#include "support.hpp"

using namespace tformer;

namespace {

struct gpt2_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};

struct llama_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};

models::model_config gpt2_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["n_layer"];
  c.max_positions = j["n_positions"];
  const std::int64_t d = j["n_embd"];
  c.layer.attention = {.d_model = d, .heads = j["n_head"]};
  c.layer.ffn = {.d_model = d, .d_ff = 4 * d, .bias = true};
  c.layer.norm_eps = j["layer_norm_epsilon"];
  return c;
}

models::model_config llama_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["num_hidden_layers"];
  const std::int64_t d = j["hidden_size"];
  c.layer.attention = {.d_model = d, .heads = j["num_attention_heads"], .kv_heads = j["num_key_value_heads"],
                       .head_dim = j["head_dim"], .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = d, .d_ff = j["intermediate_size"], .bias = false};
  c.layer.norm_eps = j["rms_norm_eps"];
  c.layer.rope = nn::rotary{.dim = 0, .base = j["rope_parameters"]["rope_theta"], .interleaved = false};
  return c;
}

template <class Model>
void check_parity(Model& model, const test::fixture& fx) {
  const auto ids = fx.i32("input_ids");
  const auto lengths = fx.i32("lengths");
  const auto logits = model.forward(ids, lengths);
  const auto want = fx.f32("logits");
  const double err = test::max_abs_diff(logits, want, lengths);
  INFO("logits max abs error " << err);
  CHECK(err <= 1e-4);  // logits of order 1; measured ~1e-6
  CHECK(test::same_argmax(logits, want, lengths));
}

// Feeds the padded batch one token per step through a cache (sequences that have ended add
// nothing) and compares every step's logits with the full pass.
template <class Model>
void check_incremental(Model& model, const test::fixture& fx) {
  const auto ids = fx.i32("input_ids");
  const auto lengths = fx.i32("lengths");
  const std::int64_t B = ids.dim(0), S = ids.dim(1), V = model.config.vocab;
  const auto full = model.forward(ids, lengths);
  auto cache = model.make_cache(B, S);
  for (std::int64_t s = 0; s < S; ++s) {
    tensor<std::int32_t> step(shape{B, 1}), n(shape{B});
    for (std::int64_t b = 0; b < B; ++b) {
      step(b, 0) = ids(b, s);
      n(b) = s < lengths(b) ? 1 : 0;
    }
    const auto logits = model.forward(step, n, &cache);
    for (std::int64_t b = 0; b < B; ++b) {
      if (s >= lengths(b)) continue;
      REQUIRE(cache.lengths(b) == s + 1);
      for (std::int64_t v = 0; v < V; ++v) REQUIRE(std::fabs(logits(b, 0, v) - full(b, s, v)) <= 1e-5f);
    }
  }
  // a prompt of two tokens, then steps: prefill and decode mix
  auto cache2 = model.make_cache(B, S);
  tensor<std::int32_t> prompt(shape{B, 2}), plen(shape{B});
  for (std::int64_t b = 0; b < B; ++b) {
    prompt(b, 0) = ids(b, 0);
    prompt(b, 1) = ids(b, 1);
    plen(b) = std::min<std::int32_t>(2, lengths(b));
  }
  const auto pre = model.forward(prompt, plen, &cache2);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < plen(b); ++s)
      for (std::int64_t v = 0; v < V; ++v) REQUIRE(std::fabs(pre(b, s, v) - full(b, s, v)) <= 1e-5f);
}

}  // namespace

TEST_CASE("GPT-2 decoder matches Hugging Face GPT2LMHeadModel", "[models][parity][gpt2]") {
  test::fixture fx("hf_gpt2");
  models::decoder_lm<gpt2_spec> gpt2(gpt2_config(fx.config));
  io::load_safetensors(gpt2, fx.model, io::hf_gpt2());
  check_parity(gpt2, fx);
  check_incremental(gpt2, fx);
}

TEST_CASE("Llama decoder (GQA + RoPE + SwiGLU) matches Hugging Face LlamaForCausalLM", "[models][parity][llama]") {
  test::fixture fx("hf_llama");
  models::decoder_lm<llama_spec> llama(llama_config(fx.config));
  io::load_safetensors(llama, fx.model, io::hf_llama());
  check_parity(llama, fx);
  check_incremental(llama, fx);
}

TEST_CASE("loading reports missing, extra and mis-shaped tensors by name", "[models][errors][io]") {
  test::fixture fx("hf_llama");
  auto c = llama_config(fx.config);
  c.layers = 3;  // the checkpoint has 2: layer 2's tensors are missing
  models::decoder_lm<llama_spec> too_deep(c);
  try {
    io::load_safetensors(too_deep, fx.model, io::hf_llama());
    FAIL("expected io_error");
  } catch (const io_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("missing tensor 'model.layers.2.self_attn.q_proj.weight'") != std::string::npos);
    CHECK(msg.find("hf_llama.model.safetensors") != std::string::npos);
  }
  auto c1 = llama_config(fx.config);
  c1.layers = 1;  // layer 1's tensors are extra
  models::decoder_lm<llama_spec> too_shallow(c1);
  const auto extra = test::thrown_message<io_error>([&] { io::load_safetensors(too_shallow, fx.model, io::hf_llama()); });
  CHECK(extra.find("extra tensor 'model.layers.1.mlp.up_proj.weight'") != std::string::npos);
  auto c2 = llama_config(fx.config);
  c2.layer.ffn.d_ff = 40;  // the checkpoint has 48
  models::decoder_lm<llama_spec> wrong_ff(c2);
  const auto shaped = test::thrown_message<io_error>([&] { io::load_safetensors(wrong_ff, fx.model, io::hf_llama()); });
  CHECK(shaped.find("has shape [48, 32] but parameter 'layers.0.ffn.gate.weight' needs [40, 32]") != std::string::npos);
}

TEST_CASE("decoder bad input: too long for the cache, wrong batch", "[models][errors]") {
  test::fixture fx("hf_gpt2");
  models::decoder_lm<gpt2_spec> gpt2(gpt2_config(fx.config));
  nn::init_random(gpt2, 1);
  auto cache = gpt2.make_cache(1, 4);
  tensor<std::int32_t> ids(shape{1, 5}, 3);
  CHECK_THROWS_AS(gpt2.forward(ids, {}, &cache), value_error);
  tensor<std::int32_t> ids2(shape{2, 1}, 3);
  CHECK_THROWS_AS(gpt2.forward(ids2, {}, &cache), shape_error);
}
