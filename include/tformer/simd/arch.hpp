// SIMD conventions shared by every kernel in simd/.
//
// Kernels are free functions templated on the xsimd architecture, defaulting to the best one the
// translation unit was compiled for (SSE2 without flags; AVX-512 under -march=native on this
// project's machines). They work on raw pointers and a length, vectorized over the innermost
// dimension. The tail (n % batch size) is processed as one padded batch through the same code,
// so an element's result does not depend on its position or on the length.
#pragma once

#include <cstddef>
#include <cstring>

#include <xsimd/xsimd.hpp>

namespace tformer::simd {

/// @brief The architecture kernels use unless told otherwise.
using default_arch = xsimd::default_arch;

/// @brief A batch of floats for architecture A.
template <class A>
using fbatch = xsimd::batch<float, A>;

/// @brief Loads min(n, size) floats from p; the remaining lanes hold fill.
template <class A>
inline fbatch<A> load_partial(const float* p, std::size_t n, float fill) noexcept {
  alignas(64) float tmp[fbatch<A>::size];
  for (std::size_t i = 0; i < fbatch<A>::size; ++i) tmp[i] = i < n ? p[i] : fill;
  return fbatch<A>::load_aligned(tmp);
}

/// @brief Stores the first min(n, size) lanes of v to p.
template <class A>
inline void store_partial(float* p, const fbatch<A>& v, std::size_t n) noexcept {
  alignas(64) float tmp[fbatch<A>::size];
  v.store_aligned(tmp);
  std::memcpy(p, tmp, (n < fbatch<A>::size ? n : fbatch<A>::size) * sizeof(float));
}

/// @brief Horizontal maximum of a batch.
template <class A>
inline float reduce_max(const fbatch<A>& v) noexcept {
  alignas(64) float tmp[fbatch<A>::size];
  v.store_aligned(tmp);
  float m = tmp[0];
  for (std::size_t i = 1; i < fbatch<A>::size; ++i) m = tmp[i] > m ? tmp[i] : m;
  return m;
}

/// @brief Horizontal sum of a batch.
template <class A>
inline float reduce_add(const fbatch<A>& v) noexcept {
  return xsimd::hadd(v);
}

/// @brief Applies op(batch) -> batch to n floats from in, writing to out (in == out allowed).
template <class A, class Op>
inline void map(const float* in, float* out, std::size_t n, Op op) noexcept {
  constexpr std::size_t W = fbatch<A>::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) op(fbatch<A>::load_unaligned(in + i)).store_unaligned(out + i);
  if (i < n) store_partial<A>(out + i, op(load_partial<A>(in + i, n - i, 0.0f)), n - i);
}

/// @brief Applies op(batch, batch) -> batch elementwise to a and b, writing to out.
template <class A, class Op>
inline void map2(const float* a, const float* b, float* out, std::size_t n, Op op) noexcept {
  constexpr std::size_t W = fbatch<A>::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    op(fbatch<A>::load_unaligned(a + i), fbatch<A>::load_unaligned(b + i)).store_unaligned(out + i);
  if (i < n)
    store_partial<A>(out + i, op(load_partial<A>(a + i, n - i, 0.0f), load_partial<A>(b + i, n - i, 0.0f)), n - i);
}

}  // namespace tformer::simd
