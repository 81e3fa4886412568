// What ggml's K-quants (Q2_K .. Q6_K) share, as ggml-quants.c writes it: super-blocks of QK_K =
// 256 weights, the rounding helper nearest_int, the scale searches make_qx_quants and
// make_qkx2_quants, and the 12-byte field of 6-bit scales and mins of Q4_K and Q5_K
// (get_scale_min_k4). Internal: include a format header (q4_k.hpp, q5_k.hpp, q6_k.hpp).
//
// "Bit-exact with ggml" means the C source evaluated as ISO C writes it: every product rounded to
// float before it is added to or subtracted from anything. ggml's x86 builds without FMA in the
// baseline do that (tools/make_kquant_fixtures.py checks the library it calls for fma
// instructions); GCC's default -ffp-contract=fast on an FMA target would fuse a * b + c into one
// rounding, across statements, and change the searches' choices on some inputs. Here every such
// product goes through mul() (ggml_rounding.hpp, shared with iq4_xs, q2_k and q3_k), whose result
// the compiler cannot see into, so no contraction setting can fuse it. Divisions, comparisons and
// products that only feed other products are left as they are (nothing can contract them).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "ggml_rounding.hpp"  // rounded, mul, nearest_int
#include "q8_activations.hpp"  // half_at, put_half (the blocks' binary16 fields)

namespace tformer::quant::detail::kquant {

inline constexpr std::int64_t super_block = 256;  // QK_K: weights per K-quant block
inline constexpr float group_max_eps = 1e-15f;    // GROUP_MAX_EPS: smaller magnitudes count as zero

using ggml_rounding::mul;          // a * b rounded to float, never fused
using ggml_rounding::nearest_int;  // ggml's nearest_int, halves to even
using ggml_rounding::rounded;      // v rounded to float where it stands

/// @brief ggml's make_qx_quants (symmetric levels l in [-nmax, nmax - 1], stored as l + nmax in L):
/// max = the x_i of largest magnitude (the first on ties), 0 with L = 0 when below
/// group_max_eps; iscale = -nmax / max; rmse_type 0 returns 1 / iscale; otherwise the weighted
/// least-squares scale sum w x l / sum w l^2 (w = qw[i], or by rmse_type 1: x^2, 2: 1, 3: |x|, 4:
/// sqrt|x|), improved over iscale = -(nmax + 0.1 is) / max, is = -9 .. 9 (a negative rmse_type
/// returns early with the mean of the two first scales).
inline float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L, int rmse_type, const float* qw) noexcept {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < group_max_eps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  const auto clamp = [nmax](int l) { return l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l; };
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + clamp(nearest_int(mul(iscale, x[i]))));
    return 1 / iscale;
  }
  bool return_early = false;
  if (rmse_type < 0) {
    rmse_type = -rmse_type;
    return_early = true;
  }
  const auto weight = [&](int i) {
    return qw ? qw[i] : rmse_type == 1 ? x[i] * x[i] : rmse_type == 2 ? 1.0f : rmse_type == 3 ? std::fabs(x[i]) : std::sqrt(std::fabs(x[i]));
  };
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp(nearest_int(mul(iscale, x[i])));
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = weight(i), fl = static_cast<float>(l);
    sumlx += mul(w * x[i], fl);  // ggml: w*x[i]*l
    suml2 += mul(w * fl, fl);    // ggml: w*l*l
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + mul(0.1f, static_cast<float>(is))) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weight(i), fl = static_cast<float>(clamp(nearest_int(mul(iscale, x[i]))));
      sumlx += mul(w * x[i], fl);
      suml2 += mul(w * fl, fl);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + clamp(nearest_int(mul(iscale, x[i]))));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/// @brief ggml's make_qkx2_quants (levels L in [0, nmax] with an offset): min = min(0, min x),
/// max = max x; L = round((x - min) nmax / (max - min)) first, then for is = 0 .. nstep the
/// weighted least-squares scale and min of the levels at iscale = (rmin + rdelta is + nmax) /
/// (max - min), kept when its weighted error (squared, or absolute with use_mad) is smaller.
/// Returns the scale and stores -min in the_min; a constant row (max == min) gives 0 and L = 0.
inline float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                              std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) noexcept {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = mul(sum_w, x[0]);
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += mul(w, x[i]);
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  const auto clamp = [nmax](int l) { return l < 0 ? 0 : l > nmax ? nmax : l; };
  const auto error_of = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<std::uint8_t>(clamp(nearest_int(mul(iscale, x[i] - min))));
    const float diff = mul(scale, static_cast<float>(L[i])) + min - x[i];
    best_error += mul(weights[i], error_of(diff));
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + mul(rdelta, static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp(nearest_int(mul(iscale, x[i] - min)));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i], fl = static_cast<float>(l);
      const float wl = mul(w, fl);
      sum_l += wl;
      sum_l2 += mul(wl, fl);
      sum_xl += mul(wl, x[i]);
    }
    const float D = mul(sum_w, sum_l2) - mul(sum_l, sum_l);
    if (D > 0) {
      float this_scale = (mul(sum_w, sum_xl) - mul(sum_x, sum_l)) / D;
      float this_min = (mul(sum_l2, sum_x) - mul(sum_l, sum_xl)) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = mul(this_scale, static_cast<float>(Laux[i])) + this_min - x[i];
        cur_error += mul(weights[i], error_of(diff));
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// @brief ggml's get_scale_min_k4: the 6-bit scale sc and min m of sub-block j (< 8) of Q4_K and
/// Q5_K from their 12 bytes q: j < 4: sc = q[j] & 63, m = q[j + 4] & 63; j >= 4: the low 4 bits in
/// q[j + 4] (sc low nibble, m high nibble), the high 2 bits in the top bits of q[j - 4] (sc) and
/// q[j] (m).
inline void get_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* sc, std::uint8_t* m) noexcept {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

/// @brief The header of a Q4_K or Q5_K super-block of 256 floats x, as quantize_row_q4_K_ref and
/// quantize_row_q5_K_ref make it (they differ only in nmax, rmin and nstep): for each sub-block j of
/// 32, weights av_x + |x| (av_x = sqrt(sum x^2 / 32)) and make_qkx2_quants(32, nmax, ..., rmin,
/// 0.1, nstep) give a scale and a min; d = max scale / 63, dmin = max min / 63 (binary16 at blk and
/// blk + 2), each scale and min as 6 bits in the 12 bytes at blk + 4 (get_scale_min_k4's layout);
/// then L [256] = clamp(nearest_int((x + dmin m_j) / (d sc_j)), 0, nmax), except in sub-blocks
/// with d sc_j = 0, which keep make_qkx2_quants' levels.
inline void quantize_scales_mins(const float* x, int nmax, float rmin, int nstep, std::byte* blk, std::uint8_t* L) noexcept {
  float mins[8], scales[8], weights[32];
  std::uint8_t Laux[32];
  float max_scale = 0, max_min = 0;  // the scales are positive, as the min is subtracted
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += mul(x[32 * j + l], x[32 * j + l]);
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  auto* q = reinterpret_cast<std::uint8_t*>(blk + 4);  // scales[12]
  for (int j = 0; j < 8; ++j) {
    auto ls = static_cast<std::uint8_t>(nearest_int(mul(inv_scale, scales[j])));  // ggml's uint8_t: mod 256
    auto lm = static_cast<std::uint8_t>(nearest_int(mul(inv_min, mins[j])));
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      q[j] = ls;
      q[j + 4] = lm;
    } else {
      q[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      q[j - 4] |= static_cast<std::uint8_t>((ls >> 4) << 6);
      q[j] |= static_cast<std::uint8_t>((lm >> 4) << 6);
    }
  }
  q8_activations::put_half(blk, max_scale / 63.f);
  q8_activations::put_half(blk + 2, max_min / 63.f);
  const float d16 = q8_activations::half_at(blk), dmin16 = q8_activations::half_at(blk + 2);
  for (int j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    get_scale_min_k4(j, q, &sc, &m);
    const float d = d16 * static_cast<float>(sc);  // exact: 11 by 6 significant bits
    if (d == 0.0f) continue;
    const float dm = dmin16 * static_cast<float>(m);  // exact too, so x + dm is one rounding either way
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(l < 0 ? 0 : l > nmax ? nmax : l);
    }
  }
}

}  // namespace tformer::quant::detail::kquant
