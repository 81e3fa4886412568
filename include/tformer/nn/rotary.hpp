// Rotary position embedding (RoFormer), applied to query and key heads inside attention:
// no_rope, rotary (rotate-half as in GPT-NeoX / Hugging Face Llama, or interleaved pairs as in
// GPT-J / RoFormer; partial rotary dimension; base; scaled frequencies from nn/rope_scaling.hpp).
// apply(x [B, S, H, D], positions [B] or {}).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "positions.hpp"

namespace tformer::nn {

/// @brief A rotary policy: rotates query/key heads by their positions.
template <class R>
concept rotary_policy = requires(const R& r, tensor_view<float> x, tensor_view<const std::int32_t> positions) {
  r.apply(x, positions);
};

/// @brief No rotary embedding.
struct no_rope {
  void apply(tensor_view<float>, tensor_view<const std::int32_t>) const {}
};

/// @brief Rotary position embedding (RoFormer). Pairs (i, i + dim/2) when interleaved is false
/// (rotate-half: GPT-NeoX, Hugging Face Llama), pairs (2i, 2i + 1) when true (GPT-J, RoFormer).
/// Only the first `dim` features of each head rotate (partial rotary); frequency i is
/// base^(-2i/dim), computed in float like Hugging Face so positions match to the last bit of angle,
/// unless inv_freq gives the frequencies (scaled rotary: linear, Llama 3, YaRN; nn/rope_scaling.hpp).
struct rotary {
  std::int64_t dim = 0;  ///< rotated features per head (even); 0: the whole head
  float base = 10000.0f;
  bool interleaved = false;
  std::vector<float> inv_freq;    ///< [dim / 2] frequencies in place of base^(-2i/dim); empty: those
  float attention_factor = 1.0f;  ///< cos and sin are multiplied by this (YaRN's attention scaling)

  void apply(tensor_view<float> x, tensor_view<const std::int32_t> positions) const {
    if (x.rank() != 4) throw shape_error("tformer::nn::rotary: expected [B, S, H, D], got " + x.shape().to_string());
    const std::int64_t B = x.dim(0), S = x.dim(1), H = x.dim(2), D = x.dim(3);
    const std::int64_t rd = dim == 0 ? D : dim;
    if (rd % 2 != 0 || rd > D)
      throw value_error("tformer::nn::rotary: rotary dim " + std::to_string(rd) + " must be even and <= head dim " +
                        std::to_string(D));
    detail::check_start("rotary", positions, B);
    const std::int64_t half = rd / 2;
    if (!inv_freq.empty() && static_cast<std::int64_t>(inv_freq.size()) != half)
      throw value_error("tformer::nn::rotary: " + std::to_string(inv_freq.size()) + " inverse frequencies for a rotary dim of " +
                        std::to_string(rd) + " (expected " + std::to_string(half) + ")");
    parallel_for(B * S, [&](std::int64_t t) {
      const std::int64_t b = t / S, s = t % S;
      const float pos = static_cast<float>(detail::start_of(positions, b) + s);
      // the angles of this position, in chunks of up to 256 pairs (no heap memory)
      constexpr std::int64_t chunk = 256;
      float c[chunk], sn[chunk];
      for (std::int64_t i0 = 0; i0 < half; i0 += chunk) {
        const std::int64_t n = std::min(chunk, half - i0);
        for (std::int64_t i = 0; i < n; ++i) {
          // frequency base^(-2i/rd) and the angle as float products, as in Hugging Face
          const float f = inv_freq.empty() ? 1.0f / std::pow(base, static_cast<float>(2 * (i0 + i)) / static_cast<float>(rd))
                                           : inv_freq[static_cast<std::size_t>(i0 + i)];
          const float angle = pos * f;
          c[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * attention_factor;
          sn[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * attention_factor;
        }
        for (std::int64_t h = 0; h < H; ++h) {
          float* v = x.data() + b * x.stride(0) + s * x.stride(1) + h * x.stride(2);
          for (std::int64_t i = 0; i < n; ++i) {
            const std::int64_t j = i0 + i;
            const std::int64_t a0 = interleaved ? 2 * j : j, a1 = interleaved ? 2 * j + 1 : j + half;
            const float a = v[a0], bb = v[a1];
            v[a0] = a * c[i] - bb * sn[i];
            v[a1] = bb * c[i] + a * sn[i];
          }
        }
      }
    }, H * D);
  }
};

}  // namespace tformer::nn
