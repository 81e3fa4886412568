// Elementwise kernels on raw float arrays: add, mul, scale, fused residual add, dot, axpy.
//
// Conventions (see arch.hpp): templated on the xsimd architecture, pointers + length, the tail
// processed as one padded batch through the same code. Outputs may alias inputs exactly
// (out == a); partial overlaps are not supported.
#pragma once

#include <cstddef>
#include <type_traits>

#include "arch.hpp"

namespace tformer::simd {

namespace detail {

/// @brief True where architecture A has a fused multiply-add (one rounding).
template <class A>
inline constexpr bool fma_is_fused =
    std::is_base_of_v<xsimd::fma3<xsimd::sse4_2>, A> || std::is_base_of_v<xsimd::fma3<xsimd::avx>, A> ||
    std::is_base_of_v<xsimd::fma3<xsimd::avx2>, A> || std::is_base_of_v<xsimd::avx512f, A>;

/// @brief a * b + c, fused where fma_is_fused<A>, else a product and a sum. xsimd 8.1 fuses its
/// fma on the fma3 architectures only (on AVX-512 it is a * b + c, fused or not at the compiler's
/// choice), so AVX-512 calls the intrinsic.
template <class A>
inline fbatch<A> fused_madd(const fbatch<A>& a, const fbatch<A>& b, const fbatch<A>& c) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return _mm512_fmadd_ps(a, b, c);
#endif
  return xsimd::fma(a, b, c);
}

/// @brief a * b - c, fused where fma_is_fused<A> (see fused_madd).
template <class A>
inline fbatch<A> fused_msub(const fbatch<A>& a, const fbatch<A>& b, const fbatch<A>& c) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return _mm512_fmsub_ps(a, b, c);
#endif
  return xsimd::fms(a, b, c);
}

}  // namespace detail

/// @brief out[i] = a[i] + b[i] (correctly rounded).
template <class A = default_arch>
inline void add(const float* a, const float* b, float* out, std::size_t n) noexcept {
  map2<A>(a, b, out, n, [](const fbatch<A>& x, const fbatch<A>& y) { return x + y; });
}

/// @brief out[i] = a[i] * b[i] (correctly rounded).
template <class A = default_arch>
inline void mul(const float* a, const float* b, float* out, std::size_t n) noexcept {
  map2<A>(a, b, out, n, [](const fbatch<A>& x, const fbatch<A>& y) { return x * y; });
}

/// @brief out[i] = s * x[i] (correctly rounded).
template <class A = default_arch>
inline void scale(const float* x, float s, float* out, std::size_t n) noexcept {
  const fbatch<A> vs(s);
  map<A>(x, out, n, [vs](const fbatch<A>& v) { return vs * v; });
}

/// @brief residual[i] += x[i] + bias[i], bias optional (nullptr): the sublayer output x (+ bias)
/// is rounded first, then added to the residual stream, as in PyTorch's `residual + linear(x)`.
template <class A = default_arch>
inline void residual_add(const float* x, const float* bias, float* residual, std::size_t n) noexcept {
  if (bias == nullptr) {
    map2<A>(residual, x, residual, n, [](const fbatch<A>& r, const fbatch<A>& v) { return r + v; });
    return;
  }
  constexpr std::size_t W = fbatch<A>::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const fbatch<A> v = fbatch<A>::load_unaligned(x + i) + fbatch<A>::load_unaligned(bias + i);
    (fbatch<A>::load_unaligned(residual + i) + v).store_unaligned(residual + i);
  }
  if (i < n) {  // tail: one zero-padded batch through the same arithmetic
    const std::size_t m = n - i;
    const fbatch<A> v = load_partial<A>(x + i, m, 0.0f) + load_partial<A>(bias + i, m, 0.0f);
    store_partial<A>(residual + i, load_partial<A>(residual + i, m, 0.0f) + v, m);
  }
}

/// @brief Sum of a[i] * b[i], with four independent FMA accumulators and a zero-padded tail
/// (a product and a sum per element where A has no FMA).
/// The summation order depends only on n and A, so the result is deterministic.
template <class A = default_arch>
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  using B = fbatch<A>;
  constexpr std::size_t W = B::size;
  B acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {  // 4 batches per step hide the FMA latency
    acc0 = detail::fused_madd<A>(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
    acc1 = detail::fused_madd<A>(B::load_unaligned(a + i + W), B::load_unaligned(b + i + W), acc1);
    acc2 = detail::fused_madd<A>(B::load_unaligned(a + i + 2 * W), B::load_unaligned(b + i + 2 * W), acc2);
    acc3 = detail::fused_madd<A>(B::load_unaligned(a + i + 3 * W), B::load_unaligned(b + i + 3 * W), acc3);
  }
  for (; i + W <= n; i += W) acc0 = detail::fused_madd<A>(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
  if (i < n)
    acc1 = detail::fused_madd<A>(load_partial<A>(a + i, n - i, 0.0f), load_partial<A>(b + i, n - i, 0.0f), acc1);
  return reduce_add<A>((acc0 + acc1) + (acc2 + acc3));
}

/// @brief y[i] += alpha * x[i] (one FMA per element where the architecture has FMA).
template <class A = default_arch>
inline void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
  const fbatch<A> va(alpha);
  map2<A>(x, y, y, n, [va](const fbatch<A>& vx, const fbatch<A>& vy) { return detail::fused_madd<A>(va, vx, vy); });
}

}  // namespace tformer::simd
