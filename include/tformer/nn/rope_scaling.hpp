// Scaled rotary frequencies, for nn::rotary::inv_freq (and attention_factor): linear position
// interpolation, Llama 3's per-wavelength scaling and YaRN. Each returns the dim / 2 inverse
// frequencies of a rotary dim `dim`, computed in float the way transformers' rope initializers are
// (modeling_rope_utils: _compute_linear_scaling_rope_parameters, _compute_llama3_parameters,
// _compute_yarn_parameters), so that angles agree with it.
//
//   nn::rotary r{.base = 500000.0f};
//   r.inv_freq = nn::rope_llama3(128, r.base, {.factor = 8, .original_max_positions = 8192});
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace tformer::nn {

namespace detail {
inline void check_rope_dim(const char* who, std::int64_t dim) {
  if (dim < 2 || dim % 2 != 0)
    throw value_error(std::string("tformer::nn::") + who + ": the rotary dim must be even and >= 2, got " + std::to_string(dim));
}
}  // namespace detail

/// @brief Unscaled frequencies base^(-2i/dim), i < dim / 2.
inline std::vector<float> rope_inv_freq(std::int64_t dim, float base) {
  detail::check_rope_dim("rope_inv_freq", dim);
  std::vector<float> f(static_cast<std::size_t>(dim / 2));
  for (std::size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
  return f;
}

/// @brief Linear position interpolation (rope_type "linear"): every frequency divided by factor.
inline std::vector<float> rope_linear(std::int64_t dim, float base, float factor) {
  if (!(factor > 0)) throw value_error("tformer::nn::rope_linear: factor must be > 0, got " + std::to_string(factor));
  auto f = rope_inv_freq(dim, base);
  for (auto& x : f) x /= factor;
  return f;
}

/// @brief Llama 3's scaling (rope_type "llama3").
struct llama3_scaling {
  float factor = 8.0f;                       ///< divisor of the low frequencies
  float low_freq_factor = 1.0f;              ///< wavelengths above original / low_freq_factor are divided
  float high_freq_factor = 4.0f;             ///< wavelengths below original / high_freq_factor are kept
  std::int64_t original_max_positions = 8192;  ///< the pretraining context
};

/// @brief Llama 3's frequencies: long wavelengths divided by factor, short ones kept, and a smooth
/// blend between.
inline std::vector<float> rope_llama3(std::int64_t dim, float base, const llama3_scaling& s) {
  if (!(s.factor > 0) || !(s.high_freq_factor > s.low_freq_factor) || !(s.low_freq_factor > 0) || s.original_max_positions < 1)
    throw value_error("tformer::nn::rope_llama3: expected factor > 0, 0 < low_freq_factor < high_freq_factor and "
                      "original_max_positions >= 1");
  auto f = rope_inv_freq(dim, base);
  const float old_len = static_cast<float>(s.original_max_positions);
  const float low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
  for (auto& x : f) {
    const float wavelen = two_pi / x;
    if (wavelen > low_wavelen) {
      x = x / s.factor;
    } else if (!(wavelen < high_wavelen)) {  // medium: blend
      const float smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      x = (1.0f - smooth) * x / s.factor + smooth * x;
    }
  }
  return f;
}

/// @brief YaRN (rope_type "yarn").
struct yarn_scaling {
  double factor = 1.0;                     ///< context extension factor
  std::int64_t original_max_positions = 0;  ///< the pretraining context
  double beta_fast = 32.0, beta_slow = 1.0;  ///< rotations bounding the blended band
  bool truncate = true;                    ///< round the band's ends to whole dims
  double attention_factor = 0.0;           ///< cos/sin scale; 0: derived from factor (and mscale)
  double mscale = 0.0, mscale_all_dim = 0.0;  ///< DeepSeek's variant of the derived scale

  /// @brief The scale on cos and sin: attention_factor, else 0.1 ln(factor) + 1 (or DeepSeek's ratio).
  double attention() const {
    if (attention_factor > 0) return attention_factor;
    auto m = [&](double scale) { return factor <= 1 ? 1.0 : 0.1 * scale * std::log(factor) + 1.0; };
    if (mscale != 0 && mscale_all_dim != 0) return m(mscale) / m(mscale_all_dim);
    return m(1.0);
  }
};

/// @brief YaRN's frequencies: interpolated (divided by factor) below the band of dims whose
/// wavelengths fit the original context beta_slow..beta_fast times, kept above it, ramped between.
/// The matching attention factor is s.attention().
inline std::vector<float> rope_yarn(std::int64_t dim, float base, const yarn_scaling& s) {
  detail::check_rope_dim("rope_yarn", dim);
  if (!(s.factor > 0) || s.original_max_positions < 1 || !(s.beta_fast > 0) || !(s.beta_slow > 0))
    throw value_error("tformer::nn::rope_yarn: expected factor > 0, original_max_positions >= 1 and betas > 0");
  const double d = static_cast<double>(dim);
  auto correction_dim = [&](double rotations) {
    return d * std::log(static_cast<double>(s.original_max_positions) / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(static_cast<double>(base)));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, d - 1);
  if (low == high) high += 0.001;
  const float lo = static_cast<float>(low), span = static_cast<float>(high - low);
  std::vector<float> f(static_cast<std::size_t>(dim / 2));
  for (std::size_t i = 0; i < f.size(); ++i) {
    const float pos_freq = std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
    const float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / (static_cast<float>(s.factor) * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - lo) / span, 0.0f, 1.0f);
    const float keep = 1.0f - ramp;  // the share of the unscaled frequency
    f[i] = interpolation * (1.0f - keep) + extrapolation * keep;
  }
  return f;
}

}  // namespace tformer::nn
