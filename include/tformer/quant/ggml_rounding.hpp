// The float arithmetic of ggml's reference quantizers for its super-block formats (iq4_xs, q2_k,
// q3_k), evaluated as ISO C writes it: every product rounded to float before it is added or
// subtracted. ggml's reference builds (x86 without FMA in the baseline) evaluate it that way; a
// compiler that contracts a * b + c into an fma (GCC's default -ffp-contract=fast on an FMA
// target, which tformer's -march=native builds are) rounds once and picks other codes on rare
// inputs. A product passed through rounded() (or made by mul()) is never fused, whatever the
// contraction setting. Internal: include a format header (iq4_xs.hpp, q2_k.hpp .. q6_k.hpp, q8_k.hpp).
#pragma once

#include <bit>
#include <cstdint>

namespace tformer::quant::detail::ggml_rounding {

/// @brief v rounded to float where it stands: an optimization barrier that keeps the compiler from
/// fusing the product that made v with the addition or subtraction that uses it (an empty asm on
/// GCC and clang; a volatile round trip elsewhere).
[[gnu::always_inline]] inline float rounded(float v) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  __asm__("" : "+x"(v));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile float t = v;
  v = t;
#endif
  return v;
}
/// @brief a * b rounded to float, never fused with what uses it.
[[gnu::always_inline]] inline float mul(float a, float b) noexcept { return rounded(a * b); }

/// @brief ggml's nearest_int(v): the float sum v + 12582912.f (1.5 * 2^23) read back as an integer,
/// (bits & 0x7fffff) - 0x400000: v rounded to the nearest integer, halves to even, for |v| <=
/// 4194303, and for larger |v| (and NaN) the same wrapped bits as ggml (its callers clamp them, so
/// they matter). v goes through rounded() first: the product that made v is rounded to float before
/// the addition, as ISO C evaluates ggml's call (a double sum is not enough: GCC may form the float
/// product exactly in double and fuse it with a double addition).
inline int nearest_int(float v) noexcept {
  const float val = rounded(v) + 12582912.0f;
  const auto i = std::bit_cast<std::int32_t>(val);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace tformer::quant::detail::ggml_rounding
