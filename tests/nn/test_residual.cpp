// Residual connections with their norm placements against the formulas: peri-LN, and post-LN
// with a DeepNet residual scale, around a stand-in sublayer; temporaries from a workspace or not.
#include <tformer/nn/residual.hpp>

#include <cmath>

#include "catch.hpp"

using namespace tformer;

TEST_CASE("peri-LN and residual scaling follow their formulas", "[layers]") {
  // With an identity sublayer stand-in: peri_ln gives x + N(f(N(x))), post_ln with alpha gives N(alpha x + f(x)).
  tensor<float> x(shape{1, 2, 4});
  for (std::int64_t i = 0; i < 8; ++i) x.data()[i] = static_cast<float>(i % 5) - 1.5f;
  auto copy = x;
  nn::residual<nn::peri_ln, nn::rms_norm> peri(4, 1e-6f);
  peri.run(x, nullptr, [](tensor_view<const float> in, tensor_view<float> out) { ops::scale(in, 2.0f, out); });
  tensor<float> n1(shape{1, 2, 4}), n2(shape{1, 2, 4});
  ops::rms_norm(copy, peri.norm_in.weight, 1e-6f, n1);
  ops::scale(n1, 2.0f, n1);
  ops::rms_norm(n1, peri.norm_out.weight, 1e-6f, n2);
  for (std::int64_t i = 0; i < 8; ++i) CHECK(std::fabs(x.data()[i] - (copy.data()[i] + n2.data()[i])) <= 1e-6f);

  auto y = copy;
  nn::residual<nn::post_ln, nn::layer_norm> deep(4, 1e-5f, 2.5f);
  deep.run(y, [](tensor_view<const float> in, tensor_view<float> out) { ops::scale(in, -1.0f, out); });
  tensor<float> expect(shape{1, 2, 4});
  ops::scale(copy, 1.5f, expect);  // 2.5 x - x
  ops::layer_norm(expect, deep.norm_in.weight, deep.norm_in.bias, 1e-5f, expect);
  for (std::int64_t i = 0; i < 8; ++i) CHECK(std::fabs(y.data()[i] - expect.data()[i]) <= 1e-6f);
}

TEST_CASE("pre-LN with a workspace equals pre-LN without one, and reuses its memory", "[layers][workspace]") {
  tensor<float> x(shape{2, 3, 8});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::cos(0.4 * static_cast<double>(i));
  auto y = x;
  nn::residual<nn::pre_ln, nn::layer_norm> pre(8, 1e-5f);
  auto f = [](tensor_view<const float> in, tensor_view<float> out) { ops::scale(in, 0.5f, out); };
  pre.run(x, f);
  workspace ws;
  pre.run(y, &ws, f);
  const auto after_first = ws.allocations();
  pre.run(y, &ws, f);
  CHECK(ws.allocations() == after_first);
  pre.run(x, f);
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(x.data()[i] == y.data()[i]);
}
