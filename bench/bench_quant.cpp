// Quantized weights at work: every weight format tformer knows (quant::known), through the linears
// of a SmolLM2-135M-shaped stack, beside the memory read bandwidth at the same footprint and the
// FP32 FMA peak, both measured in the same run.
//
//   quant/decode/<format>/t:<t>        one token (M = 1) through the 30 layers' 7 linears (q, o
//                                      576 x 576; k, v 192 x 576; gate, up 1536 x 576; down
//                                      576 x 1536): float activations, F's float product.
//                                      BYTES = packed weight bytes read per token / s
//   quant/decode_int8/<format>/t:<t>   the same through int8_activations<F> (F's fused integer
//                                      product: activations rounded to int8 per block), where F has one
//   quant/decode_cached/<format>/t:1   one layer's 7 linears over and over (1.2-14 MB, in the cache):
//   quant/decode_int8_cached/...       the kernels' speed without DRAM, which tells whether a
//                                      decode figure below the read bandwidth is bound by compute
//   mem/read/<KiB>KiB/t:<t>            the read probe (bandwidth.hpp) over each format's footprint
//   quant/prefill/<format>/t:<t>       128 tokens (M = 128) through one layer's 7 linears:
//                                      dequantized tiles into the float GEMM. FLOPS = 2 M weights / s
//   quant/prefill_int8/<format>/t:<t>  the same 128 tokens through int8_activations<F>'s fused
//                                      integer product (VNNI where compiled), max_fused_rows rows
//                                      per call: the integer alternative to the float GEMM (for a
//                                      packed_fused_format, int8_channel where AVX-512 VNNI is
//                                      compiled, ops::linear runs its packed product on them)
//   fma_peak/t:<t>                     the FP32 FMA ceiling (peak.hpp)
//
// One layer's float weights are drawn once, quantized once per format, and their bytes copied into
// every layer (the traffic of 30 distinct layers, one quantization). Before timing, each case
// checks its product on layer 0 against the float product of the dequantized weights (decode:
// <= 1e-4 of max |y| for float activations, <= 5e-2 for int8 activations; prefill: <= 1e-4).
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bandwidth.hpp"
#include "bench_util.hpp"
#include "peak.hpp"

namespace {

using tformer::shape;
using tformer::tensor;
namespace quant = tformer::quant;

constexpr int thread_counts[] = {1, 2};
constexpr std::int64_t layers = 30;
constexpr std::int64_t prefill_rows = 128;
struct linear_shape {
  std::int64_t n, k;  // W [n, k]
};
// SmolLM2-135M: d 576, 9 heads / 3 kv heads of 64, ffn 1536
constexpr std::array<linear_shape, 7> layer_shapes{{{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}}};

// One layer's float weights, drawn once.
const std::vector<tensor<float>>& float_layer() {
  static const std::vector<tensor<float>> w = [] {
    std::vector<tensor<float>> out;
    std::uint32_t seed = 1;
    for (const auto& s : layer_shapes) out.push_back(tformer::bench::random_tensor(shape{s.n, s.k}, seed++, -0.1f, 0.1f));
    return out;
  }();
  return w;
}

// The stack in format F: layer 0 quantized, its bytes copied into the other layers.
template <class F>
std::vector<quant::matrix<F>> make_stack(std::int64_t count) {
  std::vector<quant::matrix<F>> first;
  for (const auto& w : float_layer()) first.push_back(quant::matrix<F>::quantize(w));
  std::vector<quant::matrix<F>> out;
  for (std::int64_t l = 0; l < count; ++l)
    for (const auto& m : first) {
      quant::matrix<F> c(m.rows(), m.cols());
      std::memcpy(c.data(), m.data(), m.size_bytes());
      out.push_back(std::move(c));
    }
  return out;
}

template <class F>
std::size_t stack_bytes(std::int64_t count = layers) {
  std::size_t b = 0;
  for (const auto& s : layer_shapes) b += static_cast<std::size_t>(s.n * quant::row_bytes<F>(s.k));
  return b * static_cast<std::size_t>(count);
}

// Activations x [m, k] and outputs y [m, n] for each of a layer's linears.
std::pair<std::vector<tensor<float>>, std::vector<tensor<float>>> buffers(std::int64_t m) {
  std::vector<tensor<float>> xs, ys;
  std::uint32_t seed = 50;
  for (const auto& s : layer_shapes) {
    xs.push_back(tformer::bench::random_tensor(shape{m, s.k}, seed++));
    ys.emplace_back(shape{m, s.n});
  }
  return {std::move(xs), std::move(ys)};
}

// max over the layer's products of max |y - y_ref| / max |y_ref|, y_ref the float product of the
// dequantized weights
template <class F>
double check_layer(const std::vector<quant::matrix<F>>& stack, std::int64_t m) {
  double worst = 0;
  for (std::size_t i = 0; i < layer_shapes.size(); ++i) {
    const auto& w = stack[i];
    const auto x = tformer::bench::random_tensor(shape{m, w.cols()}, 100u + static_cast<unsigned>(i));
    tensor<float> y(shape{m, w.rows()}), ref(shape{m, w.rows()});
    tformer::ops::linear(x, w, y);
    tformer::ops::linear(x, w.to_float(), ref);
    worst = std::max(worst, tformer::bench::max_rel_diff(y.data(), ref.data(), static_cast<std::size_t>(y.numel())));
  }
  return worst;
}

template <class F>
void bm_decode(benchmark::State& state, int threads, double tolerance, std::int64_t count) {
  tformer::set_num_threads(threads);
  const auto stack = make_stack<F>(count);
  const double err = check_layer(stack, 1);
  if (!(err <= tolerance)) {
    state.SkipWithError((std::string(F::name) + " decode differs from the dequantized product: " + std::to_string(err)).c_str());
    return;
  }
  auto [xs, ys] = buffers(1);
  for (auto _ : state) {
    for (std::size_t i = 0; i < stack.size(); ++i) tformer::ops::linear(xs[i % 7], stack[i], ys[i % 7]);
    benchmark::ClobberMemory();
  }
  state.counters["BYTES"] = benchmark::Counter(static_cast<double>(stack_bytes<F>(count)),
                                               benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["bits_per_weight"] = F::bits_per_weight;
  state.counters["max_rel_err"] = err;
}

template <class F>
void bm_prefill(benchmark::State& state, int threads) {
  tformer::set_num_threads(threads);
  const auto stack = make_stack<F>(1);
  const double err = check_layer(stack, prefill_rows);
  if (!(err <= 1e-4)) {
    state.SkipWithError((std::string(F::name) + " prefill differs from the dequantized product: " + std::to_string(err)).c_str());
    return;
  }
  auto [xs, ys] = buffers(prefill_rows);
  double flops = 0;
  for (const auto& s : layer_shapes) flops += 2.0 * prefill_rows * static_cast<double>(s.n * s.k);
  for (auto _ : state) {
    for (std::size_t i = 0; i < stack.size(); ++i) tformer::ops::linear(xs[i], stack[i], ys[i]);
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["max_rel_err"] = err;
}

// 128 tokens through int8_activations<F>: ops::linear on max_fused_rows rows at a time, each call
// rounding its rows to int8 and running F's fused integer kernel over column tiles (its packed
// product for a packed_fused_format, from packed_min_rows rows).
template <class F>
void bm_prefill_int8(benchmark::State& state, int threads) {
  using I = quant::int8_activations<F>;
  tformer::set_num_threads(threads);
  const auto stack = make_stack<I>(1);
  auto [xs, ys] = buffers(prefill_rows);
  const std::int64_t group = std::min<std::int64_t>(I::max_fused_rows, tformer::ops::few_rows);
  auto layer = [&] {
    for (std::size_t i = 0; i < stack.size(); ++i)
      for (std::int64_t r = 0; r < prefill_rows; r += group)
        tformer::ops::linear(xs[i].view().slice(0, r, r + group), stack[i], ys[i].view().slice(0, r, r + group));
  };
  layer();
  double err = 0;
  for (std::size_t i = 0; i < stack.size(); ++i) {
    tensor<float> ref(ys[i].shape());
    tformer::ops::linear(xs[i], stack[i].to_float(), ref);
    err = std::max(err, tformer::bench::max_rel_diff(ys[i].data(), ref.data(), static_cast<std::size_t>(ref.numel())));
  }
  if (!(err <= 5e-2)) {
    state.SkipWithError((std::string(F::name) + " int8 prefill differs from the dequantized product: " + std::to_string(err)).c_str());
    return;
  }
  double flops = 0;
  for (const auto& s : layer_shapes) flops += 2.0 * prefill_rows * static_cast<double>(s.n * s.k);
  for (auto _ : state) {
    layer();
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["max_rel_err"] = err;
}

// the read probe's buffer sizes: each format's footprint, rounded up to what bandwidth::bm_memory
// splits evenly over 2 threads
std::set<std::size_t>& probes() {
  static std::set<std::size_t> p;
  return p;
}

// True when every linear's rows are whole blocks of F (SmolLM2's 576-wide rows are not whole
// 256-weight super-blocks: llama.cpp stores those tensors in a fallback type, as quant::fallback does)
template <class F>
constexpr bool fits_stack() {
  for (const auto& s : layer_shapes)
    if (s.k % F::block_size != 0) return false;
  return true;
}

template <class F>
void register_format() {
  const std::string name = F::name;
  if constexpr (!fits_stack<F>()) {
    benchmark::RegisterBenchmark(("quant/decode/" + name).c_str(), [](benchmark::State& state) {
      state.SkipWithError((std::string(F::name) + ": the stack's rows of 576 are not whole blocks of " +
                           std::to_string(F::block_size)).c_str());
    });
    return;
  }
  for (const int t : thread_counts) {
    const std::string tn = "/t:" + std::to_string(t);
    benchmark::RegisterBenchmark(("quant/decode/" + name + tn).c_str(), bm_decode<F>, t, 1e-4, layers)->UseRealTime();
    if constexpr (quant::fused_format<F>)
      benchmark::RegisterBenchmark(("quant/decode_int8/" + name + tn).c_str(), bm_decode<quant::int8_activations<F>>, t, 5e-2,
                                   layers)
          ->UseRealTime();
    if (t == 1) {
      benchmark::RegisterBenchmark(("quant/decode_cached/" + name + tn).c_str(), bm_decode<F>, t, 1e-4, 1)->UseRealTime();
      if constexpr (quant::fused_format<F>)
        benchmark::RegisterBenchmark(("quant/decode_int8_cached/" + name + tn).c_str(), bm_decode<quant::int8_activations<F>>, t,
                                     5e-2, 1)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark(("quant/prefill/" + name + tn).c_str(), bm_prefill<F>, t)->UseRealTime();
    if constexpr (quant::fused_format<F>)
      benchmark::RegisterBenchmark(("quant/prefill_int8/" + name + tn).c_str(), bm_prefill_int8<F>, t)->UseRealTime();
  }
  constexpr std::size_t step = 2 * tformer::bench::bandwidth::unroll * tformer::bench::bandwidth::W * sizeof(float);
  probes().insert((stack_bytes<F>() + step - 1) / step * step);
}

template <class... F>
void register_formats(quant::format_list<F...>) {
  (register_format<F>(), ...);
}

}  // namespace

int main(int argc, char** argv) {
  tformer::bench::add_common_context();
  for (const int t : thread_counts)
    benchmark::RegisterBenchmark(("fma_peak/t:" + std::to_string(t)).c_str(), tformer::bench::bm_fma_peak, t)->UseRealTime();
  register_formats(quant::known{});
  for (const std::size_t bytes : probes())
    for (const int t : thread_counts) tformer::bench::bandwidth::add(tformer::bench::bandwidth::kernel::read, bytes, t);
  return tformer::bench::run_main(argc, argv);
}
