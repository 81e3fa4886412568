// quant::gptq and quant::hessian: the Cholesky / lazy-batch algorithm equals GPTQ from its
// definition (optimal brain surgeon one column at a time, with dense inverses of the remaining
// columns' H) on every requantizable format, with and without act-order; on correlated inputs
// with outlier features its output error is well below round-to-nearest's; uncorrelated inputs
// leave nothing to correct; dead inputs, dampening retries and bad input; hessians over a model.
#include <tformer/nn/linear.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/gptq.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {

/// Calibration rows [rows, k] with correlated features and a few large ones: z A with z normal and
/// A = 0.5 I + 1.5 G (G normal / sqrt(k)), then every 16th feature times 8 (activations of trained
/// models are strongly correlated and have such outlier features).
tensor<float> correlated_inputs(std::int64_t rows, std::int64_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a = 0.5 * Eigen::MatrixXd::Identity(k, k);
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < k; ++j) a(i, j) += 1.5 * normal(gen) / std::sqrt(static_cast<double>(k));
  Eigen::MatrixXd z(rows, k);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < k; ++j) z(i, j) = normal(gen);
  const Eigen::MatrixXd x = z * a;
  tensor<float> t(shape{rows, k});
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < k; ++j) t(i, j) = static_cast<float>(x(i, j) * (j % 16 == 5 ? 8.0 : 1.0));
  return t;
}

tensor<float> weights(std::int64_t n, std::int64_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  tensor<float> w(shape{n, k});
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = normal(gen);
  return w;
}

/// GPTQ from its definition: the columns in quantization order, each quantized to the format's
/// nearest code (the block's scales chosen as gptq.hpp says), then the columns not yet quantized R
/// move by -(w_i - q_i) / [H_R^-1]_00 [H_R^-1]_0j (j in R after i), H_R the damped H restricted to
/// R = {i, later columns}, inverted densely. No Cholesky factor, no lazy batches.
template <class F>
tensor<float> gptq_by_definition(const tensor<float>& w, const quant::hessian& h, bool act_order, double damp) {
  const std::int64_t n = w.dim(0), k = w.dim(1), block = F::block_size;
  Eigen::MatrixXd W(n, k), H = h.matrix();
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < k; ++c) W(r, c) = w(r, c);
  for (std::int64_t i = 0; i < k; ++i)
    if (H(i, i) == 0) {
      H(i, i) = 1;
      W.col(i).setZero();
    }
  std::vector<std::int64_t> order(static_cast<std::size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  quant::matrix<F> q(n, k);
  std::vector<float> row(static_cast<std::size_t>(k));
  if (act_order) {
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return H(a, a) > H(b, b); });
    for (std::int64_t r = 0; r < n; ++r) {
      for (std::int64_t c = 0; c < k; ++c) row[static_cast<std::size_t>(c)] = static_cast<float>(W(r, c));
      F::quantize_row(row.data(), q.row(r), k);
    }
  }
  H.diagonal().array() += damp * H.diagonal().mean();
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t col = order[static_cast<std::size_t>(i)];
    if (!act_order && col % block == 0)
      for (std::int64_t r = 0; r < n; ++r) {
        for (std::int64_t c = 0; c < block; ++c) row[static_cast<std::size_t>(c)] = static_cast<float>(W(r, col + c));
        F::quantize_row(row.data(), q.row(r) + col / block * F::block_bytes, block);
      }
    const std::int64_t rest = k - i;  // R = order[i .. k)
    Eigen::MatrixXd hr(rest, rest);
    for (std::int64_t a = 0; a < rest; ++a)
      for (std::int64_t b = 0; b < rest; ++b)
        hr(a, b) = H(order[static_cast<std::size_t>(i + a)], order[static_cast<std::size_t>(i + b)]);
    const Eigen::MatrixXd inv = hr.inverse();
    for (std::int64_t r = 0; r < n; ++r) {
      const double v = W(r, col);
      const double e = (v - F::requantize_weight(q.row(r), col, static_cast<float>(v))) / inv(0, 0);
      for (std::int64_t b = 1; b < rest; ++b) W(r, order[static_cast<std::size_t>(i + b)]) -= e * inv(0, b);
    }
  }
  return q.to_float();
}

template <class F>
void check_against_definition(bool act_order) {
  const std::int64_t n = 6, k = 3 * F::block_size;
  const tensor<float> x = correlated_inputs(4 * k, k, 11), w = weights(n, k, 12);
  quant::hessian h(k);
  h.add(x);
  quant::gptq_options opt;
  opt.act_order = act_order;
  opt.batch = F::block_size;  // three lazy batches
  const tensor<float> got = quant::gptq<F>(w, h, opt).to_float();
  const tensor<float> want = gptq_by_definition<F>(w, h, act_order, opt.damp);
  std::int64_t differ = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i) differ += got.data()[i] != want.data()[i];
  INFO(F::name << (act_order ? " act-order" : "") << ": " << differ << " of " << got.numel() << " weights differ");
  CHECK(differ == 0);
}

template <class F>
void check_beats_rtn(bool act_order) {
  // measured: about 0.5 of round-to-nearest in order, 0.2 to 0.25 with act-order
  const double max_ratio = act_order ? 0.35 : 0.6;
  const std::int64_t n = test::slow_build ? 16 : 48, k = 4 * std::max<std::int64_t>(F::block_size, 32);
  const tensor<float> x = correlated_inputs(8 * k, k, 21), w = weights(n, k, 22);
  quant::hessian h(k);
  h.add(x.view());
  quant::gptq_options opt;
  opt.act_order = act_order;
  const double rtn = quant::output_error(w.view(), quant::matrix<F>::quantize(w.view()), h);
  const double gptq = quant::output_error(w.view(), quant::gptq<F>(w.view(), h, opt), h);
  INFO(F::name << (act_order ? " act-order" : "") << ": output error GPTQ " << gptq << ", round-to-nearest " << rtn);
  CHECK(gptq < max_ratio * rtn);
}

/// Two observed linears, as a model holds them.
struct two_layers {
  nn::linear<quant::observed<quant::f32>> first{64, 32}, second{32, 8, false};
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    first.visit(v, prefix + "first.");
    second.visit(v, prefix + "second.");
  }
};

}  // namespace

TEST_CASE("gptq equals GPTQ's definition on every requantizable format", "[quant][gptq]") {
  for (bool act_order : {false, true}) {
    check_against_definition<quant::q4_0>(act_order);
    check_against_definition<quant::q4_1>(act_order);
    check_against_definition<quant::q5_0>(act_order);
    check_against_definition<quant::q5_1>(act_order);
    check_against_definition<quant::q8_0>(act_order);
    check_against_definition<quant::int4_group<64>>(act_order);
  }
}

TEST_CASE("gptq's output error is well below round-to-nearest's on correlated inputs", "[quant][gptq]") {
  for (bool act_order : {false, true}) {
    check_beats_rtn<quant::q4_0>(act_order);
    check_beats_rtn<quant::q4_1>(act_order);
    check_beats_rtn<quant::q5_0>(act_order);
    check_beats_rtn<quant::q8_0>(act_order);
    check_beats_rtn<quant::int4_group<128>>(act_order);
  }
}

TEST_CASE("gptq with uncorrelated inputs rounds each weight to its nearest code", "[quant][gptq]") {
  // H diagonal: U is diagonal, no error moves; the result is each weight's nearest code under the
  // scales quantize_row chose from the block.
  const std::int64_t n = 5, k = 64;
  const tensor<float> w = weights(n, k, 31);
  tensor<float> x(shape{k, k});  // zeros
  for (std::int64_t i = 0; i < k; ++i) x(i, i) = 1.0f + static_cast<float>(i % 7);
  quant::hessian h(k);
  h.add(x.view());
  const auto q = quant::gptq<quant::q4_1>(w.view(), h);
  quant::matrix<quant::q4_1> rtn = quant::matrix<quant::q4_1>::quantize(w.view());
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < k; ++c) quant::q4_1::requantize_weight(rtn.row(r), c, w(r, c));
  const tensor<float> a = q.to_float(), b = rtn.to_float();
  for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
}

TEST_CASE("requantize_weight sets one weight to its nearest code and leaves the block's scales", "[quant][gptq]") {
  const tensor<float> w = weights(1, 64, 41);
  auto check = [&](auto format) {
    using F = decltype(format);
    auto q = quant::matrix<F>::quantize(w.view());
    const tensor<float> before = q.to_float();
    const float lo = *std::min_element(before.data(), before.data() + 64);
    const float hi = *std::max_element(before.data(), before.data() + 64);
    for (float target : {0.0f, 0.013f, -0.021f, 5.0f, -5.0f}) {
      const float v = F::requantize_weight(q.row(0), 37, target);
      const tensor<float> after = q.to_float();
      INFO(F::name << " target " << target);
      CHECK(after(0, 37) == v);
      for (std::int64_t c = 0; c < 64; ++c)
        if (c != 37) CHECK(after(0, c) == before(0, c));
      // the nearest value the block can hold: never farther than the block's extreme codes allow
      CHECK(v >= std::min(lo, 0.0f) - 0.02f);
      CHECK(v <= std::max(hi, 0.0f) + 0.02f);
      for (float other : {before(0, 32), before(0, 33), before(0, 40), before(0, 63)})
        CHECK(std::fabs(v - target) <= std::fabs(other - target) + 1e-7f);
    }
  };
  check(quant::q4_0{});
  check(quant::q4_1{});
  check(quant::q5_0{});
  check(quant::q5_1{});
  check(quant::q8_0{});
  check(quant::int4_group<32>{});
}

TEST_CASE("gptq: dead inputs, dampening retries and bad input", "[quant][gptq]") {
  const std::int64_t n = 4, k = 64;
  const tensor<float> w = weights(n, k, 51);
  SECTION("a dead input is zeroed and costs nothing") {
    tensor<float> x = correlated_inputs(256, k, 52);
    for (std::int64_t r = 0; r < 256; ++r) x(r, 7) = 0.0f;
    quant::hessian h(k);
    h.add(x.view());
    const tensor<float> q = quant::gptq<quant::q8_0>(w.view(), h).to_float();
    for (std::int64_t r = 0; r < n; ++r) CHECK(q(r, 7) == 0.0f);
  }
  SECTION("a singular hessian without dampening is retried with some") {
    const tensor<float> x = correlated_inputs(8, k, 53);  // 8 rows: rank 8 < 64
    quant::hessian h(k);
    h.add(x.view());
    quant::gptq_options opt;
    opt.damp = 0;
    quant::gptq_report report;
    const auto q = quant::gptq<quant::q4_0>(w.view(), h, opt, &report);
    CHECK(report.damp > 0);
    CHECK(q.rows() == n);
  }
  SECTION("typed errors") {
    quant::hessian h(k);
    CHECK_THROWS_AS(quant::gptq<quant::q4_0>(w.view(), h), value_error);  // no calibration rows
    h.add(correlated_inputs(128, k, 54).view());
    quant::hessian other(32);
    other.add(correlated_inputs(64, 32, 55).view());
    CHECK_THROWS_AS(quant::gptq<quant::q4_0>(w.view(), other), shape_error);
    const tensor<float> odd = weights(n, 48, 56);
    quant::hessian h48(48);
    h48.add(correlated_inputs(96, 48, 57).view());
    CHECK_THAT(test::thrown_message<shape_error>([&] { (void)quant::gptq<quant::q4_0>(odd.view(), h48); }),
               Catch::Matchers::Contains("not whole blocks of 32"));
    tensor<float> bad = w;
    bad(2, 9) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THAT(test::thrown_message<value_error>([&] { (void)quant::gptq<quant::q4_0>(bad.view(), h); }),
               Catch::Matchers::Contains("weight [2, 9] is not finite"));
    quant::gptq_options opt;
    opt.damp = -1;
    CHECK_THROWS_AS(quant::gptq<quant::q4_0>(w.view(), h, opt), value_error);
    tensor<float> nan_rows = correlated_inputs(4, k, 58);
    nan_rows(1, 3) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(h.add(nan_rows.view()), value_error);
    CHECK_THROWS_AS(h.add(weights(2, 32, 59).view()), shape_error);
    CHECK_THROWS_AS(quant::hessian(0), shape_error);
  }
}

TEST_CASE("hessian accumulates (1 / N) sum x x^T over every add", "[quant][gptq]") {
  const tensor<float> a = correlated_inputs(10, 16, 61), b = correlated_inputs(6, 16, 62);
  quant::hessian h(16);
  h.add(a.view());
  h.add(b.view().reshape(shape{2, 3, 16}));
  REQUIRE(h.samples() == 16);
  const Eigen::MatrixXd got = h.matrix();
  for (std::int64_t i = 0; i < 16; ++i)
    for (std::int64_t j = 0; j < 16; ++j) {
      double want = 0;
      for (std::int64_t r = 0; r < 10; ++r) want += static_cast<double>(a(r, i)) * a(r, j);
      for (std::int64_t r = 0; r < 6; ++r) want += static_cast<double>(b(r, i)) * b(r, j);
      CHECK(got(i, j) == Approx(want / 16).epsilon(1e-5).margin(1e-6));
    }
}

TEST_CASE("hessians collects each observed linear's input while a model runs", "[quant][gptq]") {
  two_layers model;
  const tensor<float> w1 = weights(32, 64, 71), w2 = weights(8, 32, 72);
  model.first.weight.quantize_from(w1.view());
  model.second.weight.quantize_from(w2.view());
  model.first.bias = tensor<float>(shape{32}, 0.5f);
  quant::hessians hs(model);
  REQUIRE(hs.size() == 2);
  const tensor<float> x = correlated_inputs(12, 64, 73);
  tensor<float> hidden(shape{12, 32}), y(shape{12, 8});
  model.first.forward(x.view(), hidden.view());  // no observer installed: nothing recorded
  CHECK(hs.at("first.weight").samples() == 0);
  {
    quant::observe_linears scope(hs);
    model.first.forward(x.view(), hidden.view());
    model.second.forward(hidden.view(), y.view());
  }
  CHECK(hs.at("first.weight").samples() == 12);
  CHECK(hs.at("second.weight").samples() == 12);
  CHECK(hs.at("second.weight").matrix()(3, 3) > 0);
  CHECK_THROWS_AS(hs.at("third.weight"), value_error);
  // the observed layer computes what a plain f32 layer computes
  nn::linear<quant::f32> plain(64, 32);
  plain.weight.quantize_from(w1.view());
  plain.bias = tensor<float>(shape{32}, 0.5f);
  tensor<float> want(shape{12, 32});
  plain.forward(x.view(), want.view());
  for (std::int64_t i = 0; i < want.numel(); ++i) CHECK(hidden.data()[i] == want.data()[i]);
}
