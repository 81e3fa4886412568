// quant::matmul_integer against ONNX's reference evaluator (tests/data/onnx_quant.safetensors,
// written by tools/make_onnx_quant_fixtures.py: uint8 / int8 operands in all four pairings, scalar,
// per-row and per-column zero points, a batched A, K = 1, all-255 operands), then every compiled
// path (scalar, avx2, avx512vnni) against the scalar reference on a grid of shapes around the
// kernels' blocking (4 rows, 16 / 32 columns, 128-column panels, K mod 2 and 4), the int32
// wrap-around past K = 33025, strided views, thread counts, empty shapes and typed errors. Every
// check is exact (integer results).
#include <tformer/core/parallel.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/quant/matmul_integer.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
namespace kern = tformer::quant::detail::matmul_integer_kernels;

namespace {

io::safetensors_file fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/onnx_quant.safetensors");
}

template <class T>
tensor<T> random_ints(const shape& s, std::mt19937& gen) {
  tensor<T> t(s);
  std::uniform_int_distribution<int> d(std::is_same_v<T, std::uint8_t> ? 0 : -128, std::is_same_v<T, std::uint8_t> ? 255 : 127);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(d(gen));
  return t;
}

/// Index of the first element where a and b differ, or -1.
std::int64_t first_difference(const tensor<std::int32_t>& a, const tensor<std::int32_t>& b) {
  if (!(a.shape() == b.shape())) return 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.data()[i] != b.data()[i]) return i;
  return -1;
}

template <class TA, class TB>
void fixture_case(const io::safetensors_file& f, const std::string& p) {
  const auto a = f.load<TA>(p + ".a");
  const auto b = f.load<TB>(p + ".b");
  const auto want = f.load<std::int32_t>(p + ".y");
  tensor<TA> az;
  tensor<TB> bz;
  if (f.find(p + ".a_zp")) az = f.load<TA>(p + ".a_zp");
  if (f.find(p + ".b_zp")) bz = f.load<TB>(p + ".b_zp");
  tensor<std::int32_t> y(want.shape());
  quant::matmul_integer(a.view(), b.view(), y.view(), az.view(), bz.view());
  CHECK(first_difference(y, want) == -1);
  // and the scalar reference itself
  tensor<std::int32_t> ys(want.shape());
  kern::scalar(kern::make_problem<TA, TB>(a.view(), b.view(), ys.view(), az.view(), bz.view()));
  CHECK(first_difference(ys, want) == -1);
}

/// Every compiled path on one problem equals the scalar reference; returns the first bad index.
template <class TA, class TB>
void check_paths(tensor_view<const TA> a, tensor_view<const TB> b, tensor_view<const TA> az, tensor_view<const TB> bz,
                 const shape& ys) {
  tensor<std::int32_t> ref(ys);
  kern::scalar(kern::make_problem<TA, TB>(a, b, ref.view(), az, bz));
#if defined(TFORMER_MATMUL_INTEGER_AVX2)
  tensor<std::int32_t> y2(ys, -7);
  kern::avx2(kern::make_problem<TA, TB>(a, b, y2.view(), az, bz));
  CHECK(first_difference(y2, ref) == -1);
#endif
#if defined(TFORMER_MATMUL_INTEGER_AVX512VNNI)
  tensor<std::int32_t> y5(ys, -7);
  kern::avx512vnni(kern::make_problem<TA, TB>(a, b, y5.view(), az, bz));
  CHECK(first_difference(y5, ref) == -1);
#endif
  tensor<std::int32_t> yb(ys, -7);
  quant::matmul_integer(a, b, yb.view(), az, bz);
  CHECK(first_difference(yb, ref) == -1);
}

template <class TA, class TB>
void path_grid(std::uint32_t seed) {
  std::mt19937 gen(seed);
  const std::int64_t ms[] = {1, 3, 4, 5, 9};
  const std::int64_t ks[] = {1, 2, 3, 5, 64, 67};
  const std::int64_t ns_full[] = {1, 15, 17, 33, 129, 300};
  const std::int64_t ns_slow[] = {1, 17, 129};
  for (const std::int64_t m : ms)
    for (const std::int64_t k : ks)
      for (const std::int64_t n : (test::slow_build ? std::span<const std::int64_t>(ns_slow) : std::span<const std::int64_t>(ns_full))) {
        INFO("M " << m << " K " << k << " N " << n);
        const auto a = random_ints<TA>(shape{m, k}, gen);
        const auto b = random_ints<TB>(shape{k, n}, gen);
        const auto az = random_ints<TA>(shape{m}, gen);
        const auto bz = random_ints<TB>(shape{n}, gen);
        const auto az1 = random_ints<TA>(shape{}, gen);
        check_paths<TA, TB>(a.view(), b.view(), az.view(), bz.view(), shape{m, n});
        check_paths<TA, TB>(a.view(), b.view(), az1.view(), {}, shape{m, n});
        check_paths<TA, TB>(a.view(), b.view(), {}, {}, shape{m, n});
      }
}

}  // namespace

TEST_CASE("matmul_integer equals ONNX's reference evaluator on every fixture case", "[quant][matmul_integer]") {
  const auto f = fixture();
  const auto all = nlohmann::json::parse(f.metadata().at("cases")).at("matmul_integer");
  REQUIRE(all.size() >= 7);
  for (const auto& c : all) {
    const std::string p = "mmi." + c.at("name").get<std::string>();
    INFO(p << " (best path " << kern::best_path << ")");
    const bool au = c.at("a") == "uint8", bu = c.at("b") == "uint8";
    if (au && bu) fixture_case<std::uint8_t, std::uint8_t>(f, p);
    else if (au) fixture_case<std::uint8_t, std::int8_t>(f, p);
    else if (bu) fixture_case<std::int8_t, std::uint8_t>(f, p);
    else fixture_case<std::int8_t, std::int8_t>(f, p);
  }
}

TEST_CASE("every compiled matmul_integer path equals the scalar reference", "[quant][matmul_integer]") {
  path_grid<std::uint8_t, std::int8_t>(1);
  path_grid<std::uint8_t, std::uint8_t>(2);
  path_grid<std::int8_t, std::int8_t>(3);
  path_grid<std::int8_t, std::uint8_t>(4);
}

TEST_CASE("matmul_integer wraps modulo 2^32 as int32 sums do, on every path", "[quant][matmul_integer]") {
  // K = 40000 products of 255 * 255 sum to 2601000000 > INT32_MAX
  const std::int64_t k = 40000;
  tensor<std::uint8_t> a(shape{2, k}, std::uint8_t{255});
  tensor<std::uint8_t> b(shape{k, 3}, std::uint8_t{255});
  tensor<std::uint8_t> z(shape{}, std::uint8_t{0});
  const auto want = static_cast<std::int32_t>(static_cast<std::uint32_t>(std::uint64_t{40000} * 65025));
  tensor<std::int32_t> y(shape{2, 3});
  quant::matmul_integer(a.view(), b.view(), y.view());
  CHECK(y.data()[0] == want);
  CHECK(y.data()[5] == want);
  check_paths<std::uint8_t, std::uint8_t>(a.view(), b.view(), z.view(), z.view(), shape{2, 3});
  // int8 extremes: (-128 - 127) * (-128 - 127) with zero points 127
  tensor<std::int8_t> ai(shape{1, k}, std::int8_t{-128}), bi(shape{k, 1}, std::int8_t{-128}), zi(shape{}, std::int8_t{127});
  tensor<std::int32_t> yi(shape{1, 1});
  quant::matmul_integer(ai.view(), bi.view(), yi.view(), zi.view(), zi.view());
  CHECK(yi.data()[0] == want);
}

TEST_CASE("matmul_integer: rank-1 and batched A, per-row zero points, strided views, threads", "[quant][matmul_integer]") {
  std::mt19937 gen(11);
  const std::int64_t m = 5, k = 23, n = 140;
  const auto a3 = random_ints<std::int8_t>(shape{2, m, k}, gen);
  const auto b = random_ints<std::uint8_t>(shape{k, n}, gen);
  const auto az = random_ints<std::int8_t>(shape{m}, gen);
  const auto bz = random_ints<std::uint8_t>(shape{n}, gen);
  tensor<std::int32_t> y3(shape{2, m, n});
  quant::matmul_integer(a3.view(), b.view(), y3.view(), az.view(), bz.view());
  // batch i equals the 2-D product of its slice; row r of it uses az[r]
  std::int64_t bad = -1;
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t s = 0;
        for (std::int64_t t = 0; t < k; ++t) s += (a3.view()(i, r, t) - az.data()[r]) * (b.view()(t, j) - bz.data()[j]);
        if (y3.view()(i, r, j) != static_cast<std::int32_t>(s) && bad < 0) bad = (i * m + r) * n + j;
      }
  CHECK(bad == -1);
  // rank-1 A [K] -> Y [N]: row 0's zero point
  tensor<std::int8_t> a1(shape{k});
  std::memcpy(a1.data(), a3.data(), static_cast<std::size_t>(k));
  tensor<std::int32_t> y1(shape{n});
  quant::matmul_integer(a1.view(), b.view(), y1.view(), az.view().slice(0, 0, 1), bz.view());
  bad = -1;
  for (std::int64_t j = 0; j < n; ++j)
    if (y1.data()[j] != y3.view()(0, 0, j) && bad < 0) bad = j;
  CHECK(bad == -1);
  // strided A (a column slice of a wider one), B transposed (a view with swapped strides), strided Y
  tensor<std::int8_t> wide(shape{m, 2 * k});
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t t = 0; t < k; ++t) wide.view()(r, t + k) = a3.view()(0, r, t);
  tensor<std::uint8_t> bt(shape{n, k});
  for (std::int64_t t = 0; t < k; ++t)
    for (std::int64_t j = 0; j < n; ++j) bt.view()(j, t) = b.view()(t, j);
  const tensor_view<const std::uint8_t> bview(bt.data(), shape{k, n}, {1, k});
  tensor<std::int32_t> ywide(shape{m, 2 * n}, -1);
  const auto ys = ywide.view().slice(1, 0, n);
  quant::matmul_integer(wide.view().slice(1, k, 2 * k), bview, ys, az.view(), bz.view());
  check_paths<std::int8_t, std::uint8_t>(wide.view().slice(1, k, 2 * k), bview, az.view(), bz.view(), shape{m, n});
  bad = -1;
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t j = 0; j < n; ++j)
      if (ys(r, j) != y3.view()(0, r, j) && bad < 0) bad = r * n + j;
  CHECK(bad == -1);
  CHECK(ywide.view()(0, n) == -1);  // untouched past the slice
  // any thread count gives the same bits
  test::thread_guard guard;
  const auto big_a = random_ints<std::uint8_t>(shape{9, 64}, gen);
  const auto big_b = random_ints<std::int8_t>(shape{64, 700}, gen);
  tensor<std::int32_t> t1(shape{9, 700}), t4(shape{9, 700});
  set_num_threads(1);
  quant::matmul_integer(big_a.view(), big_b.view(), t1.view());
  set_num_threads(4);
  quant::matmul_integer(big_a.view(), big_b.view(), t4.view());
  CHECK(first_difference(t1, t4) == -1);
}

TEST_CASE("matmul_integer: empty shapes, and typed errors naming the operand", "[quant][matmul_integer]") {
  // K = 0: zeros; M = 0 or N = 0: nothing to do
  tensor<std::uint8_t> a0(shape{3, 0});
  tensor<std::int8_t> b0(shape{0, 4});
  tensor<std::int32_t> y0(shape{3, 4}, 5);
  quant::matmul_integer(a0.view(), b0.view(), y0.view());
  CHECK(y0.data()[11] == 0);
  tensor<std::uint8_t> am(shape{0, 6});
  tensor<std::int8_t> bn(shape{6, 2});
  tensor<std::int32_t> ym(shape{0, 2});
  quant::matmul_integer(am.view(), bn.view(), ym.view());

  auto has = [](const std::string& msg, const char* what) {
    INFO(msg);
    CHECK(msg.find(what) != std::string::npos);
  };
  tensor<std::uint8_t> a(shape{3, 6});
  tensor<std::int8_t> b(shape{6, 2}), b3(shape{1, 6, 2}), bk(shape{5, 2});
  tensor<std::int32_t> y(shape{3, 2}), ybad(shape{3, 3});
  tensor<std::uint8_t> az2(shape{2}), az_m(shape{3, 1});
  tensor<std::int8_t> bz3(shape{3});
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), b3.view(), y.view()); }),
      "B must be 2-D [K, N], got [1, 6, 2] (batched B is not supported)");
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), bk.view(), y.view()); }),
      "A [3, 6] and B [5, 2] do not fit");
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), b.view(), ybad.view()); }),
      "Y [3, 3] must be [3, 2]");
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), b.view(), y.view(), az2.view()); }),
      "a_zero_point [2] must be a scalar or hold one value per row of A (3");
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), b.view(), y.view(), az_m.view()); }),
      "a_zero_point [3, 1]");
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(a.view(), b.view(), y.view(), {}, bz3.view()); }),
      "b_zero_point [3] must be a scalar or hold one value per column of B (2");
  tensor<std::uint8_t> scalar_a(shape{});
  has(test::thrown_message<shape_error>([&] { quant::matmul_integer(scalar_a.view(), b.view(), y.view()); }),
      "A must have rank 1 to 4");
}
