// quant/hadamard.hpp: the fast Walsh-Hadamard transform against the Sylvester matrix built from
// its definition; the rotation orthogonal and its own inverse's transpose; the rotated format's
// products equal to the unrotated ones (f32: to float rounding; q4_0: less error on weights with
// outlier columns, the reason rotations exist); every product path (float rows, fused int8, tiles);
// rotated queries and keys keep their dot products; bad row lengths.
#include <tformer/io/checkpoint.hpp>
#include <tformer/nn/linear.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/hadamard.hpp>
#include <tformer/quant/matrix.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../support.hpp"

using namespace tformer;

namespace {
// H_b from the definition: H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]]; entry (i, j) = (-1)^popcount(i & j)
std::vector<double> sylvester(std::int64_t b) {
  std::vector<double> h{1.0};
  for (std::int64_t n = 1; n < b; n *= 2) {
    std::vector<double> next(static_cast<std::size_t>(4 * n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const double v = h[static_cast<std::size_t>(i * n + j)];
        next[static_cast<std::size_t>(i * 2 * n + j)] = v;
        next[static_cast<std::size_t>(i * 2 * n + j + n)] = v;
        next[static_cast<std::size_t>((i + n) * 2 * n + j)] = v;
        next[static_cast<std::size_t>((i + n) * 2 * n + j + n)] = -v;
      }
    h = std::move(next);
  }
  return h;
}

double max_abs_diff(const tensor<float>& a, const tensor<float>& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return m;
}

// weights whose columns 3 and 40 of every 64 are 40x the rest: the outliers that make 4-bit blocks coarse
tensor<float> outlier_weights(std::int64_t n, std::int64_t k, std::uint32_t seed) {
  auto w = test::random_tensor(shape{n, k}, seed);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t t = 0; t < k; ++t)
      if (t % 64 == 3 || t % 64 == 40) w(j, t) *= 40.0f;
  return w;
}
}  // namespace

TEST_CASE("walsh_hadamard is the product with the Sylvester Hadamard matrix", "[quant][hadamard]") {
  for (const std::int64_t b : {1, 2, 4, 8, 64, 256}) {
    const auto h = sylvester(b);
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t j = 0; j < b; ++j)
        REQUIRE(h[static_cast<std::size_t>(i * b + j)] == ((std::popcount(static_cast<std::uint64_t>(i & j)) % 2) ? -1.0 : 1.0));
    // integers: the transform is exact
    std::vector<float> x(static_cast<std::size_t>(b));
    for (std::int64_t t = 0; t < b; ++t) x[static_cast<std::size_t>(t)] = static_cast<float>((t * 37) % 11 - 5);
    std::vector<float> y = x;
    quant::walsh_hadamard(y.data(), b);
    for (std::int64_t i = 0; i < b; ++i) {
      double want = 0;
      for (std::int64_t t = 0; t < b; ++t) want += h[static_cast<std::size_t>(i * b + t)] * x[static_cast<std::size_t>(t)];
      REQUIRE(y[static_cast<std::size_t>(i)] == want);
    }
  }
}

TEST_CASE("hadamard_rotation is orthogonal: Q = H D / sqrt(B) block by block, Q^T undoes it", "[quant][hadamard]") {
  using R = quant::hadamard_rotation<64>;
  const std::int64_t n = 576;  // 9 blocks of 64: SmolLM2's hidden size
  // the signs are random-looking: about half negative, not periodic per block
  int negatives = 0, same_as_first_block = 0;
  for (std::int64_t t = 0; t < n; ++t) {
    negatives += R::negated(t);
    same_as_first_block += t >= 64 && R::negated(t) == R::negated(t % 64);
  }
  CHECK(negatives > 230);
  CHECK(negatives < 346);
  CHECK(same_as_first_block < 330);

  const auto h = sylvester(64);
  const auto x = test::random_floats(static_cast<std::size_t>(n), -3.0f, 3.0f, 11);
  auto y = x;
  R::rotate(y.data(), n);
  // against Q's definition in double
  double worst = 0, norm_x = 0, norm_y = 0;
  for (std::int64_t c = 0; c < n; c += 64)
    for (std::int64_t i = 0; i < 64; ++i) {
      double want = 0;
      for (std::int64_t t = 0; t < 64; ++t)
        want += h[static_cast<std::size_t>(i * 64 + t)] * (R::negated(c + t) ? -1.0 : 1.0) * x[static_cast<std::size_t>(c + t)];
      want /= 8.0;
      worst = std::max(worst, std::fabs(y[static_cast<std::size_t>(c + i)] - want));
    }
  for (std::int64_t t = 0; t < n; ++t) {
    norm_x += static_cast<double>(x[static_cast<std::size_t>(t)]) * x[static_cast<std::size_t>(t)];
    norm_y += static_cast<double>(y[static_cast<std::size_t>(t)]) * y[static_cast<std::size_t>(t)];
  }
  INFO("max |Q x - definition| = " << worst);
  CHECK(worst <= 6 * 3.0 * 64 / 8 * 0x1p-24);  // 6 rounded additions of partial sums below 3 * 64, then / 8 exactly
  CHECK(std::fabs(norm_y - norm_x) <= 1e-5 * norm_x);
  R::unrotate(y.data(), n);
  for (std::int64_t t = 0; t < n; ++t) REQUIRE(std::fabs(y[static_cast<std::size_t>(t)] - x[static_cast<std::size_t>(t)]) <= 1e-5);

  // a block that is not a power of 4: the scale 1 / sqrt(128) rounds, the rotation is still orthogonal to float accuracy
  using R128 = quant::hadamard_rotation<128, 7>;
  auto z = x;
  R128::rotate(z.data(), 512);
  R128::unrotate(z.data(), 512);
  for (std::int64_t t = 0; t < 512; ++t) REQUIRE(std::fabs(z[static_cast<std::size_t>(t)] - x[static_cast<std::size_t>(t)]) <= 1e-5);
}

TEST_CASE("rotated queries and keys keep their dot products (a rotated K cache)", "[quant][hadamard]") {
  using R = quant::hadamard_rotation<64>;
  auto q = test::random_tensor(shape{2, 3, 64}, 5), k = test::random_tensor(shape{2, 3, 64}, 6);
  const auto q0 = q, k0 = k;
  R::rotate_rows(q);
  R::rotate_rows(k);
  for (std::int64_t a = 0; a < 2; ++a)
    for (std::int64_t b = 0; b < 3; ++b) {
      double d0 = 0, d1 = 0;
      for (std::int64_t t = 0; t < 64; ++t) {
        d0 += static_cast<double>(q0(a, b, t)) * k0(a, b, t);
        d1 += static_cast<double>(q(a, b, t)) * k(a, b, t);
      }
      REQUIRE(std::fabs(d0 - d1) <= 1e-5);
    }
  R::unrotate_rows(q);
  CHECK(max_abs_diff(q, q0) <= 1e-6);
  // a strided view of every other row
  tensor<float> big(shape{4, 64});
  for (std::int64_t i = 0; i < big.numel(); ++i) big.data()[i] = static_cast<float>(i % 13);
  const auto before = big;
  tensor_view<float> every_other(big.data(), shape{2, 64}, {128, 1});
  R::rotate_rows(every_other);
  for (std::int64_t t = 0; t < 64; ++t) CHECK(big(1, t) == before(1, t));
  CHECK(big(0, 0) != before(0, 0));
}

TEST_CASE("hadamard<f32>: every product path equals the unrotated product to float rounding", "[quant][hadamard]") {
  using F = quant::hadamard<quant::f32>;
  STATIC_REQUIRE(quant::weight_format<F>);
  STATIC_REQUIRE(quant::float_product_format<F>);
  STATIC_REQUIRE(!quant::ggml_format<F>);
  STATIC_REQUIRE(!quant::file_dtype_format<F>);
  CHECK(std::string(F::name) == "hadamard64_f32");
  CHECK(F::block_size == 64);
  const std::int64_t k = 192, n = 50;
  const auto w = test::random_tensor(shape{n, k}, 1);
  const auto wq = quant::matrix<F>::quantize(w);
  CHECK(max_abs_diff(wq.to_float(), w) <= 1e-6);  // dequantize_row undoes the rotation
  const auto bias = test::random_tensor(shape{n}, 2);
  for (const std::int64_t m : {1, 3, 8, 9, 40}) {  // float rows (<= 8), dequantized tiles beyond
    const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(m));
    tensor<float> y(shape{m, n}), ref(shape{m, n});
    ops::linear(x, wq, y, bias);
    ops::linear(x, w, ref, bias);
    INFO("m = " << m);
    CHECK(max_abs_diff(y, ref) <= 2e-5);
  }
}

TEST_CASE("hadamard<q4_0>: less product error than q4_0 on weights with outlier columns", "[quant][hadamard]") {
  using plain = quant::q4_0;
  using rotated = quant::hadamard<quant::q4_0>;
  CHECK(std::string(rotated::name) == "hadamard64_q4_0");
  CHECK(rotated::bits_per_weight == plain::bits_per_weight);
  CHECK(rotated::block_bytes == 2 * plain::block_bytes);
  const std::int64_t k = 576, n = 64, m = 4;
  const auto w = outlier_weights(n, k, 3);
  const auto x = test::random_tensor(shape{m, k}, 4);
  tensor<float> ref(shape{m, n}), y_plain(shape{m, n}), y_rot(shape{m, n});
  ops::linear(x, w, ref);
  ops::linear(x, quant::matrix<plain>::quantize(w), y_plain);
  ops::linear(x, quant::matrix<rotated>::quantize(w), y_rot);
  const double e_plain = max_abs_diff(y_plain, ref), e_rot = max_abs_diff(y_rot, ref);
  INFO("max product error: q4_0 " << e_plain << ", hadamard64_q4_0 " << e_rot);
  CHECK(e_rot < 0.5 * e_plain);
  // and the weights themselves, rotated back: a smaller error in norm (the rotation spreads the
  // error over all weights, so the largest single error need not shrink)
  const auto sq_err = [&](const tensor<float>& a) {
    double s = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) s += std::pow(static_cast<double>(a.data()[i]) - w.data()[i], 2);
    return s;
  };
  const double w_plain = sq_err(quant::matrix<plain>::quantize(w).to_float());
  const double w_rot = sq_err(quant::matrix<rotated>::quantize(w).to_float());
  INFO("squared weight error: q4_0 " << w_plain << ", hadamard64_q4_0 " << w_rot);
  CHECK(w_rot < 0.5 * w_plain);
}

TEST_CASE("hadamard<q8_0>: float rows, fused int8 and dequantized tiles agree", "[quant][hadamard]") {
  using F = quant::hadamard<quant::q8_0>;
  using fused = quant::int8_activations<F>;
  STATIC_REQUIRE(quant::fused_format<F>);
  STATIC_REQUIRE(quant::uses_fused_product<fused>);
  const std::int64_t k = 256, n = 40;
  const auto w = outlier_weights(n, k, 8);
  const auto wq = quant::matrix<F>::quantize(w);
  const quant::matrix<fused> wf = [&] {  // the same bytes, opted into the fused product
    quant::matrix<fused> out(n, k);
    std::memcpy(out.data(), wq.data(), wq.size_bytes());
    return out;
  }();
  const auto wd = wq.to_float();  // Q^T of the q8_0 rows: what every path multiplies by
  for (const std::int64_t m : {1, 5, 8, 12}) {
    const auto x = test::random_tensor(shape{m, k}, static_cast<std::uint32_t>(20 + m));
    tensor<float> ref(shape{m, n}), y(shape{m, n}), yf(shape{m, n});
    ops::linear(x, wd, ref);
    ops::linear(x, wq, y);
    ops::linear(x, wf, yf);
    double scale = 0;
    for (std::int64_t i = 0; i < ref.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(ref.data()[i])));
    INFO("m = " << m << ", |y| up to " << scale);
    CHECK(max_abs_diff(y, ref) <= 2e-5 * scale);   // float rows or tiles: float rounding only
    CHECK(max_abs_diff(yf, ref) <= 2e-2 * scale);  // int8 activations round x per block of 32
  }
}

TEST_CASE("hadamard: rows that are not whole blocks, and tensors that cannot be rotated", "[quant][hadamard]") {
  using F = quant::hadamard<quant::q4_0, 64>;
  const auto msg = test::thrown_message<shape_error>([] { quant::matrix<F>(2, 96); });
  INFO(msg);
  CHECK(msg.find("hadamard64_q4_0") != std::string::npos);
  CHECK(msg.find("96") != std::string::npos);
  CHECK(quant::hadamard<quant::q4_0, 16>::block_size == 32);  // lcm(16, 32)
  CHECK(std::string(quant::hadamard<quant::q8_0, 256>::name) == "hadamard256_q8_0");
  auto t = test::random_tensor(shape{3, 48}, 1);
  const auto rmsg = test::thrown_message<shape_error>([&] { quant::hadamard_rotation<32>::rotate_rows(t); });
  INFO(rmsg);
  CHECK(rmsg.find("48") != std::string::npos);
  CHECK(rmsg.find("32") != std::string::npos);
  // a format with a row header keeps it: int8_channel's per-row scale, then the rotated row
  using G = quant::hadamard<quant::int8_channel>;
  STATIC_REQUIRE(quant::row_bytes<G>(128) == quant::row_bytes<quant::int8_channel>(128));
  const auto w = test::random_tensor(shape{3, 128}, 2);
  CHECK(max_abs_diff(quant::matrix<G>::quantize(w).to_float(), w) <= 0.02);
  tensor<float> empty(shape{0, 64});
  CHECK_NOTHROW(quant::hadamard_rotation<64>::rotate_rows(empty));
}

TEST_CASE("hadamard weights go through tformer's safetensors files as their bytes", "[quant][hadamard][io]") {
  using F = quant::hadamard<quant::q4_0>;
  nn::linear<F> a(128, 6), b(128, 6);
  nn::init_random(a, 12);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_hadamard.safetensors";
  io::save_safetensors(a, path);
  const io::safetensors_file f(path);
  CHECK(f.metadata().at(io::formats_metadata_key).find("\"hadamard64_q4_0\"") != std::string::npos);
  io::load_safetensors(b, f, io::identity_map(b));
  CHECK(std::memcmp(a.weight.data(), b.weight.data(), a.weight.size_bytes()) == 0);
  nn::linear<quant::q4_0> plain(128, 6);  // another format: not dequantized through a rotation it does not know
  const auto msg = test::thrown_message<error>([&] { io::load_safetensors(plain, f, io::identity_map(plain)); });
  INFO(msg);
  CHECK(msg.find("hadamard64_q4_0") != std::string::npos);
  std::filesystem::remove(path);
}
