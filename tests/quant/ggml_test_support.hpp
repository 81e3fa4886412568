// What the tests of the ggml block formats (test_q8_0, test_q4_0, test_q4_1) share: the measured
// error report, binary16 from its definition (independent of core/half), the blocks' little-endian
// fields, the activations they multiply, and the checks whose logic is the same for every format
// (each compiled fused-product path against the scalar reference, exactness on integer data,
// ops::linear through each of its paths, gguf-py's bytes, a GGUF round trip, whole blocks and the
// registry). What a check needs of a format comes in as a callable: its weight blocks, its
// per-block terms, its bound. The bounds themselves are derived at the top of each format's test
// file.
#pragma once

#include <tformer/core/memory.hpp>
#include <tformer/core/parallel.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/io/safetensors.hpp>
#include <tformer/ops/matmul.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/quant/ggml_dot.hpp>
#include <tformer/quant/matrix.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace tformer::test::ggml {

/// @brief A format's measured worst cases, printed at exit when the variable env is set.
struct report {
  report(const char* env_var, const char* format_name, const char* float_paths_name)
      : env(env_var), format(format_name), float_paths(float_paths_name) {}
  report(const report&) = delete;
  report& operator=(const report&) = delete;
  ~report() {
    if (std::getenv(env) == nullptr) return;
    std::printf(
        "%s report: round trip err/bound %.6f | path-scalar err/bound %.3g | scalar-exact err/M %.3g | fused "
        "err/bound %.4f, err/sum|xw| %.3g | %s err/sum|xw| %.3g\n",
        format, roundtrip, path_vs_ref, scalar_exact, fused_err, fused_rel, float_paths, tiles_rel);
  }
  const char* env;          // e.g. TFORMER_Q8_0_REPORT
  const char* format;       // the format's name
  const char* float_paths;  // what tiles_rel measures, as the report names it
  double roundtrip = 0;     // max |x - deq(q(x))| / its bound
  double path_vs_ref = 0;   // max |path - scalar| / its bound (check_paths)
  double scalar_exact = 0;  // max |scalar - exact| / M
  double fused_err = 0;     // max |fused - float product| / bound
  double fused_rel = 0;     // max |fused - float product| / sum |x w|
  double tiles_rel = 0;     // max |float paths (rows, tiles) - float product| / sum |x w|
};

/// @brief Counts failures of a big loop and keeps the first one's description (one REQUIRE at the
/// end instead of one per element).
struct failures {
  std::int64_t count = 0;
  std::string first;
  template <class Describe>
  void add(Describe&& describe) {
    if (count++ == 0) {
      std::ostringstream s;
      describe(s);
      first = s.str();
    }
  }
};
#define TFORMER_REQUIRE_NO_FAILURES(f) \
  do {                                 \
    INFO((f).first);                   \
    REQUIRE((f).count == 0);           \
  } while (0)

/// @brief The bits of a float (NaNs compared by payload too).
inline std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

/// @brief The value of binary16 bits, computed in double from the definition (independent of core/half).
inline double half_value(std::uint16_t h) {
  const int e = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double mag = e == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

/// @brief float -> binary16 bits, round to nearest even, by searching the finite positive halves
/// (whose values grow with their bits) for the nearest one in double. Finite inputs within half range.
inline std::uint16_t half_bits_ref(float f) {
  const double a = std::fabs(static_cast<double>(f));
  std::uint16_t lo = 0, hi = 0x7BFF;
  while (hi - lo > 1) {  // half_value(lo) <= a < half_value(hi), or a beyond the range
    const auto mid = static_cast<std::uint16_t>((lo + hi) / 2);
    (half_value(mid) <= a ? lo : hi) = mid;
  }
  const double dl = a - half_value(lo), dh = half_value(hi) - a;
  std::uint16_t r = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
  if (a >= half_value(0x7BFF)) r = 0x7BFF;  // (tests stay well below the largest half)
  return static_cast<std::uint16_t>(r | (std::signbit(f) ? 0x8000 : 0));
}

/// @brief Stores the 16 bits h at p, little endian (a block's d or m).
inline void put_u16(std::byte* p, std::uint16_t h) {
  p[0] = static_cast<std::byte>(h & 0xFF);
  p[1] = static_cast<std::byte>(h >> 8);
}
/// @brief The 16 bits at p, little endian.
inline std::uint16_t u16_at(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
/// @brief The scale bits d of a block (every ggml block starts with it).
inline std::uint16_t block_d(const std::byte* p) { return u16_at(p); }
/// @brief Nibble t (< 32) of the 16 bytes qs of a 4-bit block, in weight order.
inline int nibble_at(const std::byte* qs, int t) {
  const unsigned byte = std::to_integer<unsigned>(qs[t % 16]);
  return static_cast<int>(t < 16 ? byte & 15 : byte >> 4);
}

/// @brief A random block of a format with a scale d only (Q8_0, Q4_0): quant_bytes random bytes
/// after d (every int8, every nibble), then d in [2^-13 .. 2^-6) mostly, a subnormal 1 in 8,
/// either sign (one draw per statement: a fixed order).
inline void random_block(std::mt19937& gen, std::byte* blk, int quant_bytes) {
  std::uniform_int_distribution<int> byte(0, 255);
  for (int t = 0; t < quant_bytes; ++t) blk[2 + t] = static_cast<std::byte>(byte(gen));
  const int e = byte(gen) % 8;
  const int mant_hi = byte(gen), mant_lo = byte(gen) % 4, sign = byte(gen) % 2;
  put_u16(blk, static_cast<std::uint16_t>((e == 0 ? 0 : (e + 1) << 10) | mant_hi << 2 | mant_lo | sign << 15));
}

/// @brief ggml's nearest_int: the magic-number addition, read back as bits.
inline int ggml_nearest_int(float fval) {
  volatile float val = fval + 12582912.f;
  const float v = val;
  std::int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

/// @brief ggml's best_index_int8, as in ggml-quants.c (x arrives rounded to float).
inline int ggml_best_index_int8(int n, const std::int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int ml = 0, mu = n - 1;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  volatile float lo = x - static_cast<float>(val[mu - 1]), hi = static_cast<float>(val[mu]) - x;
  return lo < hi ? mu - 1 : mu;
}

/// @brief x [m, k] with a different magnitude in every block (1e-3 .. 1e3), some zeros and an all-zero block.
inline std::vector<float> activations_for(std::int64_t m, std::int64_t k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-3.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(m * k));
  for (std::int64_t b = 0; b < m * k / 32; ++b) {
    const float scale = std::pow(10.0f, e(gen));
    for (int t = 0; t < 32; ++t) x[static_cast<std::size_t>(b * 32 + t)] = (t % 7 == 3) ? 0.0f : scale * u(gen);
  }
  if (k >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // block 1 of row 0: d = 0
  return x;
}

/// @brief The m rows of k values v at row stride ldx > k; the padding is 1e9, which must never be read.
inline std::vector<float> padded_rows(const std::vector<float>& v, std::int64_t m, std::int64_t k, std::int64_t ldx) {
  std::vector<float> x(static_cast<std::size_t>(m * ldx), 1e9f);
  for (std::int64_t i = 0; i < m; ++i) std::copy_n(v.begin() + i * k, k, x.begin() + i * ldx);
  return x;
}

/// @brief A row of k floats at one scale for the quantization tests: random, with scattered zeros,
/// an all-zero block (2) and a quiet one (4).
inline std::vector<float> quantization_row(std::int64_t k, float scale, std::uint32_t seed) {
  auto x = test::random_floats(static_cast<std::size_t>(k), -scale, scale, seed);
  for (std::int64_t j = 0; j < k; j += 5) x[static_cast<std::size_t>(j)] = 0.0f;     // scattered zeros
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);                                    // an all-zero block
  for (std::int64_t j = 128; j < 160; ++j) x[static_cast<std::size_t>(j)] *= 1e-3f;  // a quiet block
  return x;
}

/// @brief F's round trip of the row x (quantized to got) within bounds: block_bound(x_b, blk_b) is
/// the bound(t, back_t) of weight t of block b, back_t its dequantized value.
template <class F, class BlockBound>
void check_roundtrip(report& measured, const std::vector<float>& x, const std::vector<std::byte>& got, BlockBound block_bound) {
  const auto k = static_cast<std::int64_t>(x.size());
  std::vector<float> back(x.size());
  F::dequantize_row(got.data(), back.data(), k);
  for (std::int64_t b = 0; b < k / 32; ++b) {
    const auto bound_of = block_bound(x.data() + b * 32, got.data() + b * F::block_bytes);
    for (int t = 0; t < 32; ++t) {
      const auto j = static_cast<std::size_t>(b * 32 + t);
      const double err = std::fabs(static_cast<double>(x[j]) - back[j]);
      const double bound = bound_of(t, back[j]);
      REQUIRE(err <= bound);
      measured.roundtrip = std::max(measured.roundtrip, err / bound);
    }
  }
}

/// @brief F's geometry: a fused weight format with ggml's blocks of 32 in block_bytes, and the name
/// of the path its fused product uses.
template <class F>
void check_geometry(std::int64_t block_bytes, double bits_per_weight, const char* best_path) {
  STATIC_REQUIRE(quant::weight_format<F>);
  STATIC_REQUIRE(quant::fused_format<F>);
  STATIC_REQUIRE_FALSE(quant::element_format<F>);
  CHECK(F::block_size == 32);
  CHECK(F::block_bytes == block_bytes);
  CHECK(F::bits_per_weight == bits_per_weight);
  CHECK(F::bits_per_weight == 8.0 * F::block_bytes / F::block_size);
  CHECK(F::max_fused_rows == 8);
  CHECK(quant::row_bytes<F>(4096) == 128 * block_bytes);
  INFO("fused_product uses " << best_path);
  CHECK(std::string(best_path).size() > 0);
}

/// @brief quant::matrix<F>::quantize packs rows as ggml_ref (a reference quantizer of one row) does.
template <class F, class Ref>
void check_matrix_packs(Ref ggml_ref) {
  const auto w = test::random_tensor(shape{3, 96}, 5);
  const auto m = quant::matrix<F>::quantize(w);
  const std::int64_t rb = quant::row_bytes<F>(96);
  std::vector<std::byte> want(static_cast<std::size_t>(3 * rb));
  for (int r = 0; r < 3; ++r) ggml_ref(w.data() + r * 96, want.data() + r * rb, 96);
  CHECK(std::memcmp(m.data(), want.data(), want.size()) == 0);
}

/// @brief A fused-product path: y[i * ldy + j] for i < m, j < n.
using dot_fn = void (*)(const std::byte*, std::int64_t, std::int64_t, const std::byte*, std::int64_t, std::int64_t,
                        float*, std::int64_t);

/// @brief Every path of Dot (a ggml_dot::dot<...>) compiled into this test, by name, then fused_product.
template <class Dot>
std::vector<std::pair<std::string, dot_fn>> compiled_paths(dot_fn fused_product) {
  std::vector<std::pair<std::string, dot_fn>> p{{"scalar", &Dot::scalar}};
#if defined(TFORMER_GGML_DOT_AVX2)
  p.emplace_back("avx2", &Dot::avx2);
#endif
#if defined(TFORMER_GGML_DOT_AVX512VNNI)
  p.emplace_back("avx512vnni", &Dot::avx512vnni);
#endif
  p.emplace_back("fused_product", fused_product);
  return p;
}

/// @brief Every compiled path of format F (kernels Dot) against the scalar reference and the exact
/// value, for k up to 4096, n weight rows at an odd address (blocks are unaligned), m = 1 .. 8 and a
/// row stride of y wider than n (the gap must stay untouched). fill(gen, blk) writes one random
/// weight block; term(acts, m, k, i, blk, b) gives block b's exact term of row i and its magnitude,
/// from the same integers and float scales the paths use. With c float terms per block (1, or 2
/// with an offset), two paths differ by at most (2 c nb + 32) u M and the scalar path is within
/// (c nb + 1) u M of the exact value, M the sum of the magnitudes.
template <class F, class Dot, class Fill, class Term>
void check_paths(report& measured, double c, Fill fill, Term term) {
  const auto paths = compiled_paths<Dot>(&F::fused_product);
  std::mt19937 gen(21);
  for (const std::int64_t k : {32, 64, 96, 768, 4096}) {
    const std::int64_t nb = k / 32, rb = nb * F::block_bytes;
    for (const std::int64_t n : {1, 3, 17, 64}) {
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) fill(gen, w + j * F::block_bytes);
      for (std::int64_t m = 1; m <= 8; ++m) {
        const auto x = activations_for(m, k, static_cast<std::uint32_t>(gen()));
        auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
        F::prepare_activations(x.data(), k, m, k, acts.get());
        std::vector<double> exact(static_cast<std::size_t>(m * n)), mag(exact.size());
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t b = 0; b < nb; ++b) {
              const auto [te, ta] = term(acts.get(), m, k, i, w + j * rb + b * F::block_bytes, b);
              e += te;
              a += ta;
            }
            exact[static_cast<std::size_t>(i * n + j)] = e;
            mag[static_cast<std::size_t>(i * n + j)] = a;
          }
        const std::int64_t ldy = n + 3;
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        Dot::scalar(acts.get(), m, k, w, rb, n, ref.data(), ldy);
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(acts.get(), m, k, w, rb, n, y.data(), ldy);
          INFO("path " << name << " k=" << k << " n=" << n << " m=" << m);
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
              const auto o = static_cast<std::size_t>(i * ldy + j), e = static_cast<std::size_t>(i * n + j);
              const double bound = (2.0 * c * static_cast<double>(nb) + 32.0) * 0x1p-24 * mag[e];
              const double err = std::fabs(static_cast<double>(y[o]) - ref[o]);
              REQUIRE(err <= bound);
              if (bound > 0) measured.path_vs_ref = std::max(measured.path_vs_ref, err / bound);
              const double err_exact = std::fabs(static_cast<double>(ref[o]) - exact[e]);
              REQUIRE(err_exact <= (c * static_cast<double>(nb) + 1.0) * 0x1p-24 * mag[e]);
              if (mag[e] > 0) measured.scalar_exact = std::max(measured.scalar_exact, err_exact / mag[e]);
            }
            for (std::int64_t j = n; j < ldy; ++j) REQUIRE(y[static_cast<std::size_t>(i * ldy + j)] == -7.0f);
          }
        }
      }
    }
  }
}

/// @brief A float-activation product path: y[i * ldy + j] for i < m, j < n.
using float_fn = void (*)(const float*, std::int64_t, std::int64_t, std::int64_t, const std::byte*, std::int64_t,
                          std::int64_t, float*, std::int64_t);

/// @brief Every compiled path of F's float-activation product (kernels FloatDot, a float_dot<...>
/// of ggml_dot, superblock_dot or kquant_dot), and F::float_product, against the dequantized weights
/// (F's own dequantize_row, whose values the paths must make in registers) in double: random blocks
/// from fill(gen, blk), every k of ks, n rows at an odd address, every m of ms activation rows
/// (make_x(m, k, seed)) with a row stride wider than k, and a row stride of y wider than n (the gap
/// must stay untouched). Each path is a float sum of k exact-weight products, so it is within (k +
/// 1) u sum_t |x_t w_t| of the exact value (u = 2^-24), and differs from the scalar reference by at
/// most twice that. Returns the worst |y - exact| / sum |x w| seen.
template <class F, class FloatDot, class Fill, class MakeX>
double float_paths_worst(Fill fill, const std::vector<std::int64_t>& ks, const std::vector<std::int64_t>& ms, MakeX make_x) {
  std::vector<std::pair<std::string, float_fn>> paths{{"scalar", &FloatDot::scalar}};
#if defined(TFORMER_GGML_DOT_AVX2)
  paths.emplace_back("avx2", &FloatDot::avx2);
#endif
#if defined(TFORMER_GGML_DOT_AVX512F)
  paths.emplace_back("avx512", &FloatDot::avx512);
#endif
  paths.emplace_back("float_product", &F::float_product);
  std::mt19937 gen(23);
  double worst = 0;
  failures bad;
  for (const std::int64_t k : ks) {
    const std::int64_t nb = k / F::block_size, rb = nb * F::block_bytes;
    for (const std::int64_t n : {1, 3, 17}) {
      std::vector<std::byte> wbuf(static_cast<std::size_t>(n * rb + 1));
      std::byte* w = wbuf.data() + 1;
      for (std::int64_t j = 0; j < n * nb; ++j) fill(gen, w + j * F::block_bytes);
      std::vector<float> wd(static_cast<std::size_t>(n * k));  // [n, k]: the dequantized weights
      for (std::int64_t j = 0; j < n; ++j) F::dequantize_row(w + j * rb, wd.data() + j * k, k);
      for (const std::int64_t m : ms) {
        const std::int64_t ldx = k + 5, ldy = n + 3;
        const auto x = padded_rows(make_x(m, k, static_cast<std::uint32_t>(gen())), m, k, ldx);
        std::vector<double> exact(static_cast<std::size_t>(m * n)), mag(exact.size());
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double e = 0, a = 0;
            for (std::int64_t t = 0; t < k; ++t) {
              const double p = static_cast<double>(x[static_cast<std::size_t>(i * ldx + t)]) * wd[static_cast<std::size_t>(j * k + t)];
              e += p;
              a += std::fabs(p);
            }
            exact[static_cast<std::size_t>(i * n + j)] = e;
            mag[static_cast<std::size_t>(i * n + j)] = a;
          }
        std::vector<float> ref(static_cast<std::size_t>(m * ldy), -7.0f);
        FloatDot::scalar(x.data(), ldx, m, k, w, rb, n, ref.data(), ldy);
        for (const auto& [name, fn] : paths) {
          std::vector<float> y(static_cast<std::size_t>(m * ldy), -7.0f);
          fn(x.data(), ldx, m, k, w, rb, n, y.data(), ldy);
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
              const auto o = static_cast<std::size_t>(i * ldy + j), e = static_cast<std::size_t>(i * n + j);
              const double bound = static_cast<double>(k + 1) * 0x1p-24 * mag[e];
              const double err = std::fabs(static_cast<double>(y[o]) - exact[e]);
              if (!(std::fabs(static_cast<double>(ref[o]) - exact[e]) <= bound) || !(err <= bound) ||
                  !(std::fabs(static_cast<double>(y[o]) - ref[o]) <= 2 * bound))
                bad.add([&](auto& s) {
                  s << "path " << name << " k=" << k << " n=" << n << " m=" << m << " i=" << i << " j=" << j << ": "
                    << y[o] << ", scalar " << ref[o] << ", exact " << exact[e] << ", bound " << bound;
                });
              if (mag[e] > 0) worst = std::max(worst, err / mag[e]);
            }
            for (std::int64_t j = n; j < ldy; ++j)
              if (y[static_cast<std::size_t>(i * ldy + j)] != -7.0f)
                bad.add([&](auto& s) { s << "path " << name << " wrote y past n at i=" << i << " j=" << j; });
          }
        }
      }
    }
  }
  TFORMER_REQUIRE_NO_FAILURES(bad);
  return worst;
}

/// @brief float_paths_worst for a format of blocks of 32: k = 32 .. 4096, m = 1 .. 9; every path
/// within 1e-5 sum |x w| of the exact value.
template <class F, class FloatDot, class Fill>
void check_float_paths(Fill fill) {
  const double worst = float_paths_worst<F, FloatDot>(fill, {32, 64, 96, 768, 4096}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, activations_for);
  INFO("worst |y - exact| / sum |x w| over every path: " << worst);
  CHECK(worst < 1e-5);
}

/// @brief check_float_paths on random_block's blocks: a random scale, quant_bytes random bytes.
template <class F, class FloatDot>
void check_float_paths(int quant_bytes) {
  check_float_paths<F, FloatDot>([&](std::mt19937& gen, std::byte* blk) { random_block(gen, blk, quant_bytes); });
}

/// @brief check_paths for a format with a scale d only and integer weights weight(blk, t) (Q8_0,
/// Q4_0; quant_bytes of them after d): block b's term is s I, its magnitude |s| sum_t |w_t qx_t|,
/// s = fl(d_w d_x), I = sum_t w_t qx_t.
template <class F, class Dot, class Weight>
void check_paths_scaled(report& measured, int quant_bytes, Weight weight) {
  check_paths<F, Dot>(
      measured, 1.0, [&](std::mt19937& gen, std::byte* blk) { random_block(gen, blk, quant_bytes); },
      [&](const std::byte* acts, std::int64_t, std::int64_t k, std::int64_t i, const std::byte* blk, std::int64_t b) {
        using quant::detail::q8_activations::activations;
        const float s = static_cast<float>(half_value(block_d(blk))) * activations::scale(acts, k, i)[b * 8];
        std::int64_t sum = 0, asum = 0;
        for (int t = 0; t < 32; ++t) {
          const int p = weight(blk, t) * activations::q(acts, k, i)[b * 32 + t];
          sum += p;
          asum += std::abs(p);
        }
        return std::pair{static_cast<double>(s) * static_cast<double>(sum),
                         std::fabs(static_cast<double>(s)) * static_cast<double>(asum)};
      });
}

/// @brief Every compiled path of format F (kernels Dot) is exact on integer data: w holds 4 rows of
/// 96 weights (3 blocks each) with d_w = 1 and integer weights weight(w, j, t), and the 8 activation
/// rows have amax 127 (d_x = 1, q = x), so every product and sum is an integer.
template <class F, class Dot, class Weight>
void check_exact_on_integers(const std::vector<std::byte>& w, Weight weight) {
  constexpr std::int64_t k = 96, n = 4, m = 8, rb = 3 * F::block_bytes;
  std::vector<float> x(m * k);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t t = 0; t < k; ++t)
      x[static_cast<std::size_t>(i * k + t)] =
          t % 32 == 0 ? (i % 2 ? -127.0f : 127.0f) : static_cast<float>((t * 53 + i * 11) % 255 - 127);
  auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
  F::prepare_activations(x.data(), k, m, k, acts.get());
  for (const auto& [name, fn] : compiled_paths<Dot>(&F::fused_product)) {
    std::vector<float> y(m * n);
    fn(acts.get(), m, k, w.data(), rb, n, y.data(), n);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (std::int64_t t = 0; t < k; ++t)
          want += std::int64_t{weight(w.data() + j * rb + t / 32 * F::block_bytes, static_cast<int>(t % 32), j)} *
                  static_cast<std::int64_t>(x[static_cast<std::size_t>(i * k + t)]);
        INFO("path " << name << " i=" << i << " j=" << j);
        REQUIRE(y[static_cast<std::size_t>(i * n + j)] == static_cast<float>(want));
      }
  }
}

/// @brief The fused product's bound against the float product on the dequantized weights wd when
/// they are the same numbers and only the activations' quantization differs (Q8_0, Q4_0: see
/// test_q8_0): per block sum_t |w_t| amax_b / 254 (1 + 2^-15)(1 + u), plus 1e-5 sum_t |x_t w_t| for
/// the float sums on both sides. mag starts at |bias|; returns {bound, sum |x w| + |bias|}.
inline std::pair<double, double> activation_rounding_bound(const tensor<float>& x, const tensor<float>& wd, std::int64_t k,
                                                           std::int64_t i, std::int64_t j, double mag) {
  double qerr = 0;
  for (std::int64_t bk = 0; bk < k / 32; ++bk) {
    double amax = 0, wsum = 0;
    for (int t = 0; t < 32; ++t) {
      amax = std::max(amax, std::fabs(static_cast<double>(x(i, bk * 32 + t))));
      wsum += std::fabs(static_cast<double>(wd(j, bk * 32 + t)));
      mag += std::fabs(static_cast<double>(x(i, bk * 32 + t)) * wd(j, bk * 32 + t));
    }
    qerr += wsum * amax / 254 * (1 + 0x1p-15) * (1 + 0x1p-24);
  }
  return {qerr + 1e-5 * mag + 1e-30, mag};
}

/// @brief ops::linear with weights in F (a format, or int8_activations of one): up to
/// ops::fused_rows_limit activation rows take F's fused product when F opts in, up to 8 take float
/// dot products of dequantized rows when it does not; more rows take the dequantized tiles. Every path against the float product on the
/// dequantized weights, and 1 thread against 2, bit for bit. The fused path must be exactly
/// F::fused_product (+ bias), within fused_bound(x, wq, wd, acts, k, i, j, |bias_j|) -> {bound,
/// sum |x w| + |bias|} of the float product; the float paths within 1e-5 sum |x w|. tweak(wf) may
/// change the float weights before they are quantized.
template <class F, class Tweak, class Bound>
void check_linear(report& measured, Tweak tweak, Bound fused_bound) {
  constexpr bool fused = quant::uses_fused_product<F>;
  test::thread_guard guard;
  std::uint32_t seed = 40;
  // the unoptimized sanitizer build sweeps a smaller grid: still every path (fused or float rows,
  // tiles), column tiles (n = 1000) and remainders, in a fraction of the time
  const std::vector<std::int64_t> ks = test::slow_build ? std::vector<std::int64_t>{32, 96} : std::vector<std::int64_t>{32, 96, 768};
  const std::vector<std::int64_t> ms =
      test::slow_build ? std::vector<std::int64_t>{1, 5, 8, 9, 33, 65} : std::vector<std::int64_t>{1, 2, 5, 8, 9, 33, 70};
  for (const std::int64_t k : ks) {
    for (const std::int64_t n : {1, 17, 1000}) {  // 1000 columns: several column tiles
      auto wf = test::random_tensor(shape{n, k}, seed++);
      tweak(wf);
      const auto wq = quant::matrix<F>::quantize(wf);
      const auto wd = wq.to_float();  // the dequantized weights: exactly what the fused product uses
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
          // one assertion per product, not per element (millions of them in the -O0 build): the
          // first failing element is reported
          std::int64_t bad = 0, bad_i = -1, bad_j = -1;
          double bad_err = 0, bad_bound = 0;
          const auto fail = [&](std::int64_t i, std::int64_t j, double err, double bound) {
            if (bad++ == 0) bad_i = i, bad_j = j, bad_err = err, bad_bound = bound;
          };
          if (fused && m <= std::max<std::int64_t>(F::max_fused_rows, ops::fused_rows_limit)) {
            // the fused path: exactly F::fused_product (+ bias), and near the float product
            auto acts = allocate_aligned<std::byte>(F::activation_bytes(m, k));
            F::prepare_activations(x.data(), k, m, k, acts.get());
            tensor<float> yf(shape{m, n});
            F::fused_product(acts.get(), m, k, wq.data(), wq.row_bytes(), n, yf.data(), n);
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                const float want = with_bias ? yf(i, j) + bias(j) : yf(i, j);
                if (std::bit_cast<std::uint32_t>(y1(i, j)) != std::bit_cast<std::uint32_t>(want)) fail(i, j, y1(i, j), want);
                const auto [bound, mag] = fused_bound(x, wq, wd, acts.get(), k, i, j, with_bias ? std::fabs(bias(j)) : 0.0);
                const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
                if (!(err <= bound)) fail(i, j, err, bound);
                measured.fused_err = std::max(measured.fused_err, err / bound);
                if (mag > 0) measured.fused_rel = std::max(measured.fused_rel, err / mag);
              }
          } else {
            // float products on the dequantized weights (rows for few activation rows, tiles beyond)
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                double mag = with_bias ? std::fabs(bias(j)) : 0.0;
                const float* xi = x.data() + i * k;
                const float* wj = wd.data() + j * k;
                for (std::int64_t t = 0; t < k; ++t) mag += std::fabs(static_cast<double>(xi[t]) * wj[t]);
                const double err = std::fabs(static_cast<double>(y1(i, j)) - ref(i, j));
                if (!(err <= 1e-5 * mag + 1e-30)) fail(i, j, err, 1e-5 * mag + 1e-30);
                if (mag > 0) measured.tiles_rel = std::max(measured.tiles_rel, err / mag);
              }
          }
          INFO("first failure at i=" << bad_i << " j=" << bad_j << ": " << bad_err << " vs " << bad_bound
                                     << " (for the fused path's bit check: got vs want)");
          REQUIRE(bad == 0);
        }
      }
    }
  }
}

/// @brief check_linear with the weights as drawn and activation_rounding_bound.
template <class F>
void check_linear(report& measured) {
  check_linear<F>(
      measured, [](tensor<float>&) {},
      [](const tensor<float>& x, const auto&, const tensor<float>& wd, const std::byte*, std::int64_t k, std::int64_t i,
         std::int64_t j, double mag) { return activation_rounding_bound(x, wd, k, i, j, mag); });
}

/// @brief The fixture of gguf-py's output: tests/data/ggml_quants.safetensors, gguf.quants (gguf
/// 0.19, numpy) on 16 rows of 64 floats ("input"), written by tools/make_quant_fixtures.py.
inline io::safetensors_file gguf_py_fixture() {
  return io::safetensors_file(std::string(TFORMER_TEST_DATA_DIR) + "/ggml_quants.safetensors");
}

/// @brief F quantizes the fixture's input to the fixture's bytes (entry name) and dequantizes those
/// to its floats (name.dequantized), byte for byte.
template <class F>
void check_gguf_py(const io::safetensors_file& f, const char* name) {
  const auto x = f.load<float>("input");
  REQUIRE(x.shape() == shape{16, 64});
  const auto packed = f.load<std::uint8_t>(name);
  const auto deq = f.load<float>(std::string(name) + ".dequantized");
  const std::int64_t rb = quant::row_bytes<F>(64);
  REQUIRE(packed.shape() == shape{16, rb});
  std::vector<std::byte> mine(static_cast<std::size_t>(rb));
  std::vector<float> y(64);
  for (std::int64_t r = 0; r < 16; ++r) {
    INFO(name << " row " << r);
    F::quantize_row(x.data() + r * 64, mine.data(), 64);
    REQUIRE(std::memcmp(mine.data(), packed.data() + r * rb, static_cast<std::size_t>(rb)) == 0);
    F::dequantize_row(reinterpret_cast<const std::byte*>(packed.data() + r * rb), y.data(), 64);
    for (std::int64_t j = 0; j < 64; ++j)
      REQUIRE(std::bit_cast<std::uint32_t>(y[static_cast<std::size_t>(j)]) == std::bit_cast<std::uint32_t>(deq(r, j)));
  }
}

/// @brief F's matrices need whole blocks: a 2 x c matrix for each c of bad_cols throws a
/// shape_error that names F and c, and so does quantizing 2 x bad_quantize_cols floats; a 3 x ok_cols
/// matrix has rows of row_bytes; the registry finds F by name, with bits_per_weight.
template <class F>
void check_whole_blocks_and_registry(std::initializer_list<std::int64_t> bad_cols, std::int64_t bad_quantize_cols,
                                     std::int64_t ok_cols, std::int64_t row_bytes, double bits_per_weight) {
  for (const std::int64_t cols : bad_cols) {
    const auto msg = test::thrown_message<shape_error>([&] { quant::matrix<F>(2, cols); });
    INFO(msg);
    CHECK(msg.find(F::name) != std::string::npos);
    CHECK(msg.find(std::to_string(cols)) != std::string::npos);
  }
  CHECK_THROWS_AS(quant::matrix<F>::quantize(test::random_tensor(shape{2, bad_quantize_cols}, 1)), shape_error);
  const quant::matrix<F> ok(3, ok_cols);
  CHECK(ok.row_bytes() == row_bytes);
  CHECK(ok.size_bytes() == static_cast<std::size_t>(3 * row_bytes));

  std::string seen;
  double bpw = 0;
  quant::visit_format(F::name, [&](auto f) {
    using G = decltype(f);
    seen = G::name;
    bpw = G::bits_per_weight;
    CHECK((std::is_same_v<G, F>));
  });
  CHECK(seen == F::name);
  CHECK(bpw == bits_per_weight);
  CHECK(quant::is_known_format(F::name));
}

/// @brief check_whole_blocks_and_registry for a format of blocks of 32: a 3 x 64 matrix has rows of
/// row_bytes_64.
template <class F>
void check_whole_blocks_and_registry(std::int64_t row_bytes_64, double bits_per_weight) {
  check_whole_blocks_and_registry<F>({1, 31, 33, 48, 100}, 40, 64, row_bytes_64, bits_per_weight);
}

/// @brief A 2 x k matrix in F (k two blocks) whose row 0 has a NaN scale in its block 1 (put_nan(blk)
/// writes it) dequantizes to finite weights in block 0 and NaN in every weight of block 1, as
/// ggml's float arithmetic does, and F::float_product on x (1 x k) gives NaN for row 0 and a finite
/// value for row 1. Returns the matrix, for the other product paths.
template <class F, class PutNan>
quant::matrix<F> check_nan_scale_float(PutNan put_nan, const std::vector<float>& x) {
  constexpr std::int64_t k = 2 * F::block_size, n = 2;
  auto wm = quant::matrix<F>::quantize(test::random_tensor(shape{n, k}, 9));
  put_nan(wm.data() + F::block_bytes);  // row 0, block 1
  std::vector<float> y(static_cast<std::size_t>(k));
  F::dequantize_row(wm.data(), y.data(), k);
  std::int64_t finite = 0, nan = 0;
  for (std::int64_t t = 0; t < k / 2; ++t) finite += std::isfinite(y[static_cast<std::size_t>(t)]) ? 1 : 0;
  for (std::int64_t t = k / 2; t < k; ++t) nan += std::isnan(y[static_cast<std::size_t>(t)]) ? 1 : 0;
  CHECK(finite == k / 2);
  CHECK(nan == k / 2);
  float out[n];
  F::float_product(x.data(), k, 1, k, wm.data(), wm.row_bytes(), n, out, n);
  CHECK(std::isnan(out[0]));
  CHECK(std::isfinite(out[1]));
  return wm;
}

/// @brief check_nan_scale_float, and F::fused_product too gives NaN for the row with the NaN scale
/// and a finite value for the other.
template <class F, class PutNan>
void check_nan_scale_fused(PutNan put_nan, const std::vector<float>& x) {
  constexpr std::int64_t k = 2 * F::block_size, n = 2;
  const auto wm = check_nan_scale_float<F>(put_nan, x);
  auto acts = allocate_aligned<std::byte>(F::activation_bytes(1, k));
  F::prepare_activations(x.data(), k, 1, k, acts.get());
  float out[n];
  F::fused_product(acts.get(), 1, k, wm.data(), wm.row_bytes(), n, out, n);
  CHECK(std::isnan(out[0]));
  CHECK(std::isfinite(out[1]));
}

/// @brief A 5 x cols matrix in F written to a GGUF file by io::gguf_writer comes back with its
/// bytes and ggml type (type_name), loads as float as F dequantizes it, reads into a
/// quant::matrix<F> as it is, and visit_ggml_type finds F for its type.
template <class F>
void check_gguf_round_trip(const char* type_name, std::int64_t cols) {
  const auto w_src = test::random_tensor(shape{5, cols}, 77);
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
    CHECK(t.shape == std::vector<std::int64_t>{5, cols});
    REQUIRE(f.bytes(t).size() == q.size_bytes());
    CHECK(std::memcmp(f.bytes(t).data(), q.data(), q.size_bytes()) == 0);
    const auto want = q.to_float();
    const auto got = f.load_float("w");
    REQUIRE(got.numel() == want.numel());
    CHECK(std::memcmp(got.data(), want.data(), static_cast<std::size_t>(want.numel()) * sizeof(float)) == 0);
    quant::matrix<F> back;
    f.read("w", back);
    CHECK(back.shape() == shape{5, cols});
    CHECK(std::memcmp(back.data(), q.data(), q.size_bytes()) == 0);
    std::string seen;
    CHECK(quant::visit_ggml_type(F::ggml_type, [&](auto fmt) { seen = decltype(fmt)::name; }));
    CHECK(seen == F::name);
  }
  std::filesystem::remove(p);
}

}  // namespace tformer::test::ggml
