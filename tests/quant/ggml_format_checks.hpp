// Checks shared by the tests of the 5-bit and non-linear ggml formats (test_q5_0, test_q5_1,
// test_iq4_nl), on top of ggml_test_support.hpp: the reference fixture's extra rows, a GGUF round
// trip through io::gguf_writer, and NaN scales.
#pragma once

#include <tformer/io/gguf.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

namespace tformer::test::ggml {

/// @brief F quantizes the fixture's rows input_name to the fixture's bytes (entry name) and
/// dequantizes those to its floats (name.dequantized), byte for byte.
template <class F>
void check_fixture_rows(const io::safetensors_file& f, const std::string& input_name, const std::string& name) {
  const auto x = f.load<float>(input_name);
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  const auto packed = f.load<std::uint8_t>(name);
  const auto deq = f.load<float>(name + ".dequantized");
  const std::int64_t rb = quant::row_bytes<F>(cols);
  REQUIRE(packed.shape() == shape{rows, rb});
  REQUIRE(deq.shape() == shape{rows, cols});
  std::vector<std::byte> mine(static_cast<std::size_t>(rb));
  std::vector<float> y(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    INFO(name << " row " << r);
    F::quantize_row(x.data() + r * cols, mine.data(), cols);
    REQUIRE(std::memcmp(mine.data(), packed.data() + r * rb, static_cast<std::size_t>(rb)) == 0);
    F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * rb), y.data(), cols);
    for (std::int64_t j = 0; j < cols; ++j)
      REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(deq(r, j)));
  }
}

/// @brief A matrix in F written to a GGUF file by io::gguf_writer comes back with its bytes and
/// ggml type (type_name), loads as float as F dequantizes it, reads into a quant::matrix<F> as it
/// is, and visit_ggml_type finds F for its type.
template <class F>
void check_gguf_round_trip(const char* type_name) {
  const auto w_src = test::random_tensor(shape{5, 96}, 77);
  const auto q = quant::matrix<F>::quantize(w_src);
  const auto p = std::filesystem::temp_directory_path() / (std::string("tformer_test_") + F::name + ".gguf");
  {
    io::gguf_writer w;
    w.add_tensor("w", q);
    w.write(p.string());
  }
  {
    io::gguf_file f(p.string());
    const auto& t = f.at("w");
    CHECK(t.type_name == type_name);
    CHECK(t.ggml_type == F::ggml_type);
    CHECK(t.shape == std::vector<std::int64_t>{5, 96});
    REQUIRE(f.bytes(t).size() == q.size_bytes());
    CHECK(std::memcmp(f.bytes(t).data(), q.data(), q.size_bytes()) == 0);
    const auto want = q.to_float();
    const auto got = f.load_float("w");
    REQUIRE(got.numel() == want.numel());
    CHECK(std::memcmp(got.data(), want.data(), static_cast<std::size_t>(want.numel()) * sizeof(float)) == 0);
    quant::matrix<F> back;
    f.read("w", back);
    CHECK(back.shape() == shape{5, 96});
    CHECK(std::memcmp(back.data(), q.data(), q.size_bytes()) == 0);
    std::string seen;
    CHECK(quant::visit_ggml_type(F::ggml_type, [&](auto fmt) { seen = decltype(fmt)::name; }));
    CHECK(seen == F::name);
  }
  std::filesystem::remove(p);
}

/// @brief A block whose scale is a NaN (bits 0x7E00, written by put_nan at the block) dequantizes
/// to NaN in every weight, as ggml's float arithmetic does, and every product path gives NaN for
/// the weight row that holds it and finite values for the others.
template <class F, class PutNan>
void check_nan_scale(PutNan put_nan) {
  constexpr std::int64_t k = 64, n = 2;
  auto wm = quant::matrix<F>::quantize(test::random_tensor(shape{n, k}, 9));
  put_nan(wm.data() + F::block_bytes);  // row 0, block 1
  std::vector<float> y(static_cast<std::size_t>(k));
  F::dequantize_row(wm.data(), y.data(), k);
  for (std::int64_t t = 0; t < 32; ++t) CHECK(std::isfinite(y[static_cast<std::size_t>(t)]));
  for (std::int64_t t = 32; t < 64; ++t) CHECK(std::isnan(y[static_cast<std::size_t>(t)]));
  const auto x = activations_for(1, k, 5);
  float out[n];
  F::float_product(x.data(), k, 1, k, wm.data(), wm.row_bytes(), n, out, n);
  CHECK(std::isnan(out[0]));
  CHECK(std::isfinite(out[1]));
  auto acts = allocate_aligned<std::byte>(F::activation_bytes(1, k));
  F::prepare_activations(x.data(), k, 1, k, acts.get());
  F::fused_product(acts.get(), 1, k, wm.data(), wm.row_bytes(), n, out, n);
  CHECK(std::isnan(out[0]));
  CHECK(std::isfinite(out[1]));
}

}  // namespace tformer::test::ggml
