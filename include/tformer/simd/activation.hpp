// Activation functions as policy types, and a kernel that applies one to an array.
//
//   struct act::gelu { name; operator()(float); operator()(batch<float, A>) }  -- see below
//   activate<act::gelu>(x, out, n): out[i] = gelu(x[i])
//
// Each functor works on xsimd::batch<float, A> for any architecture A and on a plain float. The
// float overload runs the batch code of default_arch on a broadcast value, so a scalar call returns
// the same bits as activate<Act>() compiled for default_arch.
//
// Accuracy: within 2 ulp of the exact function of the float input, on every compiled
// architecture and for subnormal results too (tests/simd/test_activation.cpp states and checks a
// bound per activation; a scan of every 4th float measured 0.98 ulp for sigmoid, 1.08 silu,
// 1.35 tanh, 1.46 gelu (1.79 on SSE2, without FMA) and 1.56 gelu_tanh); relu is exact.
// xsimd 8.1's exp (~1.5 ulp, flushing results below 2^-126 to zero) and erfc (~70 ulp for large
// arguments) are not good enough for that, so this header has its own exp, split as 2^k (1 + m)
// so that callers fold 1 + m in before the one final rounding; computes the arguments of exp in
// double-float arithmetic where the input is scaled first (x^2 / 2 in gelu, 2u in gelu_tanh: exp
// turns an absolute error there into a relative one); and uses fitted polynomials for gelu
// instead of erfc. No formula subtracts nearly equal values. Large inputs saturate without NaN
// (sigmoid(-100) = 3.7e-44, silu(-inf) = -0, gelu(1e30) = 1e30); NaN propagates.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "arch.hpp"
#include "elementwise.hpp"

namespace tformer::simd {

namespace act::detail {

template <class A>
using B = fbatch<A>;

/// Broadcasts a float given by its bit pattern (for polynomial coefficients copied as hex).
template <class A>
inline B<A> bits(std::uint32_t u) noexcept {
  return B<A>(std::bit_cast<float>(u));
}

/// x with its low 12 significand bits cleared: a 12-bit head, so head * head products are exact.
template <class A>
inline B<A> head12(const B<A>& x) noexcept {
  using U = xsimd::batch<std::uint32_t, A>;
  return xsimd::bitwise_cast<B<A>>(xsimd::bitwise_cast<U>(x) & U(0xFFFFF000u));
}

/// hi + lo = p * q exactly: one fused multiply-subtract where there is one, else Dekker's product
/// (exact without FMA, whether or not the compiler contracts a * b + c).
template <class A>
inline void two_prod(const B<A>& p, const B<A>& q, B<A>& hi, B<A>& lo) noexcept {
  hi = p * q;
  if constexpr (simd::detail::fma_is_fused<A>) {
    lo = simd::detail::fused_msub<A>(p, q, hi);
  } else {
    const B<A> ph = head12<A>(p), pl = p - ph, qh = head12<A>(q), ql = q - qh;
    lo = ((ph * qh - hi) + ph * ql + pl * qh) + pl * ql;
  }
}

/// hi + lo = a + b exactly (Knuth's two-sum).
template <class A>
inline void two_sum(const B<A>& a, const B<A>& b, B<A>& hi, B<A>& lo) noexcept {
  hi = a + b;
  const B<A> bb = hi - a;
  lo = (a - (hi - bb)) + (b - bb);
}

/// a * b + c with one rounding where A has FMA; else as good as one: a * b and its sum with c are
/// both kept exactly (two_prod, two_sum) up to the last addition.
template <class A>
inline B<A> madd_once(const B<A>& a, const B<A>& b, const B<A>& c) noexcept {
  if constexpr (simd::detail::fma_is_fused<A>) {
    return simd::detail::fused_madd<A>(a, b, c);
  } else {
    B<A> ph, pl, sh, sl;
    two_prod<A>(a, b, ph, pl);
    two_sum<A>(ph, c, sh, sl);
    return sh + (sl + pl);
  }
}

/// a * b + c, fused wherever A has FMA (simd::detail::fused_madd), so results do not depend on
/// the compiler's contraction choices.
template <class A>
inline B<A> madd(const B<A>& a, const B<A>& b, const B<A>& c) noexcept {
  return simd::detail::fused_madd<A>(a, b, c);
}

/// e^x = 2^k (1 + m) for x clipped to [-150, 89], with k integral and |m| < 0.42 good to ~2^-25:
/// exp before its final rounding, for callers that fold 1 + m into a larger expression.
/// Cody-Waite reduction k = round(x / ln2), r = x - k ln2, then e^r - 1 = r + r^2 P(r) with
/// Cephes' expf minimax coefficients.
template <class A>
inline void exp_parts(const B<A>& x, B<A>& k, B<A>& m) noexcept {
  const B<A> xc = xsimd::clip(x, B<A>(-150.0f), B<A>(89.0f));
  k = xsimd::nearbyint(xc * B<A>(1.44269504088896341f));
  B<A> r = madd<A>(k, B<A>(-0.693359375f), xc);  // 9-bit head of ln2: k * head is exact
  r = madd<A>(k, B<A>(2.12194440e-4f), r);
  B<A> p = madd<A>(B<A>(1.9875691500e-4f), r, B<A>(1.3981999507e-3f));
  p = madd<A>(p, r, B<A>(8.3334519073e-3f));
  p = madd<A>(p, r, B<A>(4.1665795894e-2f));
  p = madd<A>(p, r, B<A>(1.6666665459e-1f));
  p = madd<A>(p, r, B<A>(5.0000001201e-1f));
  m = madd<A>(p, r * r, r);
}

/// v * 2^k for integral k in [-217, 128], as two factors in the normal range: exact unless the
/// result is subnormal (then one rounding), 0 or inf beyond the float range.
template <class A>
inline B<A> scale2(const B<A>& v, const B<A>& k) noexcept {
  const B<A> k1 = xsimd::floor(k * B<A>(0.5f));
  return xsimd::ldexp(xsimd::ldexp(v, xsimd::to_int(k1)), xsimd::to_int(k - k1));
}

/// exp(x) within 1 ulp over the whole float range, gradual underflow included.
template <class A>
inline B<A> exp(const B<A>& x) noexcept {
  B<A> k, m;
  exp_parts<A>(x, k, m);
  return xsimd::select(xsimd::isnan(x), x, scale2<A>(m + B<A>(1.0f), k));
}

/// Polynomial c[0] + c[1] s + ... + c[N-1] s^(N-1) by Horner, coefficients given as float bits.
template <class A, std::size_t N>
inline B<A> poly(const B<A>& s, const std::uint32_t (&c)[N]) noexcept {
  B<A> r = bits<A>(c[N - 1]);
  for (std::size_t i = N - 1; i-- > 0;) r = madd<A>(r, s, bits<A>(c[i]));
  return r;
}

/// c0 + c[0] s + c[1] s^2 + ... as hi + lo, with a double-float constant term c0 = c0_hi + c0_lo
/// and the last Horner step c0 + s * (...) done exactly: one rounding short of the exact value.
template <class A, std::size_t N>
inline void poly2(const B<A>& s, std::uint32_t c0_hi, std::uint32_t c0_lo, const std::uint32_t (&c)[N], B<A>& hi,
                  B<A>& lo) noexcept {
  B<A> r = poly<A>(s, c);
  B<A> ph, pl, t;
  two_prod<A>(s, r, ph, pl);
  two_sum<A>(bits<A>(c0_hi), ph, hi, t);
  lo = (t + pl) + bits<A>(c0_lo);
}

/// num * sigmoid(t) for t = th + tl (tl a correction of the order of ulp(th)), with one final
/// rounding plus ~2^-25 relative: exp's result is never rounded on its own. num may be +-inf
/// only where sigmoid(t) is not tiny (callers map x = -inf themselves).
template <class A>
inline B<A> times_sigmoid(const B<A>& num, const B<A>& th, const B<A>& tl) noexcept {
  // far (t < -80): sigmoid(t) = e^t (1 - e^t + ...) = e^t in float.
  // near: num / (1 + e^-t); the exp argument is then at most 80 and never overflows.
  const auto far = th < B<A>(-80.0f);
  const B<A> sh = xsimd::select(far, th, -th), sl = xsimd::select(far, tl, -tl);
  B<A> k, m;
  exp_parts<A>(sh, k, m);
  const B<A> mt = madd<A>(m, sl, m + sl);  // e^(sh + sl) = 2^k (1 + mt)
  B<A> wh, wl;
  two_sum<A>(B<A>(1.0f), mt, wh, wl);  // 1 + mt = wh + wl exactly
  // 2^k, raised to 2^-126 where it is negligible next to 1 anyway
  const B<A> p2 = xsimd::ldexp(B<A>(1.0f), xsimd::to_int(xsimd::max(k, B<A>(-126.0f))));
  // near: the denominator 1 + e^-t kept as hi + lo, the quotient refined once with the exact
  // remainder
  B<A> hi, lo, ph, pl;
  two_sum<A>(B<A>(1.0f), p2 * wh, hi, lo);
  lo += p2 * wl;
  const B<A> q = num / hi;
  two_prod<A>(q, hi, ph, pl);
  const B<A> rem = ((num - ph) - pl) - q * lo;  // num - q (hi + lo)
  const B<A> near = xsimd::select(xsimd::isinf(q), q, q + rem / hi);
  // far: num e^t, zero below t = -150 whatever num (the exp argument was clipped there)
  const B<A> far_v = xsimd::select(th < B<A>(-150.0f), num * B<A>(0.0f), scale2<A>(madd_once<A>(num, mt, num), k));
  return xsimd::select(xsimd::isnan(th), th, xsimd::select(far, far_v, near));
}

/// gelu(x) = relu(x) - exp(-x^2 / 2) H(|x|) for |x| >= 0.7, with H(x) = exp(x^2/2) x Phi(-x), as
/// hi + lo, in two pieces: a polynomial in x on [0.7, 3] and in 1/x on [3, 16]. Fitted for this
/// header (weighted least squares on Chebyshev nodes against mpmath; the coefficients rounded to
/// float one at a time from the constant term, which stays double-float, refitting the rest):
/// approximation error below 0.05 * 2^-24 relative, so the evaluation's roundings dominate.
template <class A>
inline void gelu_h(const B<A>& ax, B<A>& hi, B<A>& lo) noexcept {
  static constexpr std::uint32_t h1[] = {0x3d67e767, 0xbd0266e3, 0x3c737ade, 0xbbc8dfdb, 0x3b170960, 0xba5319a0,
                                         0x398a83d0, 0xb8a78514, 0x37c43f9c, 0xb70f6ead, 0x36228500};
  static constexpr std::uint32_t h2[] = {0xbc8efcc3, 0xbb7c1324, 0x3a8b4737, 0xb87d567f,
                                         0xb81c05b1, 0x375d9b7f, 0xb56f16ff, 0xb51b59bc};
  const B<A> s1 = madd<A>(ax, bits<A>(0x3f5e9bd3), bits<A>(0xbfcde9bd));  // x in [0.7, 3] -> [-1, 1]
  const B<A> s2 = madd<A>(B<A>(1.0f) / ax, bits<A>(0x40ec4ec5), bits<A>(0xbfbb13b1));  // 1/x in [1/16, 1/3]
  B<A> hi1, lo1, hi2, lo2;
  poly2<A>(s1, 0x3ea89de1, 0xb23eefdd, h1, hi1, lo1);
  poly2<A>(s2, 0x3ec50d27, 0xb1e501c4, h2, hi2, lo2);
  const auto first = ax < B<A>(3.0f);
  hi = xsimd::select(first, hi1, hi2);
  lo = xsimd::select(first, lo1, lo2);
}

/// Q(w) = erf(sqrt(w/2)) / (2 sqrt(w)) as hi + lo for w = x^2 < 0.49, so that
/// gelu(x) = x/2 + x^2 Q(x^2) for |x| < 0.7 (fitted as above; approximation error ~1e-3 * 2^-24).
template <class A>
inline void gelu_q(const B<A>& w, B<A>& hi, B<A>& lo) noexcept {
  static constexpr std::uint32_t q[] = {0xbd882c1c, 0x3c236850, 0xba9babe9, 0x38f4c9e2, 0xb7434ef0, 0x360a026e};
  poly2<A>(w, 0x3ecc422a, 0xb242bcbf, q, hi, lo);
}

/// Runs a batch functor on one float through default_arch (same bits as the vector kernel).
template <class F>
inline float on_scalar(const F& f, float x) noexcept {
  return f(fbatch<default_arch>(x)).get(0);
}

}  // namespace act::detail

namespace act {

/// @brief max(x, 0); NaN propagates.
struct relu {
  static constexpr const char* name = "relu";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    return xsimd::select(x < fbatch<A>(0.0f), fbatch<A>(0.0f), x);
  }
  float operator()(float x) const noexcept { return x < 0.0f ? 0.0f : x; }
};

/// @brief 1 / (1 + exp(-x)).
struct sigmoid {
  static constexpr const char* name = "sigmoid";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    return detail::times_sigmoid<A>(fbatch<A>(1.0f), x, fbatch<A>(0.0f));
  }
  float operator()(float x) const noexcept { return detail::on_scalar(*this, x); }
};

/// @brief x * sigmoid(x) (SiLU, a.k.a. swish), as in LLaMA-style gated feed-forward blocks.
struct silu {
  static constexpr const char* name = "silu";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    const fbatch<A> y = detail::times_sigmoid<A>(x, x, fbatch<A>(0.0f));
    return xsimd::select(x == fbatch<A>(-std::numeric_limits<float>::infinity()), fbatch<A>(-0.0f), y);
  }
  float operator()(float x) const noexcept { return detail::on_scalar(*this, x); }
};

/// @brief Hyperbolic tangent (xsimd's, ~1.5 ulp; saturates to +-1).
struct tanh {
  static constexpr const char* name = "tanh";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    return xsimd::tanh(x);
  }
  float operator()(float x) const noexcept { return detail::on_scalar(*this, x); }
};

/// @brief The identity: a gated MLP with it is the bilinear GLU variant.
struct identity {
  static constexpr const char* name = "identity";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    return x;
  }
  float operator()(float x) const noexcept { return x; }
};

/// @brief Exact GELU, x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (PyTorch's default, BERT).
struct gelu {
  static constexpr const char* name = "gelu";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    using B = fbatch<A>;
    const B xc = xsimd::clip(x, B(-16.0f), B(16.0f));  // |x| >= 16: gelu is -0 or x in float
    const B ax = xsimd::abs(xc);
    // |x| >= 0.7: relu(x) - exp(-x^2/2) H(|x|), exp's argument from x^2 = sh + sl exactly
    B sh, sl, k, m;
    detail::two_prod<A>(xc, xc, sh, sl);
    detail::exp_parts<A>(sh * B(-0.5f), k, m);  // exp(-sh/2) = 2^k (1 + m)
    const B c = sl * B(-0.5f);
    const B mt = detail::madd<A>(m, c, m + c);  // exp(-(sh + sl)/2) = 2^k (1 + m)(1 + c) = 2^k (1 + mt)
    B hh, hl, wh, wl;
    detail::gelu_h<A>(ax, hh, hl);  // H(|x|) = hh + hl
    detail::two_sum<A>(B(1.0f), mt, wh, wl);  // 1 + mt = wh + wl
    // exp(-x^2/2) H(|x|) = 2^k (hh + hl)(wh + wl), rounded once
    const B tail = detail::scale2<A>(detail::madd_once<A>(hh, wh, detail::madd<A>(hh, wl, hl * wh)), k);
    // -tail by flipping the sign bit: xsimd 8.1's AVX-512 negation is 0 - v, which loses -0
    const B large = xsimd::select(x < B(0.0f), tail ^ B(-0.0f), x - tail);
    // |x| < 0.7: x/2 + x^2 Q(x^2) (cancellation at most ~1.1x), summed exactly, rounded once
    B qh, ql, ph, pl, sum_h, sum_l;
    detail::gelu_q<A>(sh, qh, ql);
    detail::two_prod<A>(sh, qh, ph, pl);
    detail::two_sum<A>(B(0.5f) * xc, ph, sum_h, sum_l);
    const B small = sum_h + (sum_l + (pl + detail::madd<A>(sh, ql, sl * qh)));
    return xsimd::select(ax < B(0.7f), small, large);
  }
  float operator()(float x) const noexcept { return detail::on_scalar(*this, x); }
};

/// @brief GELU with the tanh approximation (GPT-2's "gelu_new"):
/// 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
struct gelu_tanh {
  static constexpr const char* name = "gelu_tanh";
  template <class A>
  fbatch<A> operator()(const fbatch<A>& x) const noexcept {
    using B = fbatch<A>;
    const B xc = xsimd::clip(x, B(-16.0f), B(16.0f));  // |x| >= 16: the result is 0 or x in float
    // t = 2u = x (a + c x^2), a = 2 sqrt(2/pi), c = 0.044715 a, in double-float: exp amplifies an
    // absolute error in t into the same relative error, and |t| reaches 88
    const B a_hi(1.59576912160573071f), a_lo(static_cast<float>(1.5957691216057307117597842 - 1.59576912160573071f));
    const B c_hi(0.0713548162726008f), c_lo(static_cast<float>(0.071354816272600807 - 0.0713548162726008f));
    B sh, sl, mh, ml, th, tl, rh, rl;
    detail::two_prod<A>(xc, xc, sh, sl);  // x^2
    detail::two_prod<A>(c_hi, sh, mh, ml);  // c x^2
    ml += c_hi * sl + c_lo * sh;
    detail::two_sum<A>(a_hi, mh, th, tl);  // a + c x^2
    tl += a_lo + ml;
    detail::two_prod<A>(xc, th, rh, rl);  // x (a + c x^2)
    rl += xc * tl;
    const B y = detail::times_sigmoid<A>(x, rh, rl);
    return xsimd::select(x == B(-std::numeric_limits<float>::infinity()), B(-0.0f), y);
  }
  float operator()(float x) const noexcept { return detail::on_scalar(*this, x); }
};

}  // namespace act

/// @brief An activation policy: default-constructible, named, callable on float and on batches.
template <class F>
concept activation = std::default_initializable<F> && requires(const F f, float x, fbatch<default_arch> b) {
  { F::name } -> std::convertible_to<const char*>;
  { f(x) } -> std::same_as<float>;
  { f(b) } -> std::same_as<fbatch<default_arch>>;
};

/// @brief out[i] = Act{}(x[i]) for i < n (out == x allowed).
/// @tparam Act an activation policy, e.g. act::gelu
template <activation Act, class A = default_arch>
inline void activate(const float* x, float* out, std::size_t n) noexcept {
  const Act f{};
  map<A>(x, out, n, [f](const fbatch<A>& v) { return f.template operator()<A>(v); });
}

}  // namespace tformer::simd
