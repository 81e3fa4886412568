// Softmax throughput: tformer::ops::softmax / log_softmax over a batch of rows of length n, at 1
// and 2 threads, and the single-row kernel simd::softmax looped over the same rows on 1 thread.
// BYTES = bytes read + written per call (4 n per row each way) / time, to set beside
// bench_memory's copy figures. Each case first checks its rows against a double-precision
// reference (SkipWithError on mismatch).
//
// The batch is sized by its footprint (x and out together): L2 = 256 KiB, L3 = 8 MiB,
// DRAM = 128 MiB, so the same n is timed with its data in each level of the memory hierarchy.
// mem/copy/<KiB>KiB/t:<threads> (bandwidth.hpp) runs first over the same three footprints.
// Names: <softmax|log_softmax|softmax_kernel>/n:<n>/<L2|L3|DRAM>/t:<threads>.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tformer/ops/softmax.hpp>
#include <vector>

#include "bandwidth.hpp"
#include "bench_util.hpp"

namespace {

struct footprint {
  const char* name;
  std::size_t bytes;  // x and out together
};
constexpr std::array<footprint, 3> footprints{
    {{"L2", std::size_t{256} << 10}, {"L3", std::size_t{8} << 20}, {"DRAM", std::size_t{128} << 20}}};
constexpr std::array<std::int64_t, 5> lengths{128, 512, 1024, 2048, 4096};

enum class op { softmax, log_softmax, softmax_kernel };
constexpr const char* op_name(op o) {
  return o == op::softmax ? "softmax" : o == op::log_softmax ? "log_softmax" : "softmax_kernel";
}

// Double-precision softmax or log-softmax of one row.
void reference_row(const float* x, std::size_t n, bool log, std::vector<float>& out) {
  double m = -INFINITY, sum = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - m;
    out[i] = static_cast<float>(log ? d - std::log(sum) : std::exp(d) / sum);
  }
}

void bm_softmax(benchmark::State& state, op which, std::int64_t n, footprint fp, int threads) {
  const std::int64_t rows = std::max<std::int64_t>(1, static_cast<std::int64_t>(fp.bytes / (8 * n)));
  const auto x = tformer::bench::random_tensor({rows, n}, 3, -8.0f, 8.0f);  // logit-like scores
  tformer::tensor<float> out({rows, n});
  tformer::set_num_threads(threads);
  const auto run = [&] {
    switch (which) {
      case op::softmax:
        tformer::ops::softmax(x.view(), out.view());
        break;
      case op::log_softmax:
        tformer::ops::log_softmax(x.view(), out.view());
        break;
      case op::softmax_kernel:
        for (std::int64_t r = 0; r < rows; ++r)
          tformer::simd::softmax(x.data() + r * n, out.data() + r * n, static_cast<std::size_t>(n));
        break;
    }
  };

  // Check up to 64 rows spread over the batch against the double reference.
  run();
  std::vector<float> ref;
  double err = 0;
  const std::int64_t step = std::max<std::int64_t>(1, rows / 64);
  for (std::int64_t r = 0; r < rows; r += step) {
    reference_row(x.data() + r * n, static_cast<std::size_t>(n), which == op::log_softmax, ref);
    err = std::max(err, tformer::bench::max_rel_diff(out.data() + r * n, ref.data(), ref.size()));
  }
  tformer::bench::time_checked_row_op(state, op_name(which), err, run, 8.0 * static_cast<double>(rows * n));
  state.counters["rows"] = static_cast<double>(rows);
}

void add(op which, std::int64_t n, footprint fp, int threads) {
  const std::string name =
      std::string(op_name(which)) + "/n:" + std::to_string(n) + "/" + fp.name + "/t:" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), bm_softmax, which, n, fp, threads)->UseRealTime();
}

void register_all() {
  // The copy probe over the same footprints (src + dst = x + out), for the ratio within this run.
  for (const auto& fp : footprints)
    for (const int t : {1, 2}) tformer::bench::bandwidth::add(tformer::bench::bandwidth::kernel::copy, fp.bytes / 2, t);
  for (const auto& fp : footprints)
    for (const std::int64_t n : lengths)
      for (const int t : {1, 2}) add(op::softmax, n, fp, t);
  // The single-row kernel without the view layer (shape checks, parallel loop), cache-resident.
  for (const std::int64_t n : lengths) add(op::softmax_kernel, n, footprints[0], 1);
  // log_softmax: cache-resident and streaming.
  for (const auto& fp : {footprints[0], footprints[2]})
    for (const std::int64_t n : lengths)
      for (const int t : {1, 2}) add(op::log_softmax, n, fp, t);
}

}  // namespace

int main(int argc, char** argv) {
  tformer::bench::add_common_context();
  register_all();
  return tformer::bench::run_main(argc, argv);
}
