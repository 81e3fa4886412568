// What the tests of ggml's K-quant formats (test_q4_k, test_q5_k, test_q6_k) share, on top of
// ggml_test_support.hpp (binary16 from its definition, little-endian fields, the error report):
// the reference fixture (tests/data/ggml_kquants.safetensors, ggml's own C reference through
// tools/make_kquant_fixtures.py) and its LCG input, and the checks whose logic is the same for
// every K-quant: each compiled product path against the scalar reference, ops::linear through each
// of its paths, whole super-blocks, the registry and NaN scales. What a check
// needs of a format comes in as a callable (a random super-block, its integer terms).
#pragma once

#include <tformer/core/memory.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/kquant_dot.hpp>
#include <tformer/quant/matrix.hpp>
#include <tformer/quant/q8_k.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "ggml_test_support.hpp"
#include "support.hpp"

namespace tformer::test::kquant {

using ggml::report;
namespace q8k = quant::detail::q8_k;

/// @brief tests/data/ggml_kquants.safetensors (see tools/make_kquant_fixtures.py).
inline io::safetensors_file fixture() {
  static const std::string path = std::string(TFORMER_TEST_DATA_DIR) + "/ggml_kquants.safetensors";
  return io::safetensors_file(path);
}

/// @brief Super-block b of the fixture's LCG input (its definition is in the fixture script):
/// integers scaled by powers of two, so every value is an exact float in both languages.
inline void lcg_superblock(int b, float* out) {
  std::uint64_t s = 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(b);
  for (int t = 0; t < 256; ++t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const std::int64_t v = static_cast<std::int64_t>(s >> 40) - (1 << 23) + (b % 2 ? (1 << 22) : 0);
    const int e = (7 * (t / 16) + 3 * b) % 24 - 35;
    out[t] = std::ldexp(static_cast<float>(v), e);
  }
}

/// @brief The index of the first of n bytes where a and b differ, or -1.
inline std::int64_t first_difference(const void* a, const void* b, std::int64_t n) {
  const auto* p = static_cast<const unsigned char*>(a);
  const auto* q = static_cast<const unsigned char*>(b);
  for (std::int64_t i = 0; i < n; ++i)
    if (p[i] != q[i]) return i;
  return -1;
}

/// @brief quantize(x, blk) (one 256-float super-block to block_bytes bytes) equals ggml's bytes on
/// the fixture's input rows (name) and its 32 LCG super-blocks (lcg.name), and F dequantizes
/// ggml's bytes to ggml's floats (name.dequantized) bit for bit when F is given.
template <class Quantize>
void check_fixture_bytes(const io::safetensors_file& f, const std::string& name, std::int64_t block_bytes, Quantize quantize) {
  const auto x = f.load<float>("input");
  const auto packed = f.load<std::uint8_t>(name);
  const std::int64_t rows = x.shape()[0], nb = x.shape()[1] / 256;
  REQUIRE(packed.shape() == shape{rows, nb * block_bytes});
  std::vector<std::byte> mine(static_cast<std::size_t>(block_bytes));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t b = 0; b < nb; ++b) {
      quantize(x.data() + r * x.shape()[1] + b * 256, mine.data());
      const auto at = first_difference(mine.data(), packed.data() + (r * nb + b) * block_bytes, block_bytes);
      INFO(name << " input row " << r << " super-block " << b << ": first differing byte " << at);
      REQUIRE(at == -1);
    }
  const auto lcg = f.load<std::uint8_t>("lcg." + name);
  REQUIRE(lcg.shape() == shape{32, block_bytes});
  float xb[256];
  for (int b = 0; b < 32; ++b) {
    lcg_superblock(b, xb);
    quantize(xb, mine.data());
    const auto at = first_difference(mine.data(), lcg.data() + b * block_bytes, block_bytes);
    INFO(name << " LCG super-block " << b << ": first differing byte " << at);
    REQUIRE(at == -1);
  }
}

/// @brief F quantizes the fixture as ggml does (check_fixture_bytes) and dequantizes ggml's bytes
/// to ggml's floats bit for bit; the fixture's all-zero super-block (row 2, super-block 0) packs to
/// zero bytes, and quant::matrix<F>::quantize packs its rows with quantize_row.
template <class F>
void check_fixture(const std::string& name) {
  const auto f = fixture();
  check_fixture_bytes(f, name, F::block_bytes, [](const float* x, std::byte* blk) { F::quantize_row(x, blk, 256); });
  const auto packed = f.load<std::uint8_t>(name);
  const auto deq = f.load<float>(name + ".dequantized");
  const std::int64_t rows = deq.shape()[0], cols = deq.shape()[1];
  std::vector<float> y(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * packed.shape()[1]), y.data(), cols);
    const auto at = first_difference(y.data(), deq.data() + r * cols, cols * 4);
    INFO(name << " dequantized row " << r << ": first differing weight " << (at < 0 ? -1 : at / 4));
    REQUIRE(at == -1);
  }
  const auto x = f.load<float>("input");
  std::vector<std::byte> blk(F::block_bytes);
  F::quantize_row(x.data() + 2 * 512, blk.data(), 256);
  CHECK(std::all_of(blk.begin(), blk.end(), [](std::byte v) { return v == std::byte{0}; }));
  const auto w = test::random_tensor(shape{3, 512}, 5);
  const auto m = quant::matrix<F>::quantize(w);
  std::vector<std::byte> want(3 * 2 * F::block_bytes);
  for (int r = 0; r < 3; ++r) F::quantize_row(w.data() + r * 512, want.data() + r * 2 * F::block_bytes, 512);
  CHECK(std::memcmp(m.data(), want.data(), want.size()) == 0);
}

/// @brief F's geometry: a fused and float-product weight format with super-blocks of 256.
template <class F>
void check_geometry(std::int64_t block_bytes, double bits_per_weight, const char* best_path, const char* best_float_path) {
  STATIC_REQUIRE(quant::weight_format<F>);
  STATIC_REQUIRE(quant::fused_format<F>);
  STATIC_REQUIRE(quant::float_product_format<F>);
  STATIC_REQUIRE(quant::ggml_format<F>);
  STATIC_REQUIRE_FALSE(quant::element_format<F>);
  CHECK(F::block_size == 256);
  CHECK(F::block_bytes == block_bytes);
  CHECK(F::bits_per_weight == bits_per_weight);
  CHECK(F::bits_per_weight == 8.0 * F::block_bytes / F::block_size);
  CHECK(F::max_fused_rows == 8);
  CHECK(quant::row_bytes<F>(4096) == 16 * block_bytes);
  INFO("fused_product uses " << best_path << ", float_product " << best_float_path);
  CHECK(std::string(best_path).size() > 0);
  CHECK(std::string(best_float_path).size() > 0);
}

/// @brief A random binary16 scale: exponent bits e in [6, 14) mostly (2^-9 .. 2^-1), a subnormal
/// 1 in 8, either sign when signed, never NaN or infinite.
inline std::uint16_t random_half(std::mt19937& gen, bool allow_negative) {
  std::uniform_int_distribution<int> byte(0, 255);
  const int e = byte(gen) % 8;
  const int mant = byte(gen) << 2 | byte(gen) % 4, sign = allow_negative ? byte(gen) % 2 : 0;
  return static_cast<std::uint16_t>((e == 0 ? 0 : (e + 6) << 10) | mant | sign << 15);
}

/// @brief A super-block of random bytes (every q, scale and min byte occurs) whose binary16 fields
/// at half_at (offsets) are random_half.
inline void random_superblock(std::mt19937& gen, std::byte* blk, std::int64_t bytes, std::initializer_list<int> half_at) {
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::int64_t t = 0; t < bytes; ++t) blk[t] = static_cast<std::byte>(byte(gen));
  for (const int at : half_at) ggml::put_u16(blk + at, random_half(gen, true));
}

/// @brief nb super-blocks of bytes each at blocks whose fields [ends[f - 1], ends[f]) (ends[-1] =
/// start) hold (b L + j) % 256 at byte j of super-block b, L the field's length: with nb L >= 256
/// every byte value occurs in every field.
inline void systematic_superblocks(std::byte* blocks, int nb, std::int64_t bytes, int start, std::initializer_list<int> ends) {
  for (int b = 0; b < nb; ++b) {
    int lo = start;
    for (const int hi : ends) {
      for (int j = 0; j < hi - lo; ++j) blocks[b * bytes + lo + j] = static_cast<std::byte>((b * (hi - lo) + j) % 256);
      lo = hi;
    }
  }
}

/// @brief F::dequantize_row equals ggml_dequantize (the test's transcription of ggml's
/// dequantize_row) bit for bit on 22 unaligned super-blocks filled by systematic_superblocks(start,
/// ends), for every combination of ten binary16 values (normal, subnormal, zero, largest, either
/// sign) in the fields at half_at (d, and dmin where the format has one).
template <class F, class Dequantize>
void check_dequantize_systematic(int start, std::initializer_list<int> ends, std::vector<int> half_at, Dequantize ggml_dequantize) {
  constexpr int nb = 22;
  constexpr std::int64_t bb = F::block_bytes;
  std::vector<std::byte> buf(nb * bb + 1);
  std::byte* blocks = buf.data() + 1;  // unaligned
  systematic_superblocks(blocks, nb, bb, start, ends);
  const std::uint16_t halves[] = {0x3C00, 0xBC00, 0x0001, 0x03FF, 0x8001, 0x0000, 0x8000, 0x2E66, 0xC8F3, 0x7BFF};
  std::vector<float> got(nb * 256), want(nb * 256);
  int combinations = 1;
  for (std::size_t f = 0; f < half_at.size(); ++f) combinations *= 10;
  for (int c = 0; c < combinations; ++c) {
    std::ostringstream fields;  // the first field varies slowest
    for (std::size_t f = 0, div = static_cast<std::size_t>(combinations / 10); f < half_at.size(); ++f, div /= 10) {
      const std::uint16_t h = halves[static_cast<std::size_t>(c) / div % 10];
      for (int b = 0; b < nb; ++b) ggml::put_u16(blocks + b * bb + half_at[f], h);
      fields << " 0x" << std::hex << h;
    }
    F::dequantize_row(blocks, got.data(), nb * 256);
    ggml_dequantize(blocks, want.data(), nb * 256);
    INFO("binary16 fields" << fields.str() << ": first differing weight " << first_difference(got.data(), want.data(), nb * 1024) / 4);
    REQUIRE(first_difference(got.data(), want.data(), nb * 1024) == -1);
  }
}

/// @brief x [m, k] for the products: a different magnitude in every group of 32 (1e-3 .. 1e3),
/// some zeros, an all-zero super-block in row 0 when k >= 512 (d_x = 0).
inline std::vector<float> activations_for(std::int64_t m, std::int64_t k, std::uint32_t seed) {
  auto x = ggml::activations_for(m, k, seed);
  if (k >= 512) std::fill(x.begin() + 256, x.begin() + 512, 0.0f);
  return x;
}

/// @brief The magnitude of the integer terms of super-block blk (policy B) with activation block
/// ab: |d d_x| sum_g |s_g| sum_t |q_t - zero| |qx_t| + |dmin d_x| sum_g |m_g| sum_t |qx_t|, the
/// scale of the fused product's float roundings.
template <class B>
double term_magnitude(const std::byte* blk, const std::byte* ab) {
  std::int16_t s[16], mn[16];
  B::scales(blk, s, mn);
  std::uint8_t q[256];
  B::unpack(blk, q);
  const double dx = q8k::scale_of(ab);
  const std::int8_t* qx = q8k::q_of(ab);
  double a = 0, c = 0;
  for (int t = 0; t < 256; ++t) {
    a += std::abs(s[t / 16]) * std::abs(q[t] - B::zero) * std::abs(qx[t]);
    c += std::abs(mn[t / 16]) * std::abs(qx[t]);
  }
  double r = std::fabs(static_cast<double>(B::d(blk)) * dx) * a;
  if constexpr (B::has_min) r += std::fabs(static_cast<double>(B::dmin(blk)) * dx) * c;
  return r;
}

/// @brief A fused-product path: y[i * ldy + j] for i < m, j < n.
using dot_fn = ggml::dot_fn;

/// @brief Every compiled fused-product path of F (kernels Fused, policy B) equals the scalar
/// reference bit for bit, and the scalar reference is within (2 nb + 4) u M of the exact value
/// sum_t w_t d_x qx_t (w_t from F::dequantize_row, M from term_magnitude): random super-blocks from
/// fill(gen, blk), k up to 4096, n rows at an odd address, m = 1 .. 9 and a row stride of y wider
/// than n (the gap must stay untouched).
template <class F, class Fused, class B, class Fill>
void check_fused_paths(report& measured, Fill fill) {
  std::vector<std::pair<std::string, dot_fn>> paths{{"scalar", &Fused::scalar}};
#if defined(TFORMER_GGML_DOT_AVX2)
  paths.emplace_back("avx2", &Fused::avx2);
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  paths.emplace_back("avx512vnni", &Fused::avx512vnni);
#endif
  paths.emplace_back("fused_product", &F::fused_product);
  std::mt19937 gen(21);
  const std::vector<std::int64_t> ks = slow_build ? std::vector<std::int64_t>{256, 768} : std::vector<std::int64_t>{256, 512, 768, 4096};
  for (const std::int64_t k : ks) {
    const std::int64_t nb = k / 256, rb = nb * F::block_bytes;
    for (const std::int64_t n : {1, 3, 17}) {
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) fill(gen, w + j * F::block_bytes);
      std::vector<float> wd(static_cast<std::size_t>(n * k));  // [n, k]
      for (std::int64_t j = 0; j < n; ++j) F::dequantize_row(w + j * rb, wd.data() + j * k, k);
      for (std::int64_t m = 1; m <= 9; ++m) {
        if (slow_build && m != 1 && m != 8 && m != 9) continue;
        const auto x = activations_for(m, k, static_cast<std::uint32_t>(gen()));
        auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
        F::prepare_activations(x.data(), k, m, k, acts.get());
        const std::int64_t ldy = n + 3;
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        Fused::scalar(acts.get(), m, k, w, rb, n, ref.data(), ldy);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double exact = 0, mag = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const std::byte* ab = q8k::activations::block_at(acts.get(), k, i, b);
              for (int t = 0; t < 256; ++t)
                exact += static_cast<double>(wd[static_cast<std::size_t>(j * k + b * 256 + t)]) * q8k::scale_of(ab) *
                         q8k::q_of(ab)[t];
              mag += term_magnitude<B>(w + j * rb + b * F::block_bytes, ab);
            }
            const double err = std::fabs(static_cast<double>(ref[static_cast<std::size_t>(i * ldy + j)]) - exact);
            INFO("scalar vs exact: k=" << k << " n=" << n << " m=" << m << " i=" << i << " j=" << j);
            REQUIRE(err <= (2.0 * static_cast<double>(nb) + 4.0) * 0x1p-24 * mag + 1e-30);
            if (mag > 0) measured.scalar_exact = std::max(measured.scalar_exact, err / mag);
          }
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(acts.get(), m, k, w, rb, n, y.data(), ldy);
          INFO("path " << name << " k=" << k << " n=" << n << " m=" << m << ": first differing output (bytes / 4) "
                       << first_difference(y.data(), ref.data(), static_cast<std::int64_t>(y.size()) * 4) / 4);
          REQUIRE(first_difference(y.data(), ref.data(), static_cast<std::int64_t>(y.size()) * 4) == -1);
        }
      }
    }
  }
}

/// @brief ggml::float_paths_worst for F (kernels FloatDot): k up to 4096, m = 1 .. 9 (fewer of
/// both in the unoptimized build); the worst error / sum |x w| goes to measured.tiles_rel.
template <class F, class FloatDot, class Fill>
void check_float_paths(report& measured, Fill fill) {
  const auto ks = slow_build ? std::vector<std::int64_t>{256, 768} : std::vector<std::int64_t>{256, 512, 768, 4096};
  const auto ms = slow_build ? std::vector<std::int64_t>{1, 8, 9} : std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9};
  measured.tiles_rel = std::max(measured.tiles_rel, ggml::float_paths_worst<F, FloatDot>(fill, ks, ms, activations_for));
}

/// @brief ops::linear with weights in F (a K-quant, or int8_activations of one), against the float
/// product on the dequantized weights, and 1 thread against 2 bit for bit. Up to
/// ops::fused_rows_limit rows of an int8_activations<F> take the fused product, exactly F::fused_product (+ bias), within the
/// activations' rounding (per super-block sum |w| amax / 254 (1 + 2^-15)) plus the fused product's
/// float roundings ((2 nb + 8) u term_magnitude) plus 1e-5 sum |x w|; every other path within
/// 1e-5 sum |x w|. Every third weight row is off-centre (the mins matter). policy B reads the blocks.
template <class F, class B>
void check_linear(report& measured) {
  constexpr bool fused = quant::uses_fused_product<F>;
  test::thread_guard guard;
  std::uint32_t seed = 40;
  const std::vector<std::int64_t> ns = slow_build ? std::vector<std::int64_t>{17} : std::vector<std::int64_t>{1, 17, 300};
  const std::vector<std::int64_t> ms = slow_build ? std::vector<std::int64_t>{1, 8, 9, 65} : std::vector<std::int64_t>{1, 2, 5, 8, 9, 33, 65};
  for (const std::int64_t k : {256, 768}) {
    for (const std::int64_t n : ns) {
      auto wf = test::random_tensor(shape{n, k}, seed++);
      for (std::int64_t j = 0; j < n; j += 3)
        for (std::int64_t t = 0; t < k; ++t) wf(j, t) = 0.5f * wf(j, t) + 1.5f;
      const auto wq = quant::matrix<F>::quantize(wf);
      const auto wd = wq.to_float();
      const auto bias = test::random_tensor(shape{n}, seed++);
      for (const std::int64_t m : ms) {
        const auto xv = activations_for(m, k, seed++);
        tensor<float> x(shape{m, k});
        std::copy(xv.begin(), xv.end(), x.data());
        for (const bool with_bias : {false, true}) {
          const tensor_view<const float> b = with_bias ? tensor_view<const float>(bias) : tensor_view<const float>();
          tensor<float> y1(shape{m, n}), y2(shape{m, n}), ref(shape{m, n});
          set_num_threads(1);
          ops::linear(x, wq, y1, b);
          ops::linear(x, wd, ref, b);
          set_num_threads(2);
          ops::linear(x, wq, y2, b);
          INFO("k=" << k << " n=" << n << " m=" << m << " bias=" << with_bias << " fused=" << fused);
          REQUIRE(std::memcmp(y1.data(), y2.data(), static_cast<std::size_t>(m * n) * sizeof(float)) == 0);
          tensor<float> yf(shape{m, n});
          const bool fused_rows = fused && m <= std::max<std::int64_t>(F::max_fused_rows, ops::fused_rows_limit);
          auto a = allocate_aligned<std::byte>(F::activation_bytes(m, k));
          if (fused_rows) {
            F::prepare_activations(x.data(), k, m, k, a.get());
            F::fused_product(a.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
          }
          std::int64_t bad = -1;
          for (std::int64_t i = 0; i < m && bad < 0; ++i)
            for (std::int64_t j = 0; j < n; ++j) {
              double mag = with_bias ? std::fabs(bias(j)) : 0.0, qerr = 0, terms = 0;
              for (std::int64_t bk = 0; bk < k / 256; ++bk) {
                double amax = 0, wsum = 0;
                for (std::int64_t t = bk * 256; t < bk * 256 + 256; ++t) {
                  amax = std::max(amax, std::fabs(static_cast<double>(x(i, t))));
                  wsum += std::fabs(static_cast<double>(wd(j, t)));
                  mag += std::fabs(static_cast<double>(x(i, t)) * wd(j, t));
                }
                qerr += wsum * amax / 254 * (1 + 0x1p-15);
                if (fused_rows)
                  terms += term_magnitude<B>(wq.row(j) + bk * F::block_bytes, q8k::activations::block_at(a.get(), k, i, bk));
              }
              const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
              if (fused_rows) {
                const float want = with_bias ? yf(i, j) + bias(j) : yf(i, j);
                const double bound = qerr + (2.0 * static_cast<double>(k / 256) + 8) * 0x1p-24 * terms + 1e-5 * mag + 1e-30;
                if (std::bit_cast<std::uint32_t>(y1(i, j)) != std::bit_cast<std::uint32_t>(want) || err > bound) {
                  bad = i * n + j;
                  break;
                }
                measured.fused_err = std::max(measured.fused_err, err / bound);
                if (mag > 0) measured.fused_rel = std::max(measured.fused_rel, err / mag);
              } else {
                if (err > 1e-5 * mag + 1e-30) {
                  bad = i * n + j;
                  break;
                }
                if (mag > 0) measured.tiles_rel = std::max(measured.tiles_rel, err / mag);
              }
            }
          INFO("first output out of bounds (i * n + j): " << bad);
          REQUIRE(bad == -1);
        }
      }
    }
  }
}

/// @brief F's matrices need whole super-blocks of 256 (ggml::check_whole_blocks_and_registry): a
/// 3 x 512 matrix has rows of 2 F::block_bytes.
template <class F>
void check_whole_blocks_and_registry() {
  ggml::check_whole_blocks_and_registry<F>({1, 32, 100, 255, 257, 576}, 320, 512, 2 * F::block_bytes, F::bits_per_weight);
}

/// @brief A super-block whose scale d is a NaN (put_nan writes it into the block) dequantizes to
/// NaN in every weight, and the float and fused products give NaN for the weight row that holds it
/// and finite values for the others (ggml::check_nan_scale_fused).
template <class F, class PutNan>
void check_nan_scale(PutNan put_nan) {
  ggml::check_nan_scale_fused<F>(put_nan, activations_for(1, 512, 5));
}

}  // namespace tformer::test::kquant
