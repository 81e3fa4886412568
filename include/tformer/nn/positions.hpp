// Absolute positions, added to the token embeddings by the model: no_positions,
// learned_positions (with an offset: BART), sinusoidal_positions (interleaved sin/cos) and
// split_sinusoidal_positions (sin half, cos half: Marian, tensor2tensor). Each: add(x [B, S, d], positions [B] or {}) adds the
// vector of position positions[b] + i to x[b, i]; visit(visitor, prefix).
// (Rotary positions: nn/rotary.hpp; additive biases: nn/alibi.hpp, nn/t5_relative_bias.hpp.)
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

namespace tformer::nn {

namespace detail {
inline std::int64_t start_of(const tensor_view<const std::int32_t>& start, std::int64_t b) {
  return start.data() ? start(b) : 0;
}
inline void check_start(const char* who, const tensor_view<const std::int32_t>& start, std::int64_t batch) {
  if (start.data() && (start.rank() != 1 || start.dim(0) != batch))
    throw shape_error(std::string("tformer::nn::") + who + ": start positions must be [" + std::to_string(batch) +
                      "], got " + start.shape().to_string());
}
}  // namespace detail

// ---- absolute positions ------------------------------------------------------------------------

/// @brief An absolute-position policy: adds position vectors to embeddings.
template <class P>
concept absolute_positions = requires(const P& p, tensor_view<float> x, tensor_view<const std::int32_t> start) {
  p.add(x, start);
};

/// @brief No absolute positions (rotary, ALiBi, T5 or NoPE models).
struct no_positions {
  no_positions() = default;
  no_positions(std::int64_t, std::int64_t) {}
  void add(tensor_view<float>, tensor_view<const std::int32_t>) const {}
  template <class V>
  void visit(V&&, const std::string&) {}
};

/// @brief A learned table [offset + max_positions, d] (BERT, GPT-2; BART keeps two unused rows
/// before position 0: offset 2).
class learned_positions {
 public:
  learned_positions() = default;
  learned_positions(std::int64_t max_positions, std::int64_t d, std::int64_t offset = 0)
      : weight(shape{offset + max_positions, d}), offset(offset) {
    if (offset < 0) throw value_error("tformer::nn::learned_positions: the offset must be >= 0, got " + std::to_string(offset));
  }
  std::int64_t max_positions() const { return weight.rank() == 2 ? weight.dim(0) - offset : 0; }
  void add(tensor_view<float> x, tensor_view<const std::int32_t> start) const {
    const std::int64_t B = x.dim(0), S = x.dim(1), d = x.dim(2);
    if (d != weight.dim(1))
      throw shape_error("tformer::nn::learned_positions: x " + x.shape().to_string() + " must have d = " +
                        std::to_string(weight.dim(1)));
    detail::check_start("learned_positions", start, B);
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t last = detail::start_of(start, b) + S - 1;
      if (S > 0 && last >= max_positions())
        throw value_error("tformer::nn::learned_positions: position " + std::to_string(last) + " (sequence " +
                          std::to_string(b) + ") is beyond the learned table of " + std::to_string(max_positions()) +
                          " positions");
    }
    parallel_for(B * S, [&](std::int64_t i) {
      const std::int64_t b = i / S, s = i % S, p = offset + detail::start_of(start, b) + s;
      float* row = x.data() + b * x.stride(0) + s * x.stride(1);
      const float* pe = weight.data() + p * d;
      for (std::int64_t c = 0; c < d; ++c) row[c] += pe[c];
    }, d);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }
  tensor<float> weight;      // [offset + max_positions, d]
  std::int64_t offset = 0;   // the row of position 0
};

/// @brief Fixed sinusoids, no parameters, any length. Interleaved (Attention Is All You Need):
/// pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(p / 10000^(2i/d)). Split (tensor2tensor,
/// Marian): the sines in the first ceil(d/2) features, pe[p, i] = sin(p / 10000^(2i/d)), the
/// cosines after them, pe[p, ceil(d/2) + i] = cos(p / 10000^(2i/d)). Computed in double, as
/// Marian's table is.
template <bool Split>
struct basic_sinusoidal_positions {
  basic_sinusoidal_positions() = default;
  basic_sinusoidal_positions(std::int64_t, std::int64_t) {}
  void add(tensor_view<float> x, tensor_view<const std::int32_t> start) const {
    const std::int64_t B = x.dim(0), S = x.dim(1), d = x.dim(2), half = (d + 1) / 2;
    detail::check_start("sinusoidal_positions", start, B);
    parallel_for(B * S, [&](std::int64_t i) {
      const std::int64_t b = i / S, s = i % S;
      const double p = static_cast<double>(detail::start_of(start, b) + s);
      float* row = x.data() + b * x.stride(0) + s * x.stride(1);
      for (std::int64_t c = 0; c < d; ++c) {
        const bool sine = Split ? c < half : (c & 1) == 0;
        const std::int64_t twice_i = Split ? 2 * (sine ? c : c - half) : c - (c & 1);
        const double angle = p / std::pow(10000.0, static_cast<double>(twice_i) / static_cast<double>(d));
        row[c] += static_cast<float>(sine ? std::sin(angle) : std::cos(angle));
      }
    }, d);
  }
  template <class V>
  void visit(V&&, const std::string&) {}
};

/// @brief Interleaved sinusoids (the original Transformer).
using sinusoidal_positions = basic_sinusoidal_positions<false>;
/// @brief Split sinusoids (Marian).
using split_sinusoidal_positions = basic_sinusoidal_positions<true>;

}  // namespace tformer::nn
