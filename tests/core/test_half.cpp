// f16 / bf16 conversions: every one of the 65,536 bit patterns of each type, plus every rounding
// midpoint, against the hardware (F16C, where compiled in) and an independent reference formula.
#include <tformer/core/dtype.hpp>
#include <tformer/core/half.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "catch.hpp"

using tformer::bf16;
using tformer::f16;

namespace {

// Reference value of a binary16 pattern by its definition: (-1)^s * 2^(e-15) * 1.m, subnormals
// 2^-14 * 0.m. Computed in double, exact for every pattern.
double f16_value(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0x1F) return m ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m, -24);
  return sign * std::ldexp(1024 + m, e - 25);
}

// Round a double (exactly representable as float) to the nearest binary16, ties to even, by
// searching the ordered positive patterns: an independent formula for the conversion.
std::uint16_t f16_round_reference(double x) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  if (a >= 65520.0) return sign | 0x7C00;  // at or above max + half ulp: overflow to inf
  std::uint16_t lo = 0, hi = 0x7BFF;        // largest finite
  if (a >= f16_value(hi)) lo = hi;
  while (hi - lo > 1) {  // invariant: value(lo) <= a < value(hi)
    const std::uint16_t mid = static_cast<std::uint16_t>((lo + hi) / 2);
    (f16_value(mid) <= a ? lo : hi) = mid;
  }
  if (f16_value(lo) == a || lo == 0x7BFF) return sign | lo;
  const double dlo = a - f16_value(lo), dhi = f16_value(hi) - a;
  if (dlo < dhi) return sign | lo;
  if (dhi < dlo) return sign | hi;
  return sign | ((lo & 1) ? hi : lo);
}

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

}  // namespace

TEST_CASE("f16 -> f32 is exact for all 65,536 patterns", "[half]") {
  std::vector<f16> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = f16::from_bits(static_cast<std::uint16_t>(i));
  std::vector<float> bulk(65536);
  tformer::convert(all.data(), bulk.data(), all.size());  // hardware path where compiled in
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const float scalar = static_cast<float>(all[i]);  // F16C's scalar instruction where compiled in
    const double ref = f16_value(static_cast<std::uint16_t>(i));
    INFO("pattern 0x" << std::hex << i);
    REQUIRE(bits(scalar) == bits(bulk[i]));  // identical bits, NaN payloads included
    REQUIRE(tformer::detail::f16_bits_to_f32_bits(static_cast<std::uint16_t>(i)) == bits(bulk[i]));  // the portable path
    if (std::isnan(ref)) {
      REQUIRE(std::isnan(scalar));
      REQUIRE(std::signbit(scalar) == static_cast<bool>(i & 0x8000));
    } else {
      REQUIRE(static_cast<double>(scalar) == ref);
      REQUIRE(std::signbit(scalar) == static_cast<bool>(i & 0x8000));
    }
  }
}

TEST_CASE("f32 -> f16 rounds to nearest even: every pattern, midpoint and neighbour", "[half]") {
  // For every f16 pattern h: h itself, the midpoint to the next pattern, and the floats right
  // beside that midpoint. The midpoint of two binary16 values is exact in binary32.
  std::vector<float> inputs;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    const double v = f16_value(h);
    if (std::isnan(v)) continue;
    inputs.push_back(static_cast<float>(v));
    if ((h & 0x7FFF) >= 0x7C00) continue;  // no next pattern after inf
    const double next = (h & 0x7FFF) == 0x7BFF ? (std::signbit(v) ? -65536.0 : 65536.0)  // one past max
                                              : f16_value(static_cast<std::uint16_t>(h + 1));
    const auto mid = static_cast<float>((v + next) / 2);
    inputs.push_back(mid);
    inputs.push_back(std::nextafter(mid, 0.0f));
    inputs.push_back(std::nextafter(mid, std::copysign(INFINITY, mid)));
  }
  // Float patterns across the whole range (a stride coprime with 2^32), which covers values far
  // beyond f16's range and far below its smallest subnormal.
  for (std::uint64_t p = 0; p < (1ull << 32); p += 7919) inputs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(p)));

  std::vector<f16> bulk(inputs.size());
  tformer::convert(inputs.data(), bulk.data(), inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const float x = inputs[i];
    const f16 scalar(x);
    INFO("input bits 0x" << std::hex << bits(x));
    REQUIRE(scalar.bits == bulk[i].bits);
    if (std::isnan(x)) {
      REQUIRE((scalar.bits & 0x7C00) == 0x7C00);
      REQUIRE((scalar.bits & 0x3FF) != 0);
      REQUIRE((scalar.bits & 0x8000) == ((bits(x) >> 16) & 0x8000));
    } else {
      REQUIRE(scalar.bits == f16_round_reference(x));
    }
  }
}

TEST_CASE("f16 round trip keeps every pattern (NaNs stay NaN)", "[half]") {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = f16::from_bits(static_cast<std::uint16_t>(i));
    const f16 back(static_cast<float>(h));
    const bool nan = (i & 0x7C00) == 0x7C00 && (i & 0x3FF) != 0;
    INFO("pattern 0x" << std::hex << i);
    if (nan)
      REQUIRE(back.bits == (i | 0x200));  // quieted, payload and sign kept
    else
      REQUIRE(back.bits == i);
  }
}

TEST_CASE("bf16 -> f32 is exact and bf16 round trip keeps every pattern", "[half]") {
  std::vector<bf16> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = bf16::from_bits(static_cast<std::uint16_t>(i));
  std::vector<float> f(65536);
  tformer::convert(all.data(), f.data(), all.size());
  std::vector<bf16> back(65536);
  tformer::convert(f.data(), back.data(), f.size());
  for (std::uint32_t i = 0; i < 65536; ++i) {
    INFO("pattern 0x" << std::hex << i);
    REQUIRE(bits(f[i]) == (i << 16));  // bf16 is the upper half of a float
    REQUIRE(bits(static_cast<float>(all[i])) == (i << 16));
    const bool nan = (i & 0x7F80) == 0x7F80 && (i & 0x7F) != 0;
    REQUIRE(back[i].bits == (nan ? (i | 0x40) : i));  // NaN quieted, sign and payload kept
  }
}

TEST_CASE("f32 -> bf16 rounds to nearest even at every midpoint", "[half]") {
  // For every bf16 pattern p (finite), the float halfway to p+1 and its two neighbours.
  for (std::uint32_t i = 0; i < 65536; ++i) {
    if ((i & 0x7F80) == 0x7F80) continue;  // inf / NaN
    const std::uint32_t lo = i << 16;
    const float mid = std::bit_cast<float>(lo | 0x8000u);
    const float below = std::bit_cast<float>(lo | 0x7FFFu);
    const float above = std::bit_cast<float>(lo | 0x8001u);
    const std::uint32_t up = (i + 1) & 0xFFFF;  // 0x7F7F + 1 = inf: correct overflow
    INFO("pattern 0x" << std::hex << i);
    REQUIRE(bf16(below).bits == i);
    REQUIRE(bf16(above).bits == up);
    REQUIRE(bf16(mid).bits == ((i & 1) ? up : i));
    // subnormals are rounded, not flushed
    if ((i & 0x7F80) == 0 && (i & 0x7F) != 0) REQUIRE(bf16(std::bit_cast<float>(lo)).bits == i);
  }
  REQUIRE(bf16(std::numeric_limits<float>::max()).bits == 0x7F80);  // rounds up to inf
  REQUIRE(bf16(-INFINITY).bits == 0xFF80);
  REQUIRE(bf16(-0.0f).bits == 0x8000);
}

TEST_CASE("dtype tags, sizes and the runtime dispatch", "[dtype]") {
  using tformer::dtype;
  CHECK(tformer::dtype_of<float> == dtype::f32);
  CHECK(tformer::dtype_of<bf16> == dtype::bf16);
  CHECK(tformer::size_of(dtype::f16) == 2);
  CHECK(tformer::size_of(dtype::i32) == 4);
  CHECK(tformer::name(dtype::u8) == "u8");
  for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::i8, dtype::u8, dtype::i32}) {
    const std::size_t size = tformer::visit_dtype(t, [](auto v) { return sizeof(v); });
    CHECK(size == tformer::size_of(t));
  }
  CHECK_THROWS_AS(tformer::visit_dtype(static_cast<dtype>(42), [](auto v) { return sizeof(v); }), tformer::dtype_error);
}
