// The per-weight step of error-correcting quantizers (GPTQ, quant/gptq.hpp): once quantize_row has
// chosen a block's scales, set one weight of the block to the code nearest a new value under those
// scales. A format that can do this declares
//
//   static float requantize_weight(std::byte* row, std::int64_t i, float x) noexcept;
//
// which sets weight i of the packed row (quantize_row wrote it) to the code whose value is nearest
// x, clamped to the format's range, leaves the block's scales and every other weight as they are,
// and returns the weight's new value exactly as dequantize_row reads it. The helpers below are the
// pieces the ggml formats and int4_group share.
// Internal: include a format header (q4_0.hpp, int4_group.hpp, ...).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "q8_activations.hpp"  // binary16 fields (half_at)

namespace tformer::quant::detail::requantize {

/// @brief The level l in [lo, hi] whose value l * d + m is nearest x (ties to even), 0 clamped into
/// [lo, hi] when d is 0 or not finite (a block whose weights are all equal) or x is NaN.
inline int nearest_level(float x, float d, float m, int lo, int hi) noexcept {
  const int none = std::clamp(0, lo, hi);
  if (!(d != 0.0f) || !std::isfinite(d)) return none;
  const double t = (static_cast<double>(x) - static_cast<double>(m)) / static_cast<double>(d);
  if (std::isnan(t)) return none;
  return static_cast<int>(std::nearbyint(std::clamp(t, static_cast<double>(lo), static_cast<double>(hi))));
}

/// @brief Sets the 4-bit code of weight j of a block whose nibbles are ggml's layout over G weights:
/// q_j = qs[j] & 15, q_{j + G/2} = qs[j] >> 4 (j < G / 2).
template <std::int64_t G>
inline void set_nibble(std::uint8_t* qs, std::int64_t j, int q) noexcept {
  const auto v = static_cast<std::uint8_t>(q & 15);
  if (j < G / 2)
    qs[j] = static_cast<std::uint8_t>((qs[j] & 0xF0) | v);
  else
    qs[j - G / 2] = static_cast<std::uint8_t>((qs[j - G / 2] & 0x0F) | v << 4);
}

/// @brief Sets the 5-bit code of weight j (< 32) of ggml's Q5 layout at p: the fifth bits (bit j of
/// the little-endian uint32 at p), then 16 bytes of low nibbles (set_nibble<32>).
inline void set_code5(std::byte* p, std::int64_t j, int q) noexcept {
  auto* b = reinterpret_cast<std::uint8_t*>(p);
  const unsigned bit = static_cast<unsigned>(j % 8);
  b[j / 8] = static_cast<std::uint8_t>((b[j / 8] & ~(1u << bit)) | ((static_cast<unsigned>(q) >> 4 & 1u) << bit));
  set_nibble<32>(b + 4, j, q);
}

/// @brief Weight j of a block laid out [binary16 d][binary16 m][G / 2 bytes of nibbles] (q4_1,
/// int4_group<G>) to the level q in [0, 15] nearest x; returns q * d + m (q * d is exact in float,
/// so this is dequantize_row's value, fused or not).
template <std::int64_t G>
inline float offset_nibble(std::byte* blk, std::int64_t j, float x) noexcept {
  const float d = q8_activations::half_at(blk), m = q8_activations::half_at(blk + 2);
  const int q = nearest_level(x, d, m, 0, 15);
  set_nibble<G>(reinterpret_cast<std::uint8_t*>(blk + 4), j, q);
  return static_cast<float>(q) * d + m;
}

}  // namespace tformer::quant::detail::requantize
