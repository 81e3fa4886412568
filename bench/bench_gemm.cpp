// GEMM throughput: tformer::ops::linear (y = x W^T) beside OpenBLAS cblas_sgemm and plain Eigen on
// the same shapes and layout, at 1 and 2 threads, reported as FLOPS = 2*M*N*K per call / time.
// Every case first checks its result against another implementation (SkipWithError on mismatch).
// fma_peak measures the FP32 FMA ceiling of this machine in the same run.
//
// Names: gemm/<M>x<N>x<K>/t:<threads>/<tformer|openblas|eigen|tformer_int8>; x [M,K], W [N,K], y [M,N].
// tformer_int8: W as quant::int8_activations<quant::int8_channel> (CTranslate2's int8 weights, the
// activations rounded to int8 per row: the int8 path of encoders and translation), checked against
// the float product within the activation rounding (5e-2 of max |y|); FLOPS counts its 2*M*N*K
// integer operations. vnni_peak (where AVX-512 VNNI is compiled) is its ceiling, as fma_peak is
// the float one.
#include <Eigen/Core>
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/int8_channel.hpp>
#include <tformer/quant/matrix.hpp>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "peak.hpp"

#if defined(TFORMER_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using tformer::bench::max_rel_diff;
using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct gemm_shape {
  std::int64_t m, n, k;
};
// Square GEMMs, BERT-base's FFN projections over 128 tokens (batch 1) and its attention
// projection over 1024 (batch 8), and the single-token GEMV.
constexpr std::array<gemm_shape, 7> shapes{{{512, 512, 512},
                                            {1024, 1024, 1024},
                                            {2048, 2048, 2048},
                                            {128, 3072, 768},
                                            {128, 768, 3072},
                                            {1024, 768, 768},
                                            {1, 3072, 768}}};
constexpr std::array<int, 2> thread_counts{1, 2};

// openblas_gemv: cblas_sgemv for the M = 1 shape, since OpenBLAS 0.3.21's sgemm does not hand
// a one-row product to its GEMV kernel.
enum class impl { tformer, openblas, eigen, openblas_gemv, tformer_int8 };
constexpr const char* impl_name(impl i) {
  return i == impl::tformer         ? "tformer"
         : i == impl::openblas      ? "openblas"
         : i == impl::eigen         ? "eigen"
         : i == impl::tformer_int8  ? "tformer_int8"
                                    : "openblas_gemv";
}
using int8_weights = tformer::quant::int8_activations<tformer::quant::int8_channel>;
#if defined(TFORMER_BENCH_HAVE_OPENBLAS)
constexpr bool have_openblas = true;
#else
constexpr bool have_openblas = false;
#endif

// Operands of one shape: x [M,K], W [N,K] (PyTorch Linear layout), and W in int8.
struct operands {
  explicit operands(const gemm_shape& s)
      : shape(s),
        x(tformer::bench::random_tensor({s.m, s.k}, 1)),
        w(tformer::bench::random_tensor({s.n, s.k}, 2)),
        w8(tformer::quant::matrix<int8_weights>::quantize(w.view())) {}
  gemm_shape shape;
  tformer::tensor<float> x, w;
  tformer::quant::matrix<int8_weights> w8;
};

// y [M,N] = x W^T with implementation `which` on `threads` threads.
void multiply(impl which, int threads, const operands& op, tformer::tensor<float>& y) {
  const auto [m, n, k] = op.shape;
  switch (which) {
    case impl::tformer:
      tformer::set_num_threads(threads);
      Eigen::setNbThreads(1);  // linear switches Eigen's threads off only once; the eigen column turns them on
      tformer::ops::linear(op.x.view(), op.w.view(), y.view());
      break;
    case impl::tformer_int8:
      tformer::set_num_threads(threads);
      tformer::ops::linear(op.x.view(), op.w8, y.view());
      break;
    case impl::eigen: {
      Eigen::setNbThreads(threads);
      const Eigen::Map<const row_matrix> X(op.x.data(), m, k), W(op.w.data(), n, k);
      Eigen::Map<row_matrix> Y(y.data(), m, n);
      Y.noalias() = X * W.transpose();
      break;
    }
    case impl::openblas:
#if defined(TFORMER_BENCH_HAVE_OPENBLAS)
      openblas_set_num_threads(threads);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n),
                  static_cast<blasint>(k), 1.0f, op.x.data(), static_cast<blasint>(k), op.w.data(),
                  static_cast<blasint>(k), 0.0f, y.data(), static_cast<blasint>(n));
#endif
      break;
    case impl::openblas_gemv:  // y[0, :] = W x[0, :]
#if defined(TFORMER_BENCH_HAVE_OPENBLAS)
      openblas_set_num_threads(threads);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, op.w.data(),
                  static_cast<blasint>(k), op.x.data(), 1, 0.0f, y.data(), 1);
#endif
      break;
  }
}

// Lets the other libraries' worker threads stop spinning (OpenBLAS spins ~0.1 s after a call),
// so they do not steal a core from the case being timed.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

void bm_gemm(benchmark::State& state, gemm_shape s, int threads, impl which) {
  const operands op(s);
  tformer::tensor<float> y({s.m, s.n}), ref({s.m, s.n});
  // Check against another implementation on one thread: OpenBLAS where we have it.
  const impl check = which != impl::openblas && which != impl::openblas_gemv && have_openblas ? impl::openblas
                     : which == impl::tformer                                                 ? impl::eigen
                                                                                              : impl::tformer;
  multiply(check, 1, op, ref);
  multiply(which, threads, op, y);
  const double err = max_rel_diff(y.data(), ref.data(), static_cast<std::size_t>(y.numel()));
  if (!(err <= (which == impl::tformer_int8 ? 5e-2 : 1e-4))) {
    state.SkipWithError((std::string(impl_name(which)) + " differs from " + impl_name(check) +
                         ": max |diff| / max |ref| = " + std::to_string(err))
                            .c_str());
    return;
  }
  settle();
  for (auto _ : state) {
    multiply(which, threads, op, y);
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["max_rel_err"] = err;
}

void register_all() {
  for (const int t : thread_counts)
    benchmark::RegisterBenchmark(("fma_peak/t:" + std::to_string(t)).c_str(), tformer::bench::bm_fma_peak, t)->UseRealTime();
#if defined(TFORMER_BENCH_VNNI_PEAK)
  for (const int t : thread_counts)
    benchmark::RegisterBenchmark(("vnni_peak/t:" + std::to_string(t)).c_str(), tformer::bench::bm_vnni_peak, t)->UseRealTime();
#endif
  for (const auto& s : shapes) {
    const std::string dims = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
    for (const int t : thread_counts)
      for (const impl i : {impl::tformer, impl::openblas, impl::eigen, impl::openblas_gemv, impl::tformer_int8}) {
        if ((i == impl::openblas || i == impl::openblas_gemv) && !have_openblas) continue;
        if (i == impl::openblas_gemv && s.m != 1) continue;
        const std::string name = "gemm/" + dims + "/t:" + std::to_string(t) + "/" + impl_name(i);
        benchmark::RegisterBenchmark(name.c_str(), bm_gemm, s, t, i)->UseRealTime()->Unit(benchmark::kMillisecond);
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  tformer::bench::add_common_context();
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
#if defined(TFORMER_BENCH_HAVE_OPENBLAS)
  benchmark::AddCustomContext("openblas", std::string(openblas_get_config()) + ", core " + openblas_get_corename());
#else
  benchmark::AddCustomContext("openblas", "not found at configure time");
#endif
  register_all();
  return tformer::bench::run_main(argc, argv);
}
