// Decoding speed: tokens per second of a GPT-2-small-shaped decoder (12 layers, d 768, 12 heads,
// ff 3072, vocab 50257, random weights) at batch 1 and 8 with 128 and 1024 tokens of context
// already in the KV cache, beside the bandwidth bound of reading every weight once per step:
// weight bytes / step time is reported as GB/s, to be read against bench_memory's DRAM figure.
// And the bundled date model (examples/data/dates) normalizing a batch of held-out-style inputs
// with greedy decoding and with 4 beams: output characters per second.
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

const models::decoder_lm<gpt2_spec>& gpt2_small() {
  static const models::decoder_lm<gpt2_spec> model = [] {
    models::model_config c;
    c.vocab = 50257, c.layers = 12, c.max_positions = 2048;
    c.layer.attention = {.d_model = 768, .heads = 12};
    c.layer.ffn = {.d_model = 768, .d_ff = 3072};
    models::decoder_lm<gpt2_spec> m(c);
    nn::init_random(m, 1);
    return m;
  }();
  return model;
}

// One decode step for `batch` sequences whose caches hold `context` tokens.
void BM_gpt2_decode_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0), context = state.range(1);
  set_num_threads(static_cast<int>(state.range(2)));
  const auto& model = gpt2_small();
  auto cache = model.make_state(batch, context + 1);
  tensor<std::int32_t> prompt(shape{batch, context});
  for (std::int64_t i = 0; i < prompt.numel(); ++i) prompt.data()[i] = static_cast<std::int32_t>((i * 7919) % 50257);
  (void)model.forward(prompt, {}, &cache);  // fill the cache
  tensor<std::int32_t> next(shape{batch, 1}, 42);
  for (auto _ : state) {
    for (std::int64_t b = 0; b < batch; ++b) cache.lengths(b) = static_cast<std::int32_t>(context);  // rewrite one slot
    const auto logits = model.forward(next, {}, &cache);
    benchmark::DoNotOptimize(logits.data());
  }
  auto& m = const_cast<models::decoder_lm<gpt2_spec>&>(model);
  const double weight_bytes = 4.0 * static_cast<double>(nn::count_parameters(m));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights_GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
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
BENCHMARK(BM_gpt2_decode_step)
    ->ArgNames({"batch", "context", "threads"})
    ->Args({1, 128, 1})->Args({1, 128, 2})->Args({8, 128, 2})->Args({1, 1024, 2})->Args({8, 1024, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  bench::add_common_context();
  return bench::run_main(argc, argv);
}
