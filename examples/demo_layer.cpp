// tformer_demo: a random-weight, BERT-base-sized Pre-LN feed-forward sublayer
//   y = x + W2 GELU(W1 LayerNorm(x) + b1) + b2
// run on a batch of tokens; prints part of the output and the time per call.
//
//   tformer_demo [--tokens N] [--d-model D] [--ff F] [--threads T] [--repeat R]
#include <tformer/tformer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct options {
  std::int64_t tokens = 128, d_model = 768, ff = 3072;
  int threads = 0, repeat = 20;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      const long v = std::stol(argv[++i]);
      if (v < 1) throw std::invalid_argument(a + " must be >= 1");
      return v;
    };
    if (a == "--tokens") o.tokens = value();
    else if (a == "--d-model") o.d_model = value();
    else if (a == "--ff") o.ff = value();
    else if (a == "--threads") o.threads = static_cast<int>(value());
    else if (a == "--repeat") o.repeat = static_cast<int>(value());
    else throw std::invalid_argument("unknown option " + a + " (options: --tokens --d-model --ff --threads --repeat)");
  }
  return o;
}

// Uniform(-a, a) weights with a = 1/sqrt(fan_in), like PyTorch's Linear initialisation.
tformer::tensor<float> random_weights(const tformer::shape& s, std::int64_t fan_in, std::mt19937& gen) {
  tformer::tensor<float> t(s);
  const float a = 1.0f / std::sqrt(static_cast<float>(fan_in));
  std::uniform_real_distribution<float> dist(-a, a);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(gen);
  return t;
}

}  // namespace

int main(int argc, char** argv) try {
  using tformer::shape;
  using tformer::tensor;
  const options o = parse(argc, argv);
  if (o.threads > 0) tformer::set_num_threads(o.threads);

  std::mt19937 gen(42);
  const std::int64_t n = o.tokens, d = o.d_model, f = o.ff;
  // parameters
  tensor<float> ln_w(shape{d}, 1.0f), ln_b(shape{d}, 0.0f);
  tensor<float> w1 = random_weights(shape{f, d}, d, gen), b1 = random_weights(shape{f}, d, gen);  // [ff, d]
  tensor<float> w2 = random_weights(shape{d, f}, f, gen), b2 = random_weights(shape{d}, f, gen);  // [d, ff]
  // activations
  tensor<float> x = random_weights(shape{n, d}, 1, gen);  // x: [tokens, d] in (-1, 1)
  tensor<float> y(shape{n, d}), normed(shape{n, d}), hidden(shape{n, f}), out(shape{n, d});

  auto sublayer = [&] {
    std::copy(x.data(), x.data() + x.numel(), y.data());                    // y: [n, d] residual stream
    tformer::ops::layer_norm(y, ln_w, ln_b, 1e-5f, normed);                 // normed: [n, d]
    tformer::ops::linear(normed, w1, hidden, b1);                           // hidden: [n, ff]
    tformer::ops::activate<tformer::simd::act::gelu>(hidden, hidden);       // GELU in place
    tformer::ops::linear(hidden, w2, out);                                  // out: [n, d]
    tformer::ops::residual_add(y, out, b2);                                 // y += out + b2
  };

  sublayer();  // warm-up
  std::vector<double> ms;
  for (int r = 0; r < o.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sublayer();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double flops = 2.0 * 2.0 * static_cast<double>(n * d * f);

  std::printf("tformer %s: Pre-LN feed-forward sublayer, tokens=%lld d_model=%lld ff=%lld threads=%d\n",
              tformer::version_string, static_cast<long long>(n), static_cast<long long>(d), static_cast<long long>(f),
              tformer::num_threads());
  std::printf("y[0, 0:6] =");
  for (std::int64_t j = 0; j < std::min<std::int64_t>(6, d); ++j) std::printf(" %+.5f", y(0, j));
  double sum = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) sum += y.data()[i];
  std::printf("\nsum(y) = %.6f\n", sum);
  std::printf("median %.3f ms per call over %d calls, %.1f GFLOP/s\n", median, o.repeat, flops / median * 1e-6);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tformer_demo: %s\n", e.what());
  return 1;
}
