// Low-precision float elements (OCP "8-bit Floating Point Specification (OFP8)" v1.0 and OCP
// "Microscaling Formats (MX)" v1.0), one byte or nibble each, and their conversions to and from
// float. Codes are bit patterns S.E.M, sign in the top bit:
//
//   E4M3 ("E4M3FN")  1.4.3  bias 7   no infinities; S.1111.111 is NaN; max 448 = 1.75 * 2^8;
//                                   subnormals m * 2^-9; 0x00 = +0, 0x80 = -0
//   E5M2             1.5.2  bias 15  IEEE-like (the top byte of a binary16): S.11111.00 = inf,
//                                   S.11111.{01,10,11} = NaN; max 57344 = 1.75 * 2^15; subnormals m * 2^-16
//   E2M1 (FP4)       1.2.1  bias 1   4 bits, no inf or NaN: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives
//   E8M0             8 exponent bits, unsigned, bias 127: 2^(c - 127) for c < 255 (c = 0 is 2^-127),
//                                   0xFF is NaN; no zero, no sign
//
// Decoding is exact (every code is a float). Encoding float -> E4M3 / E5M2 / E2M1 rounds to
// nearest, ties to even (on the magnitude's code, so the sign never affects rounding, and values
// below half the smallest subnormal become a zero of the input's sign). Overflow (a value that
// rounds beyond the largest finite code) and infinities follow the mode:
//   overflow::non_saturating  E4M3: NaN; E5M2: inf of the input's sign (the IEEE rule; ml_dtypes'
//                             and torch's casts)
//   overflow::saturate        the largest finite code of the input's sign, infinities included
//                             (OCP's "saturation mode", CUDA's satfinite)
// NaN stays NaN (E4M3 0x7F / 0xFF, E5M2 0x7E / 0xFE, by the input's sign). E2M1 has no inf or
// NaN: its conversion always saturates, and a NaN becomes +0 (OCP leaves it to the implementation).
// Encoding float -> E8M0 rounds to the nearest power of two by the significand, a tie (1.5 * 2^e)
// going up, as ml_dtypes' float8_e8m0fnu does; values below 2^-127 give code 0 (2^-127), and zero,
// negative values and NaN give 0xFF (NaN); overflow (beyond 2^127) and +inf give 0xFF, or 0xFE in
// saturation mode. Every encoder is bit-exact with ml_dtypes 0.6 in non-saturating mode and with
// ml_dtypes applied to x clamped to [-max, max] in saturating mode (tests/data/lowfloat_quants.safetensors),
// except E2M1's NaN (ml_dtypes gives a signed zero whose sign is not the NaN's) and E8M0's float
// subnormal inputs strictly between 2^-127 and 1.5 * 2^-127, which ml_dtypes rounds up to 2^-126
// although 2^-127 is nearer. Rounding uses the
// current floating-point rounding mode, which must be the default (to nearest).
//
// Bulk decoding (fp8_to_float) has three compiled paths, chosen at compile time like the rest of
// the library: AVX-512 (16 codes a step), AVX2 + F16C (8 a step) and a scalar table lookup that
// defines the result; every path returns the same bits. The SIMD paths go through binary16, which
// holds every E4M3 and E5M2 value, so no float subnormal is ever an operand (no microcode assists).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../config.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define TFORMER_LOWFLOAT_AVX2 1
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(TFORMER_LOWFLOAT_AVX2)
#define TFORMER_LOWFLOAT_AVX512 1
#endif
#if defined(TFORMER_LOWFLOAT_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

/// @brief What a conversion does with values beyond the target's largest finite value.
enum class overflow : bool {
  non_saturating = false,  ///< E4M3: NaN, E5M2: inf, E8M0: NaN (IEEE-like; ml_dtypes' and torch's casts)
  saturate = true,         ///< the largest finite value of the input's sign (OCP saturation mode)
};

/// @brief The FP8 element types, as tags: bits of exponent and mantissa, bias, the largest finite value.
struct e4m3 {
  static constexpr const char* name = "e4m3";
  static constexpr int exponent_bits = 4, mantissa_bits = 3, bias = 7;
  static constexpr float max = 448.0f;
  static constexpr std::uint8_t max_code = 0x7E;  // 0.1111.110
};
struct e5m2 {
  static constexpr const char* name = "e5m2";
  static constexpr int exponent_bits = 5, mantissa_bits = 2, bias = 15;
  static constexpr float max = 57344.0f;
  static constexpr std::uint8_t max_code = 0x7B;  // 0.11110.11
};

namespace detail::lowfloat {

/// @brief 2^e as float, for a normal exponent e (-126 <= e <= 127).
constexpr float pow2(int e) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23); }

/// @brief The code magnitude of a >= 0 (finite) in a format with M mantissa bits and exponent bias
/// Bias, rounded to nearest even, with no upper limit (the caller treats codes above its largest
/// finite one as overflow). Below the smallest normal: a scaled by a power of two (exact), rounded
/// to an integer number of subnormal steps (2^M steps is the smallest normal's code, as it should
/// be). Above: the float's bits rebiased and their low 23 - M bits rounded off, a carry moving
/// into the exponent.
template <int M, int Bias>
inline std::uint32_t magnitude_code(float a) noexcept {
  constexpr int emin = 1 - Bias;  // the smallest normal is 2^emin
  constexpr float min_normal = pow2(emin), to_steps = pow2(M - emin);
  if (a < min_normal) return static_cast<std::uint32_t>(std::nearbyint(a * to_steps));
  const std::uint32_t u = std::bit_cast<std::uint32_t>(a) - (static_cast<std::uint32_t>(127 - Bias) << 23);
  constexpr int shift = 23 - M;
  const std::uint32_t r = u + ((1u << (shift - 1)) - 1) + ((u >> shift) & 1u);
  return r >> shift;
}

/// @brief The value of E4M3 code c, from the definition.
constexpr float e4m3_value(unsigned c) noexcept {
  const unsigned mag = c & 0x7F;
  if (mag == 0x7F) return std::bit_cast<float>((c & 0x80) ? 0xFFC00000u : 0x7FC00000u);  // NaN of the code's sign
  const int e = static_cast<int>(mag >> 3), m = static_cast<int>(mag & 7);
  float v = e == 0 ? static_cast<float>(m) / 512.0f : static_cast<float>(8 + m) / 8.0f;
  for (int i = 1; i < e; ++i) v *= 2.0f;
  if (e > 0) v /= 64.0f;  // 2^(e - 7) (1 + m / 8), exact in float
  return (c & 0x80) ? -v : v;
}
/// @brief The value of E5M2 code c, from the definition.
constexpr float e5m2_value(unsigned c) noexcept {
  const unsigned mag = c & 0x7F;
  float v;
  if (mag > 0x7C) return std::bit_cast<float>((c & 0x80) ? 0xFFC00000u : 0x7FC00000u);  // NaN of the code's sign
  if (mag == 0x7C) {
    v = std::numeric_limits<float>::infinity();
  } else {
    const int e = static_cast<int>(mag >> 2), m = static_cast<int>(mag & 3);
    v = e == 0 ? static_cast<float>(m) / 65536.0f : static_cast<float>(4 + m) / 4.0f;
    for (int i = 1; i < e; ++i) v *= 2.0f;
    if (e > 0) v /= 16384.0f;  // 2^(e - 15) (1 + m / 4)
  }
  return (c & 0x80) ? -v : v;
}
/// @brief The value of E8M0 code c: 2^(c - 127), NaN for 0xFF.
constexpr float e8m0_value(unsigned c) noexcept {
  if (c == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  return c == 0 ? std::bit_cast<float>(0x00400000u) : std::bit_cast<float>(static_cast<std::uint32_t>(c) << 23);
}

template <class F>
struct table256 {
  float v[256];
};
template <float (*Value)(unsigned)>
constexpr table256<float> make_table() noexcept {
  table256<float> t{};
  for (unsigned c = 0; c < 256; ++c) t.v[c] = Value(c);
  return t;
}

}  // namespace detail::lowfloat

/// @brief Every E4M3 code's value, indexed by the code (NaN at 0x7F and 0xFF).
inline constexpr auto e4m3_values = detail::lowfloat::make_table<&detail::lowfloat::e4m3_value>();
/// @brief Every E5M2 code's value, indexed by the code.
inline constexpr auto e5m2_values = detail::lowfloat::make_table<&detail::lowfloat::e5m2_value>();
/// @brief Every E8M0 code's value 2^(c - 127), indexed by the code (NaN at 0xFF).
inline constexpr auto e8m0_values = detail::lowfloat::make_table<&detail::lowfloat::e8m0_value>();
/// @brief Every E2M1 code's value, indexed by the 4-bit code.
inline constexpr float e2m1_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/// @brief E4M3 code c as float (exact).
inline float from_e4m3(std::uint8_t c) noexcept { return e4m3_values.v[c]; }
/// @brief E5M2 code c as float (exact).
inline float from_e5m2(std::uint8_t c) noexcept { return e5m2_values.v[c]; }
/// @brief E8M0 code c as float: 2^(c - 127), NaN for 0xFF.
inline float from_e8m0(std::uint8_t c) noexcept { return e8m0_values.v[c]; }
/// @brief E2M1 code c (the low 4 bits) as float.
inline float from_e2m1(std::uint8_t c) noexcept { return e2m1_values[c & 15]; }

/// @brief x as E4M3, round to nearest even; overflow and infinities by mode (see the top of the file).
inline std::uint8_t to_e4m3(float x, overflow mode = overflow::non_saturating) noexcept {
  const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return sign | 0x7F;
  const float a = std::fabs(x);
  if (std::isinf(a) || detail::lowfloat::magnitude_code<3, 7>(a) > e4m3::max_code)
    return sign | (mode == overflow::saturate ? e4m3::max_code : 0x7F);
  return static_cast<std::uint8_t>(sign | detail::lowfloat::magnitude_code<3, 7>(a));
}
/// @brief x as E5M2, round to nearest even; overflow and infinities by mode (see the top of the file).
inline std::uint8_t to_e5m2(float x, overflow mode = overflow::non_saturating) noexcept {
  const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return sign | 0x7E;
  const float a = std::fabs(x);
  if (std::isinf(a) || detail::lowfloat::magnitude_code<2, 15>(a) > e5m2::max_code)
    return sign | (mode == overflow::saturate ? e5m2::max_code : 0x7C);
  return static_cast<std::uint8_t>(sign | detail::lowfloat::magnitude_code<2, 15>(a));
}
/// @brief x as E2M1 (a 4-bit code in the low bits), round to nearest even, saturating at 6; NaN -> +0.
inline std::uint8_t to_e2m1(float x) noexcept {
  if (std::isnan(x)) return 0;
  const std::uint8_t sign = std::signbit(x) ? 0x8 : 0x0;
  const float a = std::fabs(x);
  if (std::isinf(a)) return sign | 7;
  const std::uint32_t c = detail::lowfloat::magnitude_code<1, 1>(a);
  return static_cast<std::uint8_t>(sign | (c > 7 ? 7u : c));
}
/// @brief x as E8M0: the nearest power of two by the significand, ties up (see the top of the file).
inline std::uint8_t to_e8m0(float x, overflow mode = overflow::non_saturating) noexcept {
  if (!(x > 0.0f)) return 0xFF;  // NaN, zero, negative: no such E8M0 value
  if (std::isinf(x)) return mode == overflow::saturate ? 0xFE : 0xFF;
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t e = bits >> 23, mant = bits & 0x7FFFFF;
  if (e == 0) return mant >= 0x600000 ? 1 : 0;  // below 2^-126: 2^-126 from 1.5 * 2^-127 up, else 2^-127
  const std::uint32_t c = e + (mant >= 0x400000 ? 1 : 0);
  if (c > 0xFE) return mode == overflow::saturate ? 0xFE : 0xFF;
  return static_cast<std::uint8_t>(c);
}

/// @brief An FP8 element's conversions by tag (E is e4m3 or e5m2).
template <class E>
inline std::uint8_t to_fp8(float x, overflow mode = overflow::non_saturating) noexcept {
  if constexpr (std::is_same_v<E, e4m3>) return to_e4m3(x, mode);
  else return to_e5m2(x, mode);
}
template <class E>
inline float from_fp8(std::uint8_t c) noexcept {
  if constexpr (std::is_same_v<E, e4m3>) return from_e4m3(c);
  else return from_e5m2(c);
}

namespace detail::lowfloat {

#if defined(TFORMER_LOWFLOAT_AVX2)
/// @brief 8 FP8 codes (u16 lanes, zero-extended) -> 8 floats, exact: E5M2 is the top byte of a
/// binary16; E4M3's magnitude << 7 is the binary16 2^(e - 15)(1 + m / 8) (or m 2^-17), 2^8 times
/// too small, with its NaN code blended in afterwards.
template <class E>
inline __m256 fp8x8(__m128i c16) noexcept {
  if constexpr (std::is_same_v<E, e5m2>) {
    return _mm256_cvtph_ps(_mm_slli_epi16(c16, 8));
  } else {
    const __m128i mag = _mm_and_si128(c16, _mm_set1_epi16(0x7F));
    const __m128i h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(c16, _mm_set1_epi16(0x80)), 8));
    const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
    const __m256 nan = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7F))));
    return _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan);
  }
}
/// @brief The 8 FP8 codes at p as floats.
template <class E>
inline __m256 load_fp8x8(const std::uint8_t* p) noexcept {
  return fp8x8<E>(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#endif

#if defined(TFORMER_LOWFLOAT_AVX512)
/// @brief The 16 FP8 codes at p as floats (fp8x8's method, 16 lanes).
template <class E>
inline __m512 load_fp8x16(const std::uint8_t* p) noexcept {
  const __m256i c16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if constexpr (std::is_same_v<E, e5m2>) {
    return _mm512_cvtph_ps(_mm256_slli_epi16(c16, 8));
  } else {
    const __m256i mag = _mm256_and_si256(c16, _mm256_set1_epi16(0x7F));
    const __m256i h =
        _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(c16, _mm256_set1_epi16(0x80)), 8));
    const __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
    const __mmask16 nan = _mm256_cmpeq_epi16_mask(mag, _mm256_set1_epi16(0x7F));
    return _mm512_mask_blend_ps(nan, v, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
  }
}
#endif

}  // namespace detail::lowfloat

/// @brief Bulk FP8 -> float: y[t] = the value of code c[t], t < n. Paths: scalar (the table, the
/// reference), avx2, avx512 where compiled; best is the one fp8_to_float uses.
template <class E>
struct fp8_decode {
  static void scalar(const std::uint8_t* c, float* y, std::size_t n) noexcept {
    for (std::size_t t = 0; t < n; ++t) y[t] = from_fp8<E>(c[t]);
  }
#if defined(TFORMER_LOWFLOAT_AVX2)
  static void avx2(const std::uint8_t* c, float* y, std::size_t n) noexcept {
    std::size_t t = 0;
    for (; t + 8 <= n; t += 8) _mm256_storeu_ps(y + t, detail::lowfloat::load_fp8x8<E>(c + t));
    scalar(c + t, y + t, n - t);
  }
#endif
#if defined(TFORMER_LOWFLOAT_AVX512)
  static void avx512(const std::uint8_t* c, float* y, std::size_t n) noexcept {
    std::size_t t = 0;
    for (; t + 16 <= n; t += 16) _mm512_storeu_ps(y + t, detail::lowfloat::load_fp8x16<E>(c + t));
    scalar(c + t, y + t, n - t);
  }
#endif
  static void best(const std::uint8_t* c, float* y, std::size_t n) noexcept {
#if defined(TFORMER_LOWFLOAT_AVX512)
    avx512(c, y, n);
#elif defined(TFORMER_LOWFLOAT_AVX2)
    avx2(c, y, n);
#else
    scalar(c, y, n);
#endif
  }
};

/// @brief The name of the path fp8_decode<E>::best (and the low-float products) use in this build.
#if defined(TFORMER_LOWFLOAT_AVX512)
inline constexpr const char* lowfloat_best_path = "avx512";
#elif defined(TFORMER_LOWFLOAT_AVX2)
inline constexpr const char* lowfloat_best_path = "avx2";
#else
inline constexpr const char* lowfloat_best_path = "scalar";
#endif

/// @brief c [n] FP8 codes of element E -> y [n] floats (exact), with the best compiled path.
template <class E>
inline void fp8_to_float(const std::uint8_t* c, float* y, std::size_t n) noexcept {
  fp8_decode<E>::best(c, y, n);
}
/// @brief x [n] -> c [n] FP8 codes of element E, round to nearest even, overflow by mode.
template <class E>
inline void float_to_fp8(const float* x, std::uint8_t* c, std::size_t n, overflow mode = overflow::non_saturating) noexcept {
  for (std::size_t t = 0; t < n; ++t) c[t] = to_fp8<E>(x[t], mode);
}

}  // namespace tformer::quant
