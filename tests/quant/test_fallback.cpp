// quant/fallback.hpp: rows that are whole Primary blocks take Primary's bytes, the others
// Secondary's, exactly as the two formats alone would store them; every product path equals that
// format's; GGUF files hold the matrix as tensors of the two ggml types (llama.cpp's "Q4_K"
// SmolLM2 layout) and load back as they are; the registry knows llama.cpp's fallbacks.
#include <tformer/io/gguf.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/fallback.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/hadamard.hpp>
#include <tformer/quant/matrix.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "../catch.hpp"
#include "../support.hpp"

using namespace tformer;
using F = quant::q4_k_or_q5_0;

namespace {
template <class A, class B>
bool same_bytes(const quant::matrix<A>& a, const quant::matrix<B>& b) {
  return a.size_bytes() == b.size_bytes() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}
bool same_floats(const tensor<float>& a, const tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(float)) == 0;
}
// y = x W^T through matrix<G> in each path: float rows (m <= 8), tiles (m > 8), fused int8 when G has
// it (m <= ops::fused_rows_limit)
template <class G>
tensor<float> product(const tensor<float>& x, const tensor<float>& w) {
  tensor<float> y(shape{x.dim(0), w.dim(0)});
  ops::linear(x, quant::matrix<G>::quantize(w), y);
  return y;
}
}  // namespace

TEST_CASE("fallback: each row length takes its format's layout and bytes", "[quant][fallback]") {
  CHECK(std::string(F::name) == "q4_k_or_q5_0");
  STATIC_REQUIRE(F::block_size == 32);
  STATIC_REQUIRE(quant::row_bytes<F>(576) == quant::row_bytes<quant::q5_0>(576));   // 18 blocks of 22 bytes
  STATIC_REQUIRE(quant::row_bytes<F>(1536) == quant::row_bytes<quant::q4_k>(1536));  // 6 super-blocks of 144
  STATIC_REQUIRE(quant::ggml_type_for<F>(576) == 6);    // GGML_TYPE_Q5_0
  STATIC_REQUIRE(quant::ggml_type_for<F>(1536) == 12);  // GGML_TYPE_Q4_K
  const auto narrow = test::random_tensor(shape{7, 576}, 1), wide = test::random_tensor(shape{5, 1536}, 2);
  CHECK(same_bytes(quant::matrix<F>::quantize(narrow), quant::matrix<quant::q5_0>::quantize(narrow)));
  CHECK(same_bytes(quant::matrix<F>::quantize(wide), quant::matrix<quant::q4_k>::quantize(wide)));
  CHECK(same_floats(quant::matrix<F>::quantize(wide).to_float(), quant::matrix<quant::q4_k>::quantize(wide).to_float()));
  CHECK(same_floats(quant::matrix<F>::quantize(narrow).to_float(), quant::matrix<quant::q5_0>::quantize(narrow).to_float()));
  // rows that are not whole blocks of the fallback either
  const auto msg = test::thrown_message<shape_error>([] { quant::matrix<F>(2, 40); });
  INFO(msg);
  CHECK(msg.find("q4_k_or_q5_0") != std::string::npos);
}

TEST_CASE("fallback: every product path is its format's, bit for bit", "[quant][fallback]") {
  using fused = quant::int8_activations<F>;
  STATIC_REQUIRE(quant::uses_fused_product<fused>);
  for (const std::int64_t k : {576, 1536}) {
    const auto w = test::random_tensor(shape{40, k}, static_cast<std::uint32_t>(k));
    for (const std::int64_t m : {1, 3, 8, 12}) {
      const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(k + m));
      INFO("k = " << k << ", m = " << m);
      if (k == 576) {
        CHECK(same_floats(product<F>(x, w), product<quant::q5_0>(x, w)));
        CHECK(same_floats(product<fused>(x, w), product<quant::int8_activations<quant::q5_0>>(x, w)));
      } else {
        CHECK(same_floats(product<F>(x, w), product<quant::q4_k>(x, w)));
        CHECK(same_floats(product<fused>(x, w), product<quant::int8_activations<quant::q4_k>>(x, w)));
      }
    }
  }
}

TEST_CASE("fallback: GGUF holds each matrix in its row length's ggml type and loads it as it is", "[quant][fallback][gguf]") {
  const auto narrow = quant::matrix<F>::quantize(test::random_tensor(shape{3, 576}, 5));
  const auto wide = quant::matrix<F>::quantize(test::random_tensor(shape{2, 1536}, 6));
  const auto q8 = quant::matrix<quant::q8_0>::quantize(test::random_tensor(shape{2, 1536}, 7));
  const auto p = std::filesystem::temp_directory_path() / "tformer_test_fallback.gguf";
  {
    io::gguf_writer w;
    w.add_tensor("narrow", narrow);
    w.add_tensor("wide", wide);
    w.add_tensor("q8", q8);
    w.write(p.string());
  }
  {
    const io::gguf_file f(p.string());
    CHECK(f.at("narrow").type_name == "Q5_0");
    CHECK(f.at("wide").type_name == "Q4_K");
    quant::matrix<F> a, b, c;
    f.read("narrow", a);
    f.read("wide", b);
    f.read("q8", c);  // another type: dequantized and quantized into Q4_K
    CHECK(same_bytes(a, narrow));
    CHECK(same_bytes(b, wide));
    const auto want = quant::matrix<quant::q4_k>::quantize(q8.to_float());
    CHECK(same_bytes(c, want));
  }
  std::filesystem::remove(p);
}

TEST_CASE("fallback: llama.cpp's fallbacks are registered; a rotation keeps the row layout", "[quant][fallback]") {
  for (const char* name : {"q4_k_or_q5_0", "q5_k_or_q5_1", "q6_k_or_q8_0", "q3_k_or_q4_0", "q2_k_or_q4_0", "iq4_xs_or_iq4_nl"}) {
    INFO(name);
    CHECK(quant::is_known_format(name));
  }
  std::int64_t bytes = 0;
  quant::visit_format("q6_k_or_q8_0", [&](auto fmt) { bytes = quant::row_bytes<decltype(fmt)>(576); });
  CHECK(bytes == quant::row_bytes<quant::q8_0>(576));
  using R = quant::hadamard<F>;
  STATIC_REQUIRE(quant::row_bytes<R>(576) == quant::row_bytes<quant::q5_0>(576));
  STATIC_REQUIRE(quant::row_bytes<R>(1536) == quant::row_bytes<quant::q4_k>(1536));
  const auto w = test::random_tensor(shape{4, 1536}, 9);
  CHECK(same_bytes(quant::matrix<R>::quantize(w), quant::matrix<quant::hadamard<quant::q4_k>>::quantize(w)));
  const auto v = test::random_tensor(shape{4, 576}, 10);
  CHECK(same_bytes(quant::matrix<R>::quantize(v), quant::matrix<quant::hadamard<quant::q5_0>>::quantize(v)));
}
