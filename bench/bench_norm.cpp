// LayerNorm and RMSNorm throughput: tformer::ops::layer_norm / rms_norm over rows of d features
// (d = 768, BERT-base; d = 4096, 7B decoders), at 1 and 2 threads, and the single-row kernels
// (simd::layer_norm / rms_norm) looped over the rows on 1 thread. BYTES = bytes of x read plus
// out written per call (8 d per row; weight and bias, read from cache, are not counted) / time.
// Each case first checks every row against a double-precision reference.
//
// rows = 128 (a batch of tokens: 768 KiB / 4 MiB of x + out) and a DRAM-sized batch of 192 MiB.
// mem/copy/<KiB>KiB/t:<threads> (bandwidth.hpp) runs first over the same three footprints.
// Names: <layer_norm|rms_norm>[_kernel]/d:<d>/rows:<rows>/t:<threads>.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tformer/ops/norm.hpp>
#include <vector>

#include "bandwidth.hpp"
#include "bench_util.hpp"

namespace {

constexpr float eps = 1e-5f;
constexpr std::array<std::int64_t, 2> dims{768, 4096};

enum class op { layer_norm, rms_norm, layer_norm_kernel, rms_norm_kernel };
constexpr const char* op_name(op o) {
  switch (o) {
    case op::layer_norm:
      return "layer_norm";
    case op::rms_norm:
      return "rms_norm";
    case op::layer_norm_kernel:
      return "layer_norm_kernel";
    default:
      return "rms_norm_kernel";
  }
}
constexpr bool is_layer_norm(op o) { return o == op::layer_norm || o == op::layer_norm_kernel; }

// Double-precision LayerNorm (biased variance, like PyTorch) or RMSNorm of one row.
void reference_row(const float* x, const float* w, const float* b, std::size_t n, bool layer, float* out) {
  double mean = 0, ss = 0;
  if (layer) {
    for (std::size_t i = 0; i < n; ++i) mean += x[i];
    mean /= static_cast<double>(n);
  }
  for (std::size_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(eps));
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>((x[i] - mean) * r * w[i] + (layer ? static_cast<double>(b[i]) : 0.0));
}

void bm_norm(benchmark::State& state, op which, std::int64_t d, std::int64_t rows, int threads) {
  const auto x = tformer::bench::random_tensor({rows, d}, 4, -2.0f, 2.0f);
  const auto w = tformer::bench::random_tensor({d}, 5, 0.5f, 1.5f);
  const auto b = tformer::bench::random_tensor({d}, 6, -0.5f, 0.5f);
  tformer::tensor<float> out({rows, d});
  tformer::set_num_threads(threads);
  const auto n = static_cast<std::size_t>(d);
  const auto run = [&] {
    switch (which) {
      case op::layer_norm:
        tformer::ops::layer_norm(x.view(), w.view(), b.view(), eps, out.view());
        break;
      case op::rms_norm:
        tformer::ops::rms_norm(x.view(), w.view(), eps, out.view());
        break;
      case op::layer_norm_kernel:
        for (std::int64_t r = 0; r < rows; ++r)
          tformer::simd::layer_norm(x.data() + r * d, w.data(), b.data(), eps, out.data() + r * d, n);
        break;
      case op::rms_norm_kernel:
        for (std::int64_t r = 0; r < rows; ++r)
          tformer::simd::rms_norm(x.data() + r * d, w.data(), eps, out.data() + r * d, n);
        break;
    }
  };

  run();
  std::vector<float> ref(n);
  double err = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    reference_row(x.data() + r * d, w.data(), b.data(), n, is_layer_norm(which), ref.data());
    err = std::max(err, tformer::bench::max_rel_diff(out.data() + r * d, ref.data(), n));
  }
  tformer::bench::time_checked_row_op(state, op_name(which), err, run, 8.0 * static_cast<double>(rows * d));
}

void add(op which, std::int64_t d, std::int64_t rows, int threads) {
  const std::string name = std::string(op_name(which)) + "/d:" + std::to_string(d) + "/rows:" + std::to_string(rows) +
                           "/t:" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), bm_norm, which, d, rows, threads)->UseRealTime();
}

void register_all() {
  // The copy probe over the same footprints (src + dst = x + out), for the ratio within this run.
  for (const std::size_t footprint : {std::size_t{768} << 10, std::size_t{4} << 20, std::size_t{192} << 20})
    for (const int t : {1, 2})
      tformer::bench::bandwidth::add(tformer::bench::bandwidth::kernel::copy, footprint / 2, t);
  for (const op o : {op::layer_norm, op::rms_norm})
    for (const std::int64_t d : dims) {
      const std::int64_t dram_rows = (std::int64_t{192} << 20) / (8 * d);
      for (const std::int64_t rows : {std::int64_t{128}, dram_rows})
        for (const int t : {1, 2}) add(o, d, rows, t);
    }
  for (const op o : {op::layer_norm_kernel, op::rms_norm_kernel})
    for (const std::int64_t d : dims) add(o, d, 128, 1);
}

}  // namespace

int main(int argc, char** argv) {
  tformer::bench::add_common_context();
  register_all();
  return tformer::bench::run_main(argc, argv);
}
