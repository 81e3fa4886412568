// Feed-forward blocks against their formulas computed directly in double precision.
#include <tformer/nn/feed_forward.hpp>
#include <tformer/nn/parameters.hpp>

#include <cmath>
#include <vector>

#include "catch.hpp"

using namespace tformer;

namespace {

// y = W x + b for one row, in double.
std::vector<double> affine(const nn::linear<>& l, const std::vector<double>& x) {
  std::vector<double> y(static_cast<std::size_t>(l.out_features()));
  for (std::int64_t o = 0; o < l.out_features(); ++o) {
    double s = l.has_bias() ? l.bias(o) : 0.0;
    for (std::int64_t i = 0; i < l.in_features(); ++i) s += static_cast<double>(l.weight.view()(o, i)) * x[static_cast<std::size_t>(i)];
    y[static_cast<std::size_t>(o)] = s;
  }
  return y;
}

double gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
double silu(double x) { return x / (1.0 + std::exp(-x)); }

tensor<float> input() {
  tensor<float> x(shape{2, 3, 8});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::sin(0.7 * static_cast<double>(i)) * 2.0f;
  return x;
}

template <class Block, class F>
void check(Block& block, F&& reference) {
  const auto x = input();
  tensor<float> y(shape{2, 3, 8});
  block.forward(x, y);
  for (std::int64_t r = 0; r < 6; ++r) {
    std::vector<double> row(8);
    for (std::int64_t c = 0; c < 8; ++c) row[static_cast<std::size_t>(c)] = x.data()[r * 8 + c];
    const auto want = reference(row);
    for (std::int64_t c = 0; c < 8; ++c) REQUIRE(std::fabs(y.data()[r * 8 + c] - want[static_cast<std::size_t>(c)]) <= 1e-5);
  }
}

}  // namespace

TEST_CASE("mlp computes down(Act(up(x)))", "[feed_forward]") {
  nn::mlp<simd::act::gelu> f(nn::ffn_config{.d_model = 8, .d_ff = 20, .bias = true});
  nn::init_random(f, 1);
  for (std::int64_t i = 0; i < 20; ++i) f.up.bias(i) = 0.01f * static_cast<float>(i);
  check(f, [&](const std::vector<double>& x) {
    auto h = affine(f.up, x);
    for (auto& v : h) v = gelu(v);
    return affine(f.down, h);
  });
}

TEST_CASE("gated mlp: SwiGLU and the bilinear variant (identity)", "[feed_forward]") {
  nn::gated_mlp<simd::act::silu> swiglu(nn::ffn_config{.d_model = 8, .d_ff = 12, .bias = false});
  nn::init_random(swiglu, 2);
  check(swiglu, [&](const std::vector<double>& x) {
    auto g = affine(swiglu.gate, x), u = affine(swiglu.up, x);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    return affine(swiglu.down, g);
  });
  nn::gated_mlp<simd::act::identity> bilinear(nn::ffn_config{.d_model = 8, .d_ff = 12, .bias = true});
  nn::init_random(bilinear, 3);
  check(bilinear, [&](const std::vector<double>& x) {
    auto g = affine(bilinear.gate, x), u = affine(bilinear.up, x);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] *= u[i];
    return affine(bilinear.down, g);
  });
}

TEST_CASE("feed-forward parameter names and counts", "[feed_forward]") {
  nn::gated_mlp<simd::act::relu> f(nn::ffn_config{.d_model = 4, .d_ff = 6, .bias = false});
  CHECK(nn::count_parameters(f) == 3 * 4 * 6);
  const auto names = nn::parameter_names(f);
  REQUIRE(names.size() == 3);
  CHECK(names[0] == "gate.weight");
  CHECK(names[2] == "down.weight");
}
