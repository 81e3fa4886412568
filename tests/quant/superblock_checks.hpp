// Checks shared by the tests of ggml's super-block formats (test_tq2_0, test_iq4_xs, test_q2_k,
// test_q3_k: 256 weights a block, a float product, and for all but iq4_xs a fused int8 product on
// ggml's Q8_K activations): the geometry, the reference fixture
// (tests/data/ggml_lowbit_quants.safetensors, ggml's own C quantizers and dequantizers, written by
// tools/make_lowbit_fixtures.py), every compiled float-product and fused-product path against the
// scalar reference and the exact value, ops::linear, a GGUF round trip, whole blocks, the
// registry and NaN scales. What a check needs of a format comes in as a callable (a random block's bytes, the
// scale fields to poison). Big loops count their failures and assert once, naming the first.
#pragma once

#include <tformer/core/memory.hpp>
#include <tformer/core/parallel.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q8_k.hpp>
#include <tformer/quant/superblock_dot.hpp>

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
#include "ggml_test_support.hpp"  // half_value, half_bits_ref, put_u16, u16_at, activations_for, padded_rows
#include "support.hpp"

namespace tformer::test::superblock {

using ggml::bits;
using ggml::failures;

/// @brief The reference fixture: ggml's C quantizers and dequantizers on 16 rows of 512 floats.
inline io::safetensors_file lowbit_fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/ggml_lowbit_quants.safetensors");
}

/// @brief F is a float-product weight format of 256-weight super-blocks of block_bytes bytes.
template <class F>
void check_geometry(std::int64_t block_bytes, double bits_per_weight) {
  STATIC_REQUIRE(quant::weight_format<F>);
  STATIC_REQUIRE(quant::float_product_format<F>);
  STATIC_REQUIRE(quant::ggml_format<F>);
  STATIC_REQUIRE_FALSE(quant::element_format<F>);
  CHECK(F::block_size == 256);
  CHECK(F::block_bytes == block_bytes);
  CHECK(F::bits_per_weight == bits_per_weight);
  CHECK(F::bits_per_weight == 8.0 * F::block_bytes / F::block_size);
  CHECK(quant::row_bytes<F>(4096) == 16 * block_bytes);
  INFO("float_product uses " << quant::detail::superblock_dot::best_float_path);
}

/// @brief F quantizes the fixture's input rows to ggml's bytes (entry name) and dequantizes the
/// fixture's random blocks (name.random) to ggml's floats (name.random.dequantized), bit for bit;
/// quant::matrix<F>::quantize packs the rows the same way.
template <class F>
void check_fixture(const io::safetensors_file& f, const std::string& name) {
  const auto x = f.load<float>("input");
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  const auto packed = f.load<std::uint8_t>(name);
  const std::int64_t rb = quant::row_bytes<F>(cols);
  REQUIRE(packed.shape() == shape{rows, rb});
  std::vector<std::byte> mine(static_cast<std::size_t>(rb));
  failures bad;
  for (std::int64_t r = 0; r < rows; ++r) {
    F::quantize_row(x.data() + r * cols, mine.data(), cols);
    for (std::int64_t i = 0; i < rb; ++i)
      if (std::to_integer<int>(mine[static_cast<std::size_t>(i)]) != packed(r, i))
        bad.add([&](auto& s) {
          s << name << " row " << r << " byte " << i << " (block " << i / F::block_bytes << ", offset "
            << i % F::block_bytes << "): got " << std::to_integer<int>(mine[static_cast<std::size_t>(i)]) << ", ggml "
            << int{packed(r, i)};
        });
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  const auto m = quant::matrix<F>::quantize(x);
  CHECK(std::memcmp(m.data(), packed.data(), m.size_bytes()) == 0);

  const auto rnd = f.load<std::uint8_t>(name + ".random");
  const auto deq = f.load<float>(name + ".random.dequantized");
  const std::int64_t nb = rnd.shape()[0];
  REQUIRE(rnd.shape() == shape{nb, F::block_bytes});
  REQUIRE(deq.shape() == shape{nb, 256});
  std::vector<float> y(static_cast<std::size_t>(nb * 256));
  F::dequantize_row(reinterpret_cast<const std::byte*>(rnd.data()), y.data(), nb * 256);
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t t = 0; t < 256; ++t)
      if (bits(y[static_cast<std::size_t>(b * 256 + t)]) != bits(deq(b, t)))
        bad.add([&](auto& s) { s << name << ".random block " << b << " weight " << t << ": " << y[static_cast<std::size_t>(b * 256 + t)] << " vs ggml " << deq(b, t); });
  TFORMER_REQUIRE_NO_FAILURES(bad);
}

/// @brief ggml::float_paths_worst for F (kernels FloatDot, a superblock_dot::float_dot<...>): k up
/// to 4096 (1024 in the unoptimized build), m = 1 .. 9; every path within 1e-5 sum |x w| of the
/// exact value. Returns the worst |y - exact| / sum |x w| seen.
template <class F, class FloatDot, class Fill>
double check_float_paths(Fill fill) {
  const auto ks = test::slow_build ? std::vector<std::int64_t>{256, 512, 1024} : std::vector<std::int64_t>{256, 512, 1024, 4096};
  const double worst = ggml::float_paths_worst<F, FloatDot>(fill, ks, {1, 2, 3, 4, 5, 6, 7, 8, 9}, ggml::activations_for);
  INFO("worst |y - exact| / sum |x w| over every path: " << worst);
  CHECK(worst < 1e-5);
  return worst;
}

/// @brief ops::linear with weights in F: up to 8 activation rows take F::float_product (checked
/// bit for bit, + bias), more rows the dequantized tiles; every result within 1e-5 sum |x w| of the
/// float product on the dequantized weights, and 1 thread against 2, bit for bit. tweak(wf) may
/// change the float weights before they are quantized. Returns the worst error / sum |x w|.
template <class F, class Tweak>
double check_linear(Tweak tweak) {
  test::thread_guard guard;
  std::uint32_t seed = 40;
  double worst = 0;
  // the unoptimized sanitizer build sweeps a smaller grid: still both paths (rows, tiles), column
  // tiles (n >= 768) and remainders
  const std::vector<std::int64_t> ms =
      test::slow_build ? std::vector<std::int64_t>{1, 5, 9} : std::vector<std::int64_t>{1, 2, 5, 8, 9, 33, 70};
  const std::vector<std::int64_t> ks = test::slow_build ? std::vector<std::int64_t>{256, 512} : std::vector<std::int64_t>{256, 768};
  const std::vector<std::int64_t> ns = test::slow_build ? std::vector<std::int64_t>{1, 17, 800} : std::vector<std::int64_t>{1, 17, 1000};
  for (const std::int64_t k : ks) {
    for (const std::int64_t n : ns) {  // 800, 1000 columns: several column tiles
      auto wf = test::random_tensor(shape{n, k}, seed++);
      tweak(wf);
      const auto wq = quant::matrix<F>::quantize(wf);
      const auto wd = wq.to_float();
      const auto bias = test::random_tensor(shape{n}, seed++);
      for (const std::int64_t m : ms) {
        const auto xv = ggml::activations_for(m, k, seed++);
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
          const bool rows_path = m <= ops::few_rows;
          if (rows_path) F::float_product(x.data(), k, m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
          failures bad;
          for (std::int64_t i = 0; i < m; ++i) {
            const float* xi = x.data() + i * k;
            for (std::int64_t j = 0; j < n; ++j) {
              const float* wj = wd.data() + j * k;
              double mag = with_bias ? std::fabs(bias(j)) : 0.0;
              for (std::int64_t t = 0; t < k; ++t) mag += std::fabs(static_cast<double>(xi[t]) * wj[t]);
              const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
              if (!(err <= 1e-5 * mag + 1e-30)) bad.add([&](auto& s) { s << "i=" << i << " j=" << j << " err " << err << " mag " << mag; });
              if (rows_path && bits(y1(i, j)) != bits(with_bias ? yf(i, j) + bias(j) : yf(i, j)))
                bad.add([&](auto& s) { s << "i=" << i << " j=" << j << ": linear is not float_product"; });
              if (mag > 0) worst = std::max(worst, err / mag);
            }
          }
          TFORMER_REQUIRE_NO_FAILURES(bad);
        }
      }
    }
  }
  return worst;
}

/// @brief A super-block's integers as the fused product multiplies them, decoded by a test on its
/// own: w_t = d s_g q_t - dmin m_g, g = t / 16, q_t less the format's zero.
struct int_block {
  double d = 0, dmin = 0;
  int s[16] = {}, m[16] = {};
  int q[256] = {};
};

/// @brief The exact value (in double) of super-block blk's term with activation block ab (ggml's
/// Q8_K: d_x, qx) and its magnitude: d_w d_x sumi - dmin_w d_x summ, sumi = sum_g s_g sum_t q_t
/// qx_t, summ = sum_g m_g sum_t qx_t.
template <class Decode>
std::pair<double, double> fused_term(Decode& decode, const std::byte* blk, const std::byte* ab) {
  namespace q8k = quant::detail::q8_k;
  const int_block w = decode(blk);
  const double dx = q8k::scale_of(ab);
  const std::int8_t* qx = q8k::q_of(ab);
  std::int64_t sumi = 0, summ = 0;
  for (int g = 0; g < 16; ++g) {
    std::int64_t sg = 0, bs = 0;
    for (int t = 16 * g; t < 16 * g + 16; ++t) {
      sg += std::int64_t{w.q[t]} * qx[t];
      bs += qx[t];
    }
    sumi += w.s[g] * sg;
    summ += w.m[g] * bs;
  }
  const double a = w.d * dx * static_cast<double>(sumi), b = w.dmin * dx * static_cast<double>(summ);
  return {a - b, std::fabs(a) + std::fabs(b)};
}

/// @brief A fused-product path: y[i * ldy + j] for i < m, j < n.
using fused_fn = void (*)(const std::byte*, std::int64_t, std::int64_t, const std::byte*, std::int64_t, std::int64_t,
                          float*, std::int64_t);

/// @brief Every compiled path of F's fused int8 product (kernels Dot, a kquant_dot::fused<...>) and
/// F::fused_product give the scalar reference's bits (kquant_dot.hpp: the same integers, then the
/// same float operations in the same order), and the scalar path is within (2 nb + 2) u M of the
/// exact value of its integers (decode(blk), the test's own reading of a block; 2 nb float terms,
/// each with a rounded coefficient, M the sum of their magnitudes): random blocks from fill(gen,
/// blk), k up to 4096 (1024 unoptimized), n rows at an odd address, m = 1 .. 9, y with a gap. F's
/// activations are q8_k::prepare's bytes. Returns the worst |scalar - exact| / M.
template <class F, class Dot, class Fill, class Decode>
double check_fused_paths(Fill fill, Decode decode) {
  namespace q8k = quant::detail::q8_k;
  std::vector<std::pair<std::string, fused_fn>> paths{{"scalar", &Dot::scalar}};
#if defined(TFORMER_GGML_DOT_AVX2)
  paths.emplace_back("avx2", &Dot::avx2);
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  paths.emplace_back("avx512vnni", &Dot::avx512vnni);
#endif
  paths.emplace_back("fused_product", &F::fused_product);
  std::mt19937 gen(29);
  double worst = 0;
  failures bad;
  const std::vector<std::int64_t> ks = test::slow_build ? std::vector<std::int64_t>{256, 512, 1024}
                                                        : std::vector<std::int64_t>{256, 512, 1024, 4096};
  for (const std::int64_t k : ks) {
    const std::int64_t nb = k / 256, rb = nb * F::block_bytes;
    for (const std::int64_t n : {1, 3, 17}) {
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) fill(gen, w + j * F::block_bytes);
      for (std::int64_t m = 1; m <= 9; ++m) {
        const auto x = ggml::activations_for(m, k, static_cast<std::uint32_t>(gen()));
        REQUIRE(F::activation_bytes(m, k) == q8k::bytes(m, k));
        auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
        auto want_acts = allocate_aligned<std::byte>(q8k::bytes(m, k));
        std::memset(acts.get(), 0, F::activation_bytes(m, k));
        std::memset(want_acts.get(), 0, q8k::bytes(m, k));
        F::prepare_activations(x.data(), k, m, k, acts.get());
        q8k::prepare(x.data(), k, m, k, want_acts.get());
        REQUIRE(std::memcmp(acts.get(), want_acts.get(), q8k::bytes(m, k)) == 0);
        const std::int64_t ldy = n + 3;
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        Dot::scalar(acts.get(), m, k, w, rb, n, ref.data(), ldy);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const auto [te, ta] = fused_term(decode, w + j * rb + b * F::block_bytes, q8k::activations::block_at(acts.get(), k, i, b));
              e += te;
              a += ta;
            }
            const double err = std::fabs(static_cast<double>(ref[static_cast<std::size_t>(i * ldy + j)]) - e);
            if (!(err <= (2.0 * static_cast<double>(nb) + 2.0) * 0x1p-24 * a))
              bad.add([&](auto& s) { s << "scalar k=" << k << " n=" << n << " m=" << m << " i=" << i << " j=" << j << ": err " << err << " M " << a; });
            if (a > 0) worst = std::max(worst, err / a);
          }
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(acts.get(), m, k, w, rb, n, y.data(), ldy);
          for (std::size_t o = 0; o < y.size(); ++o)
            if (bits(y[o]) != bits(ref[o]))
              bad.add([&](auto& s) { s << "path " << name << " k=" << k << " n=" << n << " m=" << m << " at " << o << ": " << y[o] << " vs scalar " << ref[o]; });
        }
      }
    }
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  return worst;
}

/// @brief ops::linear with int8_activations<F>: up to ops::fused_rows_limit activation rows take
/// F::fused_product (bit for bit, + bias), more rows the float tiles; 1 thread against 2, bit for bit. The fused result
/// is within this bound of the float product on the dequantized weights: sum_t |w_t| |x_t - d_x
/// qx_t| (the activations' rounding, measured exactly) + (2 nb + 4) u M (the fused float terms,
/// decode as in check_fused_paths) + (k + 3) u sum_t |x_t w_t| (the float product's sums and the
/// weights' one rounding). Returns the worst |fused - float| / sum |x w|.
template <class F, class Decode>
double check_fused_linear(Decode decode) {
  namespace q8k = quant::detail::q8_k;
  using fast = quant::int8_activations<F>;
  test::thread_guard guard;
  std::uint32_t seed = 60;
  double worst = 0;
  const std::vector<std::int64_t> ks = test::slow_build ? std::vector<std::int64_t>{256} : std::vector<std::int64_t>{256, 768};
  const std::vector<std::int64_t> ms = test::slow_build ? std::vector<std::int64_t>{1, 8, 9} : std::vector<std::int64_t>{1, 3, 8, 9, 33};
  for (const std::int64_t k : ks) {
    for (const std::int64_t n : {1, 17, 800}) {  // 800 columns: several column tiles
      auto wf = test::random_tensor(shape{n, k}, seed++);
      for (std::int64_t j = 0; j < n; j += 3)  // every third row off-centre
        for (std::int64_t t = 0; t < k; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
      const auto wq = quant::matrix<fast>::quantize(wf);
      const auto wd = wq.to_float();
      const auto bias = test::random_tensor(shape{n}, seed++);
      for (const std::int64_t m : ms) {
        const auto xv = ggml::activations_for(m, k, seed++);
        tensor<float> x(shape{m, k});
        std::copy(xv.begin(), xv.end(), x.data());
        tensor<float> y1(shape{m, n}), y2(shape{m, n}), ref(shape{m, n}), yf(shape{m, n});
        set_num_threads(1);
        ops::linear(x, wq, y1, bias);
        ops::linear(x, wd, ref, bias);
        set_num_threads(2);
        ops::linear(x, wq, y2, bias);
        INFO("k=" << k << " n=" << n << " m=" << m);
        REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
        if (m > std::max<std::int64_t>(F::max_fused_rows, ops::fused_rows_limit)) continue;  // the float tiles: check_linear's business
        auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
        F::prepare_activations(x.data(), k, m, k, acts.get());
        F::fused_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
        failures bad;
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            if (bits(y1(i, j)) != bits(yf(i, j) + bias(j))) bad.add([&](auto& s) { s << "i=" << i << " j=" << j << ": linear is not fused_product"; });
            double act = 0, mag = std::fabs(bias(j)), terms = 0;
            for (std::int64_t b = 0; b < k / 256; ++b) {
              const std::byte* ab = q8k::activations::block_at(acts.get(), k, i, b);
              for (int t = 0; t < 256; ++t) {
                const std::int64_t c = b * 256 + t;
                const double xt = x(i, c), wt = wd(j, c);
                act += std::fabs(wt) * std::fabs(xt - static_cast<double>(q8k::scale_of(ab)) * q8k::q_of(ab)[t]);
                mag += std::fabs(xt * wt);
              }
              terms += fused_term(decode, wq.row(j) + b * F::block_bytes, ab).second;
            }
            const double bound = act + (2.0 * static_cast<double>(k / 256) + 4) * 0x1p-24 * terms + static_cast<double>(k + 3) * 0x1p-24 * mag + 1e-30;
            const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
            if (!(err <= bound)) bad.add([&](auto& s) { s << "i=" << i << " j=" << j << ": err " << err << " bound " << bound; });
            if (mag > 0) worst = std::max(worst, err / mag);
          }
        TFORMER_REQUIRE_NO_FAILURES(bad);
      }
    }
  }
  return worst;
}

/// @brief The GGUF reader's table agrees with F (type_name, block size and bytes), and a 5 x 512
/// matrix in F goes through a GGUF file (ggml::check_gguf_round_trip).
template <class F>
void check_gguf_round_trip(const char* type_name) {
  const auto* type = io::find_ggml_type(F::ggml_type);
  REQUIRE(type != nullptr);
  CHECK(type->name == type_name);
  CHECK(type->block_size == F::block_size);
  CHECK(type->block_bytes == F::block_bytes);
  ggml::check_gguf_round_trip<F>(type_name, 512);
}

/// @brief F's matrices need whole super-blocks (ggml::check_whole_blocks_and_registry): a 3 x 512
/// matrix has rows of two blocks.
template <class F>
void check_whole_blocks_and_registry() {
  ggml::check_whole_blocks_and_registry<F>({1, 32, 128, 255, 257, 300, 768 + 32}, 96, 512, 2 * F::block_bytes, F::bits_per_weight);
}

/// @brief A block whose scale is a NaN (put_nan(blk) writes it) dequantizes to NaN in every weight,
/// as ggml's float arithmetic does, and the float product gives NaN for the weight row that holds
/// it and finite values for the others (ggml::check_nan_scale_float), ops::linear too.
template <class F, class PutNan>
void check_nan_scale(PutNan put_nan) {
  constexpr std::int64_t k = 512, n = 2;
  const auto x = ggml::activations_for(1, k, 5);
  const auto wm = ggml::check_nan_scale_float<F>(put_nan, x);
  tensor<float> xt(shape{1, k}), yt(shape{1, n});
  std::copy(x.begin(), x.end(), xt.data());
  ops::linear(xt, wm, yt);
  CHECK(std::isnan(yt(0, 0)));
  CHECK(std::isfinite(yt(0, 1)));
}

/// @brief got (F::quantize_row's blocks) holds want's bytes (ggml's), every one; the first
/// failure names the byte, its block and its offset.
template <class F>
void require_same_blocks(const std::vector<std::byte>& got, const std::vector<std::byte>& want) {
  failures bad;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i])
      bad.add([&](auto& s) { s << "byte " << i << " (block " << i / F::block_bytes << ", offset " << i % F::block_bytes << ")"; });
  TFORMER_REQUIRE_NO_FAILURES(bad);
}

/// @brief The round trip of x's random blocks (0, 6 and 7), quantized to got: where scale >= 1e-3
/// (d in fp16's normal range) each block's relative RMS error rms(x - w) / rms(x) is below bound
/// (measured; a loose bound), and the worst goes to worst_rel.
template <class F>
void check_block_rms(const std::vector<float>& x, const std::vector<std::byte>& got, float scale, double bound, double& worst_rel) {
  std::vector<float> back(x.size());
  F::dequantize_row(got.data(), back.data(), static_cast<std::int64_t>(x.size()));
  for (const std::int64_t b : {0, 6, 7}) {
    double e2 = 0, x2 = 0;
    for (int t = 0; t < 256; ++t) {
      const auto j = static_cast<std::size_t>(b * 256 + t);
      e2 += (static_cast<double>(x[j]) - back[j]) * (static_cast<double>(x[j]) - back[j]);
      x2 += static_cast<double>(x[j]) * x[j];
    }
    if (scale >= 1e-3f) {
      CHECK(std::sqrt(e2 / x2) < bound);
      worst_rel = std::max(worst_rel, std::sqrt(e2 / x2));
    }
  }
}

/// @brief A random finite binary16 (bits): 2^-14 .. 2^4 mostly, a subnormal 1 in 8, either sign.
inline std::uint16_t random_half(std::mt19937& gen) {
  std::uniform_int_distribution<int> byte(0, 255);
  const int e = byte(gen) % 8;
  const int mant_hi = byte(gen), mant_lo = byte(gen) % 4, sign = byte(gen) % 2;
  return static_cast<std::uint16_t>((e == 0 ? 0 : (e * 2 + 4) << 10) | mant_hi << 2 | mant_lo | sign << 15);
}

/// @brief A random block: random bytes, then random_half at each of the offsets d_at.
inline void random_block(std::mt19937& gen, std::byte* blk, std::int64_t bytes, std::initializer_list<int> d_at) {
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::int64_t t = 0; t < bytes; ++t) blk[t] = static_cast<std::byte>(byte(gen));
  for (const int o : d_at) ggml::put_u16(blk + o, random_half(gen));
}

/// @brief Every binary16 scale bits value that is finite, both signs (for exhaustive dequantization).
inline std::vector<std::uint16_t> finite_halves() {
  std::vector<std::uint16_t> v;
  for (unsigned h = 0; h < 0x10000; ++h)
    if (((h >> 10) & 0x1F) != 0x1F) v.push_back(static_cast<std::uint16_t>(h));
  return v;
}

}  // namespace tformer::test::superblock
