// The weight-format seam: a format written in user code (here, a toy 4-weight block with a float
// scale) satisfies quant::weight_format and then works everywhere a format is accepted — packed
// matrices, ops::linear's dequantize-tiles path, nn::linear, random init, save and load — with no
// change to the library.
#include <tformer/io/checkpoint.hpp>
#include <tformer/nn/linear.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/format.hpp>
#include <tformer/quant/matrix.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
// 4 weights per block: a float scale, then 4 int8 values (x = scale * q).
struct toy4 {
  static constexpr const char* name = "toy4";
  static constexpr std::int64_t block_size = 4;
  static constexpr std::int64_t block_bytes = 8;
  static constexpr double bits_per_weight = 16.0;
  static void quantize_row(const float* x, std::byte* out, std::int64_t n) {
    for (std::int64_t b = 0; b < n / 4; ++b) {
      float amax = 0;
      for (int j = 0; j < 4; ++j) amax = std::max(amax, std::fabs(x[4 * b + j]));
      const float d = amax / 127.0f, id = d != 0 ? 1 / d : 0;
      std::memcpy(out + 8 * b, &d, 4);
      for (int j = 0; j < 4; ++j) out[8 * b + 4 + j] = static_cast<std::byte>(static_cast<std::int8_t>(std::round(x[4 * b + j] * id)));
    }
  }
  static void dequantize_row(const std::byte* in, float* y, std::int64_t n) {
    for (std::int64_t b = 0; b < n / 4; ++b) {
      float d;
      std::memcpy(&d, in + 8 * b, 4);
      for (int j = 0; j < 4; ++j) y[4 * b + j] = d * static_cast<float>(static_cast<std::int8_t>(in[8 * b + 4 + j]));
    }
  }
};
}  // namespace

static_assert(quant::weight_format<toy4>);
static_assert(!quant::element_format<toy4> && !quant::fused_format<toy4> && !quant::file_dtype_format<toy4>);
static_assert(quant::element_format<quant::f32> && quant::file_dtype_format<quant::bf16>);
static_assert(!quant::weight_format<float>, "a plain type is not a format");

TEST_CASE("a format defined outside the library works in matrices, products, layers and files", "[quant][format]") {
  const auto w = test::random_tensor(shape{70, 12}, 3);  // [N, K]
  const auto m = quant::matrix<toy4>::quantize(w);
  CHECK(m.row_bytes() == 24);
  CHECK(m.size_bytes() == 70 * 24);
  const auto back = m.to_float();
  for (std::int64_t i = 0; i < w.numel(); ++i) REQUIRE(std::fabs(back.data()[i] - w.data()[i]) <= 1.0f / 254 + 1e-6f);

  // the product equals the product with the dequantized weights (the generic prefill path)
  const auto x = test::random_tensor(shape{600, 12}, 4);
  tensor<float> y(shape{600, 70}), want(shape{600, 70});
  ops::linear(x, m, y);
  ops::linear(x, back, want);
  for (std::int64_t i = 0; i < y.numel(); ++i) REQUIRE(std::fabs(y.data()[i] - want.data()[i]) <= 1e-5f);

  // a linear layer in the format, initialized, saved as packed bytes, loaded back as they are
  nn::linear<toy4> a(12, 8), b(12, 8);
  nn::init_random(a, 5);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_toy4.safetensors";
  io::save_safetensors(a, path);
  CHECK(io::load_safetensors(b, io::safetensors_file(path), io::identity_map(b)) == 2);  // bytes as they are
  CHECK(std::memcmp(a.weight.data(), b.weight.data(), a.weight.size_bytes()) == 0);
  // into a float layer it would have to be dequantized, which needs a registered format
  nn::linear<> f(12, 8);
  const auto msg = test::thrown_message<io_error>([&] { io::load_safetensors(f, io::safetensors_file(path), io::identity_map(f)); });
  CHECK(msg.find("format 'toy4'") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("row_bytes follows the block geometry", "[quant][format]") {
  CHECK(quant::row_bytes<toy4>(12) == 24);
  CHECK(quant::row_bytes<quant::f32>(5) == 20);
  CHECK_THROWS_AS(quant::matrix<toy4>(3, 6), shape_error);  // 6 is not a multiple of 4
}
