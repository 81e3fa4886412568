// The decode product of the 16-bit element formats (quant/element_dot.hpp): every compiled path
// against the dot products of the widened weights (in double), within the bound of a float dot
// product of k terms (float_product_checks.hpp), for row counts 1..9, lengths with and without a
// tail of the vector width, and through ops::linear's decode and prefill paths.
#include <tformer/quant/bf16.hpp>
#include <tformer/quant/f16.hpp>

#include "catch.hpp"
#include "float_product_checks.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
template <class F, class E>
void check_paths(std::uint32_t seed) {
  using P = quant::detail::element_dot::product<E>;
  for (const std::int64_t k : {1, 7, 8, 16, 17, 33, 100, 768}) {
    const auto wsrc = test::random_tensor(shape{13, k}, -2.0f, 2.0f, seed + static_cast<std::uint32_t>(k));
    const auto w = quant::matrix<F>::quantize(wsrc.view());
    for (const std::int64_t m : {1, 2, 3, 4, 5, 8, 9}) {
      INFO(F::name << " k " << k << " m " << m);
      const auto x = test::random_tensor(shape{m, k}, seed + 7);
      CHECK(test::path_error<F>(&P::scalar, x, w) <= 1.0);
#if defined(TFORMER_ELEMENT_DOT_AVX2)
      CHECK(test::path_error<F>(&P::avx2, x, w) <= 1.0);
#endif
#if defined(TFORMER_ELEMENT_DOT_AVX512)
      CHECK(test::path_error<F>(&P::avx512, x, w) <= 1.0);
#endif
      CHECK(test::path_error<F>(&F::float_product, x, w) <= 1.0);
    }
  }
}
}  // namespace

TEST_CASE("element_dot: bf16 decode product, every path, within the float dot bound", "[quant][bf16]") {
  INFO("best path: " << quant::detail::element_dot::best_path);
  check_paths<quant::bf16, tformer::bf16>(11);
}

TEST_CASE("element_dot: f16 decode product, every path, within the float dot bound", "[quant][f16]") {
  check_paths<quant::f16, tformer::f16>(23);
}

TEST_CASE("element_dot: the scalar path is the widened weights' fma chain, t in order", "[quant][bf16]") {
  const std::int64_t k = 37;
  const auto wsrc = test::random_tensor(shape{3, k}, -2.0f, 2.0f, 5);
  const auto w = quant::matrix<quant::bf16>::quantize(wsrc.view());
  const auto x = test::random_tensor(shape{2, k}, 6);
  tensor<float> y(shape{2, 3});
  quant::detail::element_dot::product<tformer::bf16>::scalar(x.data(), k, 2, k, w.data(), w.row_bytes(), 3, y.data(), 3);
  const auto wf = w.to_float();
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j) {
      float acc = 0.0f;
      for (std::int64_t t = 0; t < k; ++t) acc = std::fma(wf.view()(j, t), x.view()(i, t), acc);
      CHECK(y.view()(i, j) == acc);
    }
}

TEST_CASE("element_dot: ops::linear with bf16 and f16 weights, decode and prefill", "[quant][bf16][f16]") {
  for (const std::int64_t k : {5, 64, 300}) {
    test::check_linear<quant::bf16>(k, 37, 41);
    test::check_linear<quant::f16>(k, 37, 43);
  }
}
