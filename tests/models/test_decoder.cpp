// models::decoder_lm as GPT-2 and as Llama against Hugging Face (tiny, randomly initialised,
// padded batch), incremental decoding through the KV cache against one full pass, and the
// prefill that runs the head on each prompt's last token only (forward_last).
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/nn/parameters.hpp>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;
using test::gpt2_spec, test::llama_spec, test::gpt2_config, test::llama_config;

namespace {

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
  auto cache = model.make_state(B, S);
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
  auto cache2 = model.make_state(B, S);
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

// forward_last (a prompt's prefill, the head on each sequence's last real token) against Hugging
// Face's logits at that position, and the state it leaves against the full pass's next step.
template <class Model>
void check_forward_last(Model& model, const test::fixture& fx) {
  const auto ids = fx.i32("input_ids");
  const auto lengths = fx.i32("lengths");
  const auto want = fx.f32("logits");
  const std::int64_t B = ids.dim(0), S = ids.dim(1), V = model.config.vocab;
  auto cache = model.make_state(B, S + 1);
  tensor<float> last(shape{B, V});
  model.forward_last(ids, lengths, cache, last);
  for (std::int64_t b = 0; b < B; ++b) {
    REQUIRE(cache.lengths(b) == lengths(b));
    for (std::int64_t v = 0; v < V; ++v) REQUIRE(std::fabs(last(b, v) - want(b, lengths(b) - 1, v)) <= 1e-4f);
  }
  // the next token continues from the prefilled state as it does after forward()
  tensor<std::int32_t> next(shape{B, 1}, 5);
  auto cache2 = model.make_state(B, S + 1);
  (void)model.forward(ids, lengths, &cache2);
  const auto a = model.forward(next, {}, &cache), b2 = model.forward(next, {}, &cache2);
  for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b2.data()[i]);
  // bad input: logits of the wrong shape, a sequence without tokens
  auto cache3 = model.make_state(B, S + 1);
  tensor<float> wrong(shape{B, V + 1});
  CHECK_THROWS_AS(model.forward_last(ids, lengths, cache3, wrong), shape_error);
  tensor<std::int32_t> empty = lengths;
  empty(0) = 0;
  CHECK_THROWS_AS(model.forward_last(ids, empty, cache3, last), shape_error);
  tensor<std::int32_t> no_positions(shape{B, 0}), short_lengths(shape{B - 1}, 1);
  CHECK_THROWS_AS(model.forward_last(no_positions, {}, cache3, last), shape_error);
  CHECK_THROWS_AS(model.forward_last(ids, short_lengths, cache3, last), shape_error);
}

}  // namespace

TEST_CASE("GPT-2 decoder matches Hugging Face GPT2LMHeadModel", "[models][parity][gpt2]") {
  test::fixture fx("hf_gpt2");
  models::decoder_lm<gpt2_spec> gpt2(gpt2_config(fx.config));
  io::load_safetensors(gpt2, fx.model, io::hf_gpt2());
  check_parity(gpt2, fx);
  check_incremental(gpt2, fx);
  check_forward_last(gpt2, fx);
}

TEST_CASE("Llama decoder (GQA + RoPE + SwiGLU) matches Hugging Face LlamaForCausalLM", "[models][parity][llama]") {
  test::fixture fx("hf_llama");
  models::decoder_lm<llama_spec> llama(llama_config(fx.config));
  io::load_safetensors(llama, fx.model, io::hf_llama());
  check_parity(llama, fx);
  check_incremental(llama, fx);
  check_forward_last(llama, fx);
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
  auto cache = gpt2.make_state(1, 4);
  tensor<std::int32_t> ids(shape{1, 5}, 3);
  CHECK_THROWS_AS(gpt2.forward(ids, {}, &cache), value_error);
  tensor<std::int32_t> ids2(shape{2, 1}, 3);
  CHECK_THROWS_AS(gpt2.forward(ids2, {}, &cache), shape_error);
}
