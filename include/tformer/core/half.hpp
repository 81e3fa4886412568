// 16-bit floating-point storage types: IEEE binary16 (f16) and bfloat16 (bf16).
// Conversions round to nearest, ties to even; infinities, signed zeros and subnormals are exact;
// NaNs stay NaN with their sign and the leading payload bits, quieted exactly as the x86 F16C
// instructions do, so the portable code and the hardware give identical bits on every input.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>  // F16C / AVX-512 conversions
#endif

namespace tformer {

namespace detail {

/// @brief binary16 bits -> binary32 bits (exact; NaN quieted like VCVTPH2PS).
constexpr std::uint32_t f16_bits_to_f32_bits(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) {  // inf or NaN
    return sign | 0x7F800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u);
  }
  if (exp != 0) return sign | ((exp + 112u) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  if (mant == 0) return sign;                                         // signed zero
  // subnormal: value = mant * 2^-24; normalise so the leading one becomes the hidden bit
  std::uint32_t e = 113;  // exponent of 2^-14 in binary32, before shifting
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return sign | (e << 23) | ((mant & 0x3FFu) << 13);
}

/// @brief binary32 bits -> binary16 bits, round to nearest even (NaN quieted like VCVTPS2PH).
constexpr std::uint16_t f32_bits_to_f16_bits(std::uint32_t f) noexcept {
  const std::uint16_t sign = static_cast<std::uint16_t>((f >> 16) & 0x8000u);
  const std::uint32_t exp = (f >> 23) & 0xFFu;
  const std::uint32_t mant = f & 0x7FFFFFu;
  if (exp == 0xFF) {  // inf or NaN
    if (mant == 0) return sign | 0x7C00u;
    return static_cast<std::uint16_t>(sign | 0x7E00u | (mant >> 13));
  }
  const int e = static_cast<int>(exp) - 127 + 15;  // rebias
  if (e >= 0x1F) return sign | 0x7C00u;             // overflow -> inf
  if (e <= 0) {
    // result is subnormal or zero: shift the full significand (with hidden bit) right
    if (e < -10) return sign;  // below half of the smallest subnormal: rounds to zero
    const std::uint32_t sig = mant | 0x800000u;
    const int shift = 14 - e;  // 24-bit significand -> 10-bit subnormal field
    std::uint32_t r = sig >> shift;
    const std::uint32_t rem = sig & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t r = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // carry may reach inf: correct
  return static_cast<std::uint16_t>(sign | r);
}

/// @brief binary32 bits -> bfloat16 bits, round to nearest even; NaN quieted, sign kept.
constexpr std::uint16_t f32_bits_to_bf16_bits(std::uint32_t f) noexcept {
  if ((f & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((f >> 16) | 0x0040u);
  const std::uint32_t rounding = 0x7FFFu + ((f >> 16) & 1u);
  return static_cast<std::uint16_t>((f + rounding) >> 16);
}

}  // namespace detail

/// @brief IEEE 754 binary16 storage type (1 sign, 5 exponent, 10 mantissa bits).
struct f16 {
  std::uint16_t bits = 0;
  constexpr f16() noexcept = default;
  explicit f16(float x) noexcept : bits(detail::f32_bits_to_f16_bits(std::bit_cast<std::uint32_t>(x))) {}
  static constexpr f16 from_bits(std::uint16_t b) noexcept {
    f16 h;
    h.bits = b;
    return h;
  }
  explicit operator float() const noexcept {
#if defined(__F16C__)
    return _cvtsh_ss(bits);  // one instruction, the same bits (every block scale of a ggml format goes through here)
#else
    return std::bit_cast<float>(detail::f16_bits_to_f32_bits(bits));
#endif
  }
  friend constexpr bool operator==(f16 a, f16 b) noexcept { return a.bits == b.bits; }  // bitwise
};

/// @brief bfloat16 storage type (the upper half of a binary32).
struct bf16 {
  std::uint16_t bits = 0;
  constexpr bf16() noexcept = default;
  explicit bf16(float x) noexcept : bits(detail::f32_bits_to_bf16_bits(std::bit_cast<std::uint32_t>(x))) {}
  static constexpr bf16 from_bits(std::uint16_t b) noexcept {
    bf16 h;
    h.bits = b;
    return h;
  }
  explicit operator float() const noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
  friend constexpr bool operator==(bf16 a, bf16 b) noexcept { return a.bits == b.bits; }  // bitwise
};

static_assert(sizeof(f16) == 2 && sizeof(bf16) == 2);

/// @brief Converts n halves to floats (F16C where compiled in; identical bits otherwise).
inline void convert(const f16* src, float* dst, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

/// @brief Converts n floats to halves, round to nearest even (F16C where compiled in).
inline void convert(const float* src, f16* dst, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  for (; i < n; ++i) dst[i] = f16(src[i]);
}

/// @brief Converts n bfloat16 values to floats (a shift: exact, vectorized by the compiler).
inline void convert(const bf16* src, float* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

/// @brief Converts n floats to bfloat16, round to nearest even, subnormals kept.
/// AVX512-BF16's VCVTNEPS2BF16 flushes subnormal inputs to zero, so it would not give the same bits
/// as the rule above; the integer rounding here is branch-free and the compiler vectorizes it.
inline void convert(const float* src, bf16* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i].bits = detail::f32_bits_to_bf16_bits(std::bit_cast<std::uint32_t>(src[i]));
}

}  // namespace tformer
