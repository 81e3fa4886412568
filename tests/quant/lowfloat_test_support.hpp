// What the tests of the low-float formats (test_lowfloat, test_fp8, test_mxfp4, test_nvfp4) share:
// the reference fixture (tests/data/lowfloat_quants.safetensors, written by
// tools/make_lowfloat_fixtures.py from ml_dtypes, numpy recipes and ggml's C reference), bitwise
// comparisons that count mismatches and report the first (one REQUIRE per check, not per element),
// and the checks whose logic is the same for every format: the fixture's rows byte for byte, every
// compiled float-product path against the dequantized weights, ops::linear through its paths,
// whole blocks, the registry, and NaN scales.
#pragma once

#include <tformer/core/parallel.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/lowfloat.hpp>
#include <tformer/quant/matrix.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace tformer::test::lowfloat {

/// @brief The fixture (see the top of tools/make_lowfloat_fixtures.py).
inline const io::safetensors_file& fixture() {
  static const io::safetensors_file f(std::string(TFORMER_TEST_DATA_DIR) + "/lowfloat_quants.safetensors");
  return f;
}

/// @brief The float32 at p (little endian: fp8's and nvfp4's block scales).
inline float f32_at(const std::byte* p) {
  std::uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= std::to_integer<std::uint32_t>(p[i]) << (8 * i);
  return std::bit_cast<float>(u);
}
/// @brief Writes v at p as a little-endian float32.
inline void put_f32(std::byte* p, float v) {
  const auto u = std::bit_cast<std::uint32_t>(v);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(u >> (8 * i));
}

/// @brief The bits of a float.
inline std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }
/// @brief Same float bits, or both NaN (NaN payloads are not part of any format's definition).
inline bool same_float(float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }

/// @brief The first index where got and want differ (as same_float), or -1; counts the mismatches.
struct mismatch {
  std::int64_t first = -1, count = 0;
  void add(std::int64_t i, bool ok) {
    if (ok) return;
    if (first < 0) first = i;
    ++count;
  }
};

/// @brief F quantizes the fixture's rows (input_name) to its bytes (name) and dequantizes those
/// to its floats (name.dequantized), byte for byte and bit for bit (NaN as NaN).
template <class F>
void check_fixture_rows(const std::string& input_name, const std::string& name) {
  const auto& f = fixture();
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
    F::quantize_row(x.data() + r * cols, mine.data(), cols);
    mismatch bytes, floats;
    for (std::int64_t b = 0; b < rb; ++b)
      bytes.add(b, std::to_integer<std::uint8_t>(mine[static_cast<std::size_t>(b)]) == packed(r, b));
    F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * rb), y.data(), cols);
    for (std::int64_t j = 0; j < cols; ++j) floats.add(j, same_float(y[static_cast<std::size_t>(j)], deq(r, j)));
    INFO(name << " row " << r << ": " << bytes.count << " bytes differ, the first at " << bytes.first << "; "
              << floats.count << " floats differ, the first at " << floats.first);
    REQUIRE(bytes.count == 0);
    REQUIRE(floats.count == 0);
  }
}

/// @brief A float-product path of a low-float format.
using float_fn = void (*)(const float*, std::int64_t, std::int64_t, std::int64_t, const std::byte*, std::int64_t,
                          std::int64_t, float*, std::int64_t);

/// @brief Every path of F::float_dot compiled into this test, by name, then F::float_product.
template <class F>
std::vector<std::pair<std::string, float_fn>> float_paths() {
  std::vector<std::pair<std::string, float_fn>> p{{"scalar", &F::float_dot::scalar}};
#if defined(TFORMER_LOWFLOAT_AVX2)
  p.emplace_back("avx2", &F::float_dot::avx2);
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  p.emplace_back("avx512", &F::float_dot::avx512);
#endif
  p.emplace_back("float_product", &F::float_product);
  return p;
}

/// @brief x [m, k] with a different magnitude in every 32 (1e-3 .. 1e3) and some zeros.
inline std::vector<float> activations(std::int64_t m, std::int64_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-3.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(m * k));
  for (std::int64_t b = 0; b < m * k / 32; ++b) {
    const float scale = std::pow(10.0f, e(gen));
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(b * 32 + t)] = (t % 7 == 3) ? 0.0f : scale * u(gen);
  }
  return x;
}

/// @brief Every compiled float-product path of F against its weights dequantized by F itself, in
/// double: n packed rows (random bytes from fill(gen, blk), at an odd address: blocks are
/// unaligned), k up to 4096, m = 1 .. 9 activation rows with a row stride wider than k, and a row
/// stride of y wider than n (the gap must stay untouched). Each path is a float sum of k products of
/// exact weights, so within (k + 1) u sum_t |x_t w_t| of the exact value (u = 2^-24), and within
/// twice that of the scalar reference.
template <class F, class Fill>
void check_float_paths(Fill fill) {
  const auto paths = float_paths<F>();
  std::mt19937 gen(23);
  double worst = 0;
  std::vector<std::int64_t> ks{F::block_size, 2 * F::block_size, 768, 4096};
  if (test::slow_build) ks = {F::block_size, 768};
  for (const std::int64_t k : ks) {
    const std::int64_t nb = k / F::block_size, rb = nb * F::block_bytes;
    for (const std::int64_t n : {1, 3, 17}) {
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) fill(gen, w + j * F::block_bytes);
      std::vector<float> wd(static_cast<std::size_t>(n * k));  // [n, k]: the dequantized weights
      for (std::int64_t j = 0; j < n; ++j) F::dequantize_row(w + j * rb, wd.data() + j * k, k);
      for (std::int64_t m = 1; m <= 9; ++m) {
        if (test::slow_build && m > 2 && m != 9) continue;
        const std::int64_t ldx = k + 5, ldy = n + 3;
        const auto xv = activations(m, k, static_cast<std::uint32_t>(gen()));
        std::vector<float> x(static_cast<std::size_t>(m * ldx), 1e9f);  // the padding must never be read
        for (std::int64_t i = 0; i < m; ++i) std::copy_n(xv.begin() + i * k, k, x.begin() + i * ldx);
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        F::float_dot::scalar(x.data(), ldx, m, k, w, rb, n, ref.data(), ldy);
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(x.data(), ldx, m, k, w, rb, n, y.data(), ldy);
          std::int64_t bad = -1;
          for (std::int64_t i = 0; i < m && bad < 0; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
              double exact = 0, mag = 0;
              for (std::int64_t t = 0; t < k; ++t) {
                const double p = static_cast<double>(x[static_cast<std::size_t>(i * ldx + t)]) *
                                 wd[static_cast<std::size_t>(j * k + t)];
                exact += p;
                mag += std::fabs(p);
              }
              const double bound = static_cast<double>(k + 1) * 0x1p-24 * mag;
              const auto o = static_cast<std::size_t>(i * ldy + j);
              const double err = std::fabs(static_cast<double>(y[o]) - exact);
              const bool ok = std::isfinite(exact) ? (std::fabs(static_cast<double>(ref[o]) - exact) <= bound && err <= bound &&
                                                      std::fabs(static_cast<double>(y[o]) - ref[o]) <= 2 * bound)
                                                   : same_float(y[o], ref[o]) || (std::isnan(y[o]) && std::isnan(ref[o]));
              if (!ok && bad < 0) bad = i * n + j;
              if (mag > 0 && std::isfinite(err / mag)) worst = std::max(worst, err / mag);
            }
            for (std::int64_t j = n; j < ldy; ++j)
              if (y[static_cast<std::size_t>(i * ldy + j)] != -7.0f && bad < 0) bad = i * n + j;
          }
          INFO("path " << name << " k=" << k << " n=" << n << " m=" << m << ": first bad output " << bad);
          REQUIRE(bad < 0);
        }
      }
    }
  }
  INFO("worst |y - exact| / sum |x w| over every path: " << worst);
  CHECK(worst < 1e-5);
}

/// @brief ops::linear with weights in F: up to 8 activation rows take F::float_product, more take
/// the dequantized tiles; every path within 1e-5 sum |x w| of the float product on the dequantized
/// weights (rows for few activation rows, tiles beyond), 1 thread against 2 bit for bit, and the
/// decode path exactly F::float_product (+ bias).
template <class F>
void check_linear() {
  test::thread_guard guard;
  std::uint32_t seed = 40;
  std::vector<std::int64_t> ms{1, 2, 5, 8, 9, 33}, ks{F::block_size, 3 * F::block_size, 768}, ns{1, 17, 300};
  if (test::slow_build) {  // the unoptimized sanitizer build: a smaller grid, every path still taken
    ms = {1, 8, 9};
    ks = {F::block_size, 3 * F::block_size};
    ns = {1, 17, 70};
  }
  for (const std::int64_t k : ks) {
    for (const std::int64_t n : ns) {
      const auto wq = quant::matrix<F>::quantize(test::random_tensor(shape{n, k}, seed++));
      const auto wd = wq.to_float();
      const auto bias = test::random_tensor(shape{n}, seed++);
      for (const std::int64_t m : ms) {
        const auto xv = activations(m, k, seed++);
        tensor<float> x(shape{m, k});
        std::copy(xv.begin(), xv.end(), x.data());
        for (const bool with_bias : {false, true}) {
          const tensor_view<const float> b = with_bias ? tensor_view<const float>(bias) : tensor_view<const float>();
          tensor<float> y1(shape{m, n}), y2(shape{m, n}), ref(shape{m, n}), yf(shape{m, n});
          set_num_threads(1);
          ops::linear(x, wq, y1, b);
          ops::linear(x, wd, ref, b);
          set_num_threads(2);
          ops::linear(x, wq, y2, b);
          INFO("k=" << k << " n=" << n << " m=" << m << " bias=" << with_bias);
          REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
          if (m <= ops::few_rows) F::float_product(x.data(), k, m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
          std::int64_t bad = -1;
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < n; ++j) {
              double mag = with_bias ? std::fabs(bias(j)) : 0.0;
              for (std::int64_t t = 0; t < k; ++t) mag += std::fabs(static_cast<double>(x(i, t)) * wd(j, t));
              bool ok = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j)) <= 1e-5 * mag + 1e-30;
              if (m <= ops::few_rows) ok = ok && bits(y1(i, j)) == bits(with_bias ? yf(i, j) + bias(j) : yf(i, j));
              if (!ok && bad < 0) bad = i * n + j;
            }
          INFO("first bad output " << bad);
          REQUIRE(bad < 0);
        }
      }
    }
  }
}

/// @brief F's matrices need whole blocks (the message names F and the columns), a row of
/// 2 blocks has 2 * block_bytes, and the registry finds F by name with its bits per weight.
template <class F>
void check_whole_blocks_and_registry() {
  for (const std::int64_t cols : {std::int64_t{1}, F::block_size - 1, F::block_size + 1, F::block_size + 16, 3 * F::block_size / 2}) {
    const auto msg = test::thrown_message<shape_error>([&] { quant::matrix<F>(2, cols); });
    INFO(msg);
    CHECK(msg.find(F::name) != std::string::npos);
    CHECK(msg.find(std::to_string(cols)) != std::string::npos);
  }
  CHECK_THROWS_AS(quant::matrix<F>::quantize(test::random_tensor(shape{2, F::block_size + 8}, 1)), shape_error);
  std::vector<float> x(static_cast<std::size_t>(F::block_size + 8));
  std::vector<std::byte> out(static_cast<std::size_t>(2 * F::block_bytes));
  const auto msg = test::thrown_message<shape_error>([&] { F::quantize_row(x.data(), out.data(), F::block_size + 8); });
  INFO(msg);
  CHECK(msg.find(F::name) != std::string::npos);
  const quant::matrix<F> ok(3, 2 * F::block_size);
  CHECK(ok.row_bytes() == 2 * F::block_bytes);
  CHECK(ok.size_bytes() == static_cast<std::size_t>(6 * F::block_bytes));
  CHECK(F::bits_per_weight == 8.0 * F::block_bytes / F::block_size);

  std::string seen;
  quant::visit_format(F::name, [&](auto f) {
    using G = decltype(f);
    seen = G::name;
    CHECK((std::is_same_v<G, F>));
  });
  CHECK(seen == F::name);
  CHECK(quant::is_known_format(F::name));
}

/// @brief A block whose scale is NaN (put_nan writes it into block 1 of row 0) dequantizes to NaN
/// in every weight of that block and no other, and every float-product path gives NaN for row 0
/// and a finite value for row 1.
template <class F, class PutNan>
void check_nan_scale(PutNan put_nan) {
  const std::int64_t k = 2 * F::block_size, n = 2;
  auto wm = quant::matrix<F>::quantize(test::random_tensor(shape{n, k}, 9));
  put_nan(wm.data() + F::block_bytes);
  std::vector<float> y(static_cast<std::size_t>(k));
  F::dequantize_row(wm.data(), y.data(), k);
  std::int64_t bad = -1;
  for (std::int64_t t = 0; t < k; ++t)
    if ((t < F::block_size) != static_cast<bool>(std::isfinite(y[static_cast<std::size_t>(t)])) && bad < 0) bad = t;
  INFO("first weight of the wrong kind " << bad);
  CHECK(bad < 0);
  const auto x = activations(1, k, 5);
  for (const auto& [name, fn] : float_paths<F>()) {
    float out[2];
    fn(x.data(), k, 1, k, wm.data(), wm.row_bytes(), n, out, n);
    INFO("path " << name);
    CHECK(std::isnan(out[0]));
    CHECK(std::isfinite(out[1]));
  }
}

}  // namespace tformer::test::lowfloat
