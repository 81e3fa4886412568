// Whisper's log-mel front end, as transformers' WhisperFeatureExtractor computes it (and OpenAI's
// whisper.audio.log_mel_spectrogram): 16 kHz samples, zero-padded or cut to n_samples (30 s),
// centred frames of n_fft = 400 samples every hop = 160 (reflect padding of n_fft / 2 at both
// ends), a periodic Hann window, the power spectrum |rfft|^2 (n_fft / 2 + 1 bins), n_mels = 80
// Slaney-normalised triangular filters on the Slaney mel scale from 0 to 8 kHz, log10 of
// max(mel, 1e-10), the last frame dropped, values clamped below at (their max - 8), then
// (x + 4) / 4.
//
// Part of the core: it needs Eigen only (its unsupported FFT module, KISS FFT, which takes any
// length), not libsndfile; reading and resampling files is audio/wav.hpp (tformer::audio).
// Computed in double and rounded once to float; frames run one after another (the result does
// not depend on the thread count).
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <unsupported/Eigen/FFT>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tformer::audio {

/// @brief Settings of the front end; the defaults are Whisper's (all models but large-v3, which
/// uses n_mels = 128).
struct log_mel_options {
  std::int64_t sample_rate = 16000;
  std::int64_t n_fft = 400;
  std::int64_t hop = 160;
  std::int64_t n_mels = 80;
  std::int64_t n_samples = 480000;  ///< pad with zeros or cut to this many samples (30 s); 0: keep the input's length
  double f_min = 0.0;
  double f_max = 8000.0;  ///< 0: sample_rate / 2
  double dynamic_range = 8.0;  ///< values below max - dynamic_range are raised to it (log10 units)
};

namespace detail {
inline void check_options(const log_mel_options& o) {
  if (o.sample_rate <= 0 || o.n_fft < 2 || o.hop <= 0 || o.n_mels <= 0 || o.n_samples < 0 || o.f_min < 0 ||
      o.f_max < 0 || o.dynamic_range <= 0)
    throw value_error("tformer::audio::log_mel: options need sample_rate > 0, n_fft >= 2, hop > 0, n_mels > 0, "
                      "n_samples >= 0, f_min, f_max >= 0, dynamic_range > 0; got sample_rate " +
                      std::to_string(o.sample_rate) + ", n_fft " + std::to_string(o.n_fft) + ", hop " + std::to_string(o.hop) +
                      ", n_mels " + std::to_string(o.n_mels) + ", n_samples " + std::to_string(o.n_samples));
  const double top = o.f_max > 0 ? o.f_max : static_cast<double>(o.sample_rate) / 2;
  if (!(o.f_min < top))
    throw value_error("tformer::audio::log_mel: f_min " + std::to_string(o.f_min) + " must be below f_max " +
                      std::to_string(top));
}
// The Slaney mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above.
inline double hertz_to_mel(double f) {
  constexpr double min_log_hertz = 1000.0, min_log_mel = 15.0;
  const double logstep = 27.0 / std::log(6.4);
  return f >= min_log_hertz ? min_log_mel + std::log(f / min_log_hertz) * logstep : 3.0 * f / 200.0;
}
inline double mel_to_hertz(double m) {
  constexpr double min_log_hertz = 1000.0, min_log_mel = 15.0;
  const double logstep = std::log(6.4) / 27.0;
  return m >= min_log_mel ? min_log_hertz * std::exp(logstep * (m - min_log_mel)) : 200.0 * m / 3.0;
}
}  // namespace detail

/// @brief The Slaney-normalised mel filters [n_mels, n_fft / 2 + 1] (transformers'
/// mel_filter_bank(norm="slaney", mel_scale="slaney"), librosa's filters.mel), in double.
inline std::vector<double> mel_filters(const log_mel_options& o = {}) {
  detail::check_options(o);
  const std::int64_t bins = o.n_fft / 2 + 1, M = o.n_mels;
  const double top = o.f_max > 0 ? o.f_max : static_cast<double>(o.sample_rate) / 2;
  const double mel_lo = detail::hertz_to_mel(o.f_min), mel_hi = detail::hertz_to_mel(top);
  std::vector<double> f(static_cast<std::size_t>(M + 2));  // [n_mels + 2] filter edges in Hz
  for (std::int64_t i = 0; i < M + 2; ++i)
    f[static_cast<std::size_t>(i)] =
        detail::mel_to_hertz(mel_lo + (mel_hi - mel_lo) * static_cast<double>(i) / static_cast<double>(M + 1));
  std::vector<double> w(static_cast<std::size_t>(M * bins), 0.0);  // [n_mels, bins]
  const double nyquist = static_cast<double>(o.sample_rate) / 2;
  for (std::int64_t k = 0; k < bins; ++k) {
    const double fk = bins > 1 ? nyquist * static_cast<double>(k) / static_cast<double>(bins - 1) : 0.0;
    for (std::int64_t m = 0; m < M; ++m) {
      const auto i = static_cast<std::size_t>(m);
      const double down = (fk - f[i]) / (f[i + 1] - f[i]), up = (f[i + 2] - fk) / (f[i + 2] - f[i + 1]);
      const double enorm = 2.0 / (f[i + 2] - f[i]);
      w[static_cast<std::size_t>(m * bins + k)] = std::max(0.0, std::min(down, up)) * enorm;
    }
  }
  return w;
}

/// @brief Whisper's log-mel features [n_mels, frames] of mono samples at o.sample_rate (see the
/// file comment): frames = n_samples / hop (3000 for 30 s), or length / hop when n_samples is 0.
/// Throws value_error for bad options or an input too short for the reflect padding.
inline tensor<float> log_mel_spectrogram(std::span<const float> samples, const log_mel_options& o = {}) {
  detail::check_options(o);
  const std::int64_t N = o.n_samples > 0 ? o.n_samples : static_cast<std::int64_t>(samples.size());
  const std::int64_t half = o.n_fft / 2, bins = o.n_fft / 2 + 1, M = o.n_mels;
  if (N <= half)
    throw value_error("tformer::audio::log_mel: " + std::to_string(N) + " samples are too few for frames of " +
                      std::to_string(o.n_fft) + " (reflect padding needs more than " + std::to_string(half) + ")");
  std::vector<double> x(static_cast<std::size_t>(N), 0.0);  // [N] padded or cut input
  const std::int64_t n_in = std::min<std::int64_t>(N, static_cast<std::int64_t>(samples.size()));
  for (std::int64_t i = 0; i < n_in; ++i) x[static_cast<std::size_t>(i)] = samples[static_cast<std::size_t>(i)];
  // x at index i of the reflect-padded signal (numpy's pad(mode="reflect"): no edge repeat)
  auto at = [&](std::int64_t i) {
    i -= half;
    if (i < 0) i = -i;
    if (i >= N) i = 2 * (N - 1) - i;
    return x[static_cast<std::size_t>(i)];
  };
  const std::int64_t frames = 1 + N / o.hop, kept = frames - 1;  // the last frame is dropped
  std::vector<double> window(static_cast<std::size_t>(o.n_fft));  // [n_fft] periodic Hann
  const double pi = 3.14159265358979323846;
  for (std::int64_t i = 0; i < o.n_fft; ++i)
    window[static_cast<std::size_t>(i)] = 0.5 - 0.5 * std::cos(2.0 * pi * static_cast<double>(i) / static_cast<double>(o.n_fft));
  const std::vector<double> filters = mel_filters(o);  // [n_mels, bins]

  Eigen::FFT<double> fft;
  fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
  std::vector<double> frame(static_cast<std::size_t>(o.n_fft));  // [n_fft]
  std::vector<std::complex<double>> spectrum;                     // [bins]
  std::vector<double> power(static_cast<std::size_t>(bins));      // [bins]
  std::vector<double> logmel(static_cast<std::size_t>(M * kept)); // [n_mels, kept]
  double top = -std::numeric_limits<double>::infinity();
  for (std::int64_t t = 0; t < kept; ++t) {
    for (std::int64_t i = 0; i < o.n_fft; ++i)
      frame[static_cast<std::size_t>(i)] = at(t * o.hop + i) * window[static_cast<std::size_t>(i)];
    fft.fwd(spectrum, frame);
    for (std::int64_t k = 0; k < bins; ++k) power[static_cast<std::size_t>(k)] = std::norm(spectrum[static_cast<std::size_t>(k)]);
    for (std::int64_t m = 0; m < M; ++m) {
      const double* w = filters.data() + m * bins;
      double s = 0;
      for (std::int64_t k = 0; k < bins; ++k) s += w[k] * power[static_cast<std::size_t>(k)];
      const double v = std::log10(std::max(s, 1e-10));
      logmel[static_cast<std::size_t>(m * kept + t)] = v;
      top = std::max(top, v);
    }
  }
  tensor<float> out(shape{M, kept});  // [n_mels, frames]
  const double floor = top - o.dynamic_range;
  for (std::int64_t i = 0; i < M * kept; ++i)
    out.data()[i] = static_cast<float>((std::max(logmel[static_cast<std::size_t>(i)], floor) + 4.0) / 4.0);
  return out;
}

}  // namespace tformer::audio
