// Blocks and layers at real sizes, each beside the machine's limit:
//  - BM_bert_layer: a BERT-base encoder layer (d 768, 12 heads, ff 3072) on 128 tokens, GFLOP/s;
//  - BM_llama_decode: one decode step of a Llama-style layer (TinyLlama-1.1B shapes: d 2048,
//    32 heads of 64, 4 KV heads, SwiGLU ff 5632) at context 512 and 4096, tokens/s and the bytes
//    of weights + KV cache read per step as GB/s (the step is bound by that traffic);
//  - BM_attention: exact tiled attention alone, 12 heads of 64, at seq 512, 2048, 8192, GFLOP/s and
//    the peak resident memory the call adds (it must grow linearly in seq, never as seq^2).
#include <tformer/tformer.hpp>

#include <fstream>
#include <string>

#include "bench_util.hpp"

using namespace tformer;

namespace {

// Resident-set high-water mark in bytes (VmHWM), and a reset of it (Linux: clear_refs 5).
std::int64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  return -1;
}
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

void BM_bert_layer(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  const std::int64_t S = 128, d = 768, ff = 3072, H = 12;
  nn::layer_config c;
  c.attention = {.d_model = d, .heads = H};
  c.ffn = {.d_model = d, .d_ff = ff};
  c.norm_eps = 1e-12f;
  nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>> layer(c);
  nn::init_random(layer, 1);
  const auto x0 = bench::random_tensor(shape{1, S, d}, 2);
  auto x = x0;
  for (auto _ : state) {
    std::copy_n(x0.data(), x0.numel(), x.data());
    layer.forward(x, {}, {});
    benchmark::DoNotOptimize(x.data());
  }
  const double flops = 2.0 * S * (4.0 * d * d + 2.0 * d * ff) + 4.0 * S * S * d;  // projections, FFN, QK^T and PV
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(num_threads());
}

void BM_llama_decode(benchmark::State& state) {
  const std::int64_t context = state.range(0);
  set_num_threads(static_cast<int>(state.range(1)));
  const std::int64_t d = 2048, H = 32, KV = 4, hd = 64, ff = 5632;
  nn::layer_config c;
  c.attention = {.d_model = d, .heads = H, .kv_heads = KV, .head_dim = hd, .qkv_bias = false, .out_bias = false};
  c.ffn = {.d_model = d, .d_ff = ff, .bias = false};
  c.norm_eps = 1e-5f;
  c.rope = nn::rotary{};
  nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>, nn::gated_mlp<simd::act::silu>> layer(c);
  nn::init_random(layer, 3);
  auto cache = layer.make_state(1, context + 1);
  cache.append(bench::random_tensor(shape{1, context, KV, hd}, 4), bench::random_tensor(shape{1, context, KV, hd}, 5));
  tensor<std::int32_t> start(shape{1}, static_cast<std::int32_t>(context)), one(shape{1}, 1);
  const auto x0 = bench::random_tensor(shape{1, 1, d}, 6);
  auto x = x0;
  ops::attention_mask causal;
  causal.causal = true;
  for (auto _ : state) {
    std::copy_n(x0.data(), d, x.data());
    layer.forward(x, nn::sequence_info{one, start}, causal, &cache);  // rewrites position `context` each time
    benchmark::DoNotOptimize(x.data());
  }
  const double weight_bytes = 4.0 * static_cast<double>(nn::count_parameters(layer));
  const double kv_bytes = 2.0 * 4.0 * static_cast<double>((context + 1) * KV * hd);
  state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter((weight_bytes + kv_bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MB/step"] = (weight_bytes + kv_bytes) * 1e-6;
  state.counters["threads"] = static_cast<double>(num_threads());
}

void BM_attention(benchmark::State& state) {
  const std::int64_t S = state.range(0), H = 12, D = 64;
  set_num_threads(static_cast<int>(state.range(1)));
  const auto q = bench::random_tensor(shape{1, S, H, D}, 7), k = bench::random_tensor(shape{1, S, H, D}, 8),
             v = bench::random_tensor(shape{1, S, H, D}, 9);
  tensor<float> out(shape{1, S, H, D});
  ops::attention(q, k, v, out);  // warm-up: thread pool and allocator
  const std::int64_t before = status_kib("VmRSS:");
  reset_peak();
  for (auto _ : state) {
    ops::attention(q, k, v, out);
    benchmark::DoNotOptimize(out.data());
  }
  const std::int64_t peak = status_kib("VmHWM:");
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * S * S * D * H * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["inputs_MiB"] = 4.0 * static_cast<double>(4 * S * H * D) / (1 << 20);  // q, k, v, out
  state.counters["peak_added_MiB"] = static_cast<double>(peak - before) / 1024.0;        // working memory of the call
  state.counters["process_peak_MiB"] = static_cast<double>(peak) / 1024.0;              // the whole process
  state.counters["SxS_MiB"] = 4.0 * static_cast<double>(S * S * H) / (1 << 20);          // what a score matrix would take
  state.counters["threads"] = static_cast<double>(num_threads());
}

}  // namespace

BENCHMARK(BM_bert_layer)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_decode)->Args({512, 1})->Args({512, 2})->Args({4096, 1})->Args({4096, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention)->Args({512, 1})->Args({512, 2})->Args({2048, 2})->Args({8192, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

int main(int argc, char** argv) {
  bench::add_common_context();
  return bench::run_main(argc, argv);
}
