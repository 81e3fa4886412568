// Decoding speed: tokens per second of a GPT-2-small-shaped decoder (12 layers, d 768, 12 heads,
// ff 3072, vocab 50257, random weights) at batch 1 and 8 with 128 and 1024 tokens of context
// already in the KV cache, beside the bandwidth bound of reading every weight once per step:
// weight bytes / step time is reported as GB/s, to be read against bench_memory's DRAM figure.
// The same model in Q8_0 (every linear and the tied table: 1/3.76 of the f32 bytes), checked
// against the f32 model first, for the tokens/s ratio: with float activations (the default) and
// with int8 activations (quant::int8_activations: the fused VNNI product). A sliding-window decoder (window 256) with
// its ring-buffer state against the full cache: the state's bytes stay constant as the context
// grows. And the bundled date model (examples/data/dates) normalizing a batch of held-out-style
// inputs with greedy decoding and with 4 beams: output characters per second.
#include <tformer/generate/search.hpp>
#include <tformer/tformer.hpp>

#include "../examples/dates_model.hpp"
#include "bench_util.hpp"

using namespace tformer;

namespace {

struct gpt2_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};
struct gpt2_q8_0_spec : gpt2_spec {
  using weights = quant::q8_0;  // every linear and the tied embedding table / head; float activations
};
struct gpt2_q8_0_int8_spec : gpt2_spec {
  using weights = quant::int8_activations<quant::q8_0>;  // decode through the fused int8 product
};

template <class Spec>
const models::decoder_lm<Spec>& gpt2_small() {
  static const models::decoder_lm<Spec> model = [] {
    models::model_config c;
    c.vocab = 50257, c.layers = 12, c.max_positions = 2048;
    c.layer.attention = {.d_model = 768, .heads = 12};
    c.layer.ffn = {.d_model = 768, .d_ff = 3072};
    models::decoder_lm<Spec> m(c);
    nn::init_random(m, 1);  // the same float weights for every format, then quantized
    return m;
  }();
  return model;
}

// Logits of a short prompt, for checking one format against f32.
template <class Spec>
tensor<float> gpt2_probe_logits() {
  tensor<std::int32_t> ids(shape{1, 6});
  for (std::int64_t i = 0; i < 6; ++i) ids(0, i) = static_cast<std::int32_t>(100 + 977 * i);
  return gpt2_small<Spec>().forward(ids);
}

// One decode step for `batch` sequences whose caches hold `context` tokens.
template <class Spec>
void BM_gpt2_decode_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0), context = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  const auto& model = gpt2_small<Spec>();
  if constexpr (!std::is_same_v<Spec, gpt2_spec>) {  // validate against f32 first
    static const double err = [] {
      const auto got = gpt2_probe_logits<Spec>(), want = gpt2_probe_logits<gpt2_spec>();
      return bench::max_rel_diff(got.data(), want.data(), static_cast<std::size_t>(got.numel()));
    }();
    state.counters["max_rel_err_vs_f32"] = err;
    if (!(err <= 0.05)) {
      state.SkipWithError(("logits differ from the f32 model's by " + std::to_string(err) + " of their range").c_str());
      return;
    }
  }
  auto cache = model.make_state(batch, context + 1);
  tensor<std::int32_t> prompt(shape{batch, context});
  for (std::int64_t i = 0; i < prompt.numel(); ++i) prompt.data()[i] = static_cast<std::int32_t>((i * 7919) % 50257);
  (void)model.forward(prompt, {}, &cache);  // fill the cache
  tensor<std::int32_t> next(shape{batch, 1}, 42);
  tensor<float> logits(shape{batch, 1, 50257});
  for (auto _ : state) {
    for (std::int64_t b = 0; b < batch; ++b) cache.lengths(b) = static_cast<std::int32_t>(context);  // rewrite one slot
    model.forward(next, {}, cache, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  auto& m = const_cast<models::decoder_lm<Spec>&>(model);
  const double weight_bytes = static_cast<double>(nn::parameter_bytes(m));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights_GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights_MB"] = weight_bytes * 1e-6;
  state.counters["threads"] = static_cast<double>(num_threads());
}

// ---- sliding window: a ring-buffer state against the full cache -----------------------------------
struct ring_attention {
  using rope = nn::rotary;
  using state = nn::sliding_window_cache;
};
template <class Attention>
struct window_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::attention<Attention>, nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};
struct full_attention {
  using rope = nn::rotary;  // the default state: nn::kv_cache
};
using ring_spec = window_spec<ring_attention>;
using full_spec = window_spec<full_attention>;

template <class Spec>
const models::decoder_lm<Spec>& window_model() {
  static const models::decoder_lm<Spec> model = [] {
    models::model_config c;
    c.vocab = 32000, c.layers = 8;
    c.layer.attention = {.d_model = 512, .heads = 8, .kv_heads = 2, .qkv_bias = false, .out_bias = false, .window = 256};
    c.layer.ffn = {.d_model = 512, .d_ff = 1408, .bias = false};
    models::decoder_lm<Spec> m(c);
    nn::init_random(m, 2);
    return m;
  }();
  return model;
}

// One decode step after `context` tokens with window 256: the ring's state stays the same size.
template <class Spec>
void BM_window_decode_step(benchmark::State& state) {
  const std::int64_t context = state.range(0);
  set_num_threads(static_cast<int>(state.range(1)));
  const auto& model = window_model<Spec>();
  auto st = model.make_state(1, context + 1);
  tensor<std::int32_t> prompt(shape{1, context});
  for (std::int64_t i = 0; i < context; ++i) prompt.data()[i] = static_cast<std::int32_t>((i * 7919) % 32000);
  (void)model.forward(prompt, {}, &st);
  tensor<std::int32_t> next(shape{1, 1}, 42);
  tensor<float> logits(shape{1, 1, 32000});
  if constexpr (std::is_same_v<Spec, ring_spec>) {  // validate: the ring gives the full cache's logits
    auto full = window_model<full_spec>().make_state(1, context + 1);
    (void)window_model<full_spec>().forward(prompt, {}, &full);
    tensor<float> want(shape{1, 1, 32000});
    window_model<full_spec>().forward(next, {}, full, want);
    model.forward(next, {}, st, logits);
    st.lengths(0) = static_cast<std::int32_t>(context);
    const double err = bench::max_rel_diff(logits.data(), want.data(), 32000);
    state.counters["max_rel_err_vs_full"] = err;
    if (!(err <= 1e-5)) {
      state.SkipWithError(("the ring's logits differ from the full cache's by " + std::to_string(err)).c_str());
      return;
    }
  }
  for (auto _ : state) {
    st.lengths(0) = static_cast<std::int32_t>(context);  // rewrite the same position each time
    model.forward(next, {}, st, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["state_MB"] = static_cast<double>(st.bytes()) * 1e-6;
  state.counters["threads"] = static_cast<double>(num_threads());
}

// The bundled model on 32 inputs in one batch: greedy (beams 1) or beam search (beams 4).
void BM_dates(benchmark::State& state) {
  static const auto model = dates::bundle::load(TFORMER_DATES_MODEL_DIR);
  set_num_threads(static_cast<int>(state.range(1)));
  const std::vector<std::string> forms = {"Tuesday, March 5th 2024", "5 Mar 2024", "the 31st of December, 1999",
                                          "July 4, 1976", "2001-09-11", "Feb 29 2000", "1 January 1900",
                                          "October 12th, 2099"};
  std::vector<std::string> lines;
  for (int i = 0; i < 4; ++i) lines.insert(lines.end(), forms.begin(), forms.end());
  auto o = model.options();
  o.num_beams = state.range(0);
  std::size_t chars = 0;
  for (auto _ : state) {
    const auto out = model.normalize(lines, o);
    chars = 0;
    for (const auto& s : out) chars += s.size() + 1;  // and the end token
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["sequences/s"] = benchmark::Counter(static_cast<double>(lines.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(chars), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(num_threads());
}

}  // namespace

BENCHMARK(BM_dates)->ArgNames({"beams", "threads"})->Args({1, 1})->Args({1, 2})->Args({4, 1})->Args({4, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gpt2_decode_step<gpt2_spec>)
    ->Name("BM_gpt2_decode_step/f32")
    ->ArgNames({"batch", "context", "threads"})
    ->Args({1, 128, 1})->Args({1, 128, 2})->Args({8, 128, 2})->Args({1, 1024, 2})->Args({8, 1024, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gpt2_decode_step<gpt2_q8_0_spec>)
    ->Name("BM_gpt2_decode_step/q8_0")
    ->ArgNames({"batch", "context", "threads"})
    ->Args({1, 128, 1})->Args({1, 128, 2})->Args({8, 128, 2})->Args({1, 1024, 2})->Args({8, 1024, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gpt2_decode_step<gpt2_q8_0_int8_spec>)
    ->Name("BM_gpt2_decode_step/q8_0_int8")
    ->ArgNames({"batch", "context", "threads"})
    ->Args({1, 128, 1})->Args({1, 128, 2})->Args({8, 128, 2})->Args({1, 1024, 2})->Args({8, 1024, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_window_decode_step<ring_spec>)
    ->Name("BM_window_decode_step/ring")
    ->ArgNames({"context", "threads"})
    ->Args({512, 1})->Args({4096, 1})->Args({16384, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_window_decode_step<full_spec>)
    ->Name("BM_window_decode_step/full")
    ->ArgNames({"context", "threads"})
    ->Args({512, 1})->Args({4096, 1})->Args({16384, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  bench::add_common_context();
  return bench::run_main(argc, argv);
}
