// Position schemes.
//
// Absolute (added to the token embeddings by the model): no_positions, learned_positions,
// sinusoidal_positions.  Each: add(x [B, S, d], start [B] or {}) adds the vector of position
// start[b] + i to x[b, i]; visit(visitor, prefix).
//
// Rotary (applied to queries and keys inside attention): no_rope, rotary (rotate-half as in
// GPT-NeoX / Hugging Face Llama, or interleaved pairs as in GPT-J / RoFormer; partial rotary
// dimension; base). apply(x [B, S, H, D], start [B] or {}).
//
// Additive attention biases (ops::attention_bias hooks): alibi_bias, t5_relative_bias.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

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

/// @brief A learned table [max_positions, d] (BERT, GPT-2).
class learned_positions {
 public:
  learned_positions() = default;
  learned_positions(std::int64_t max_positions, std::int64_t d) : weight(shape{max_positions, d}) {}
  std::int64_t max_positions() const { return weight.rank() == 2 ? weight.dim(0) : 0; }
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
      const std::int64_t b = i / S, s = i % S, p = detail::start_of(start, b) + s;
      float* row = x.data() + b * x.stride(0) + s * x.stride(1);
      const float* pe = weight.data() + p * d;
      for (std::int64_t c = 0; c < d; ++c) row[c] += pe[c];
    }, d);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }
  tensor<float> weight;  // [max_positions, d]
};

/// @brief Fixed sinusoids (Attention Is All You Need): pe[p, 2i] = sin(p / 10000^(2i/d)),
/// pe[p, 2i+1] = cos(p / 10000^(2i/d)); no parameters, any length.
struct sinusoidal_positions {
  sinusoidal_positions() = default;
  sinusoidal_positions(std::int64_t, std::int64_t) {}
  void add(tensor_view<float> x, tensor_view<const std::int32_t> start) const {
    const std::int64_t B = x.dim(0), S = x.dim(1), d = x.dim(2);
    detail::check_start("sinusoidal_positions", start, B);
    parallel_for(B * S, [&](std::int64_t i) {
      const std::int64_t b = i / S, s = i % S;
      const double p = static_cast<double>(detail::start_of(start, b) + s);
      float* row = x.data() + b * x.stride(0) + s * x.stride(1);
      for (std::int64_t c = 0; c < d; ++c) {
        const double angle = p / std::pow(10000.0, static_cast<double>(c - (c & 1)) / static_cast<double>(d));
        row[c] += static_cast<float>((c & 1) ? std::cos(angle) : std::sin(angle));
      }
    }, d);
  }
  template <class V>
  void visit(V&&, const std::string&) {}
};

// ---- rotary ------------------------------------------------------------------------------------------

/// @brief A rotary policy: rotates query/key heads by their positions.
template <class R>
concept rotary_policy = requires(const R& r, tensor_view<float> x, tensor_view<const std::int32_t> start) {
  r.apply(x, start);
};

/// @brief No rotary embedding.
struct no_rope {
  void apply(tensor_view<float>, tensor_view<const std::int32_t>) const {}
};

/// @brief Rotary position embedding (RoFormer). Pairs (i, i + dim/2) when interleaved is false
/// (rotate-half: GPT-NeoX, Hugging Face Llama), pairs (2i, 2i + 1) when true (GPT-J, RoFormer).
/// Only the first `dim` features of each head rotate (partial rotary); frequency i is
/// base^(-2i/dim), computed in float like Hugging Face so positions match to the last bit of angle.
struct rotary {
  std::int64_t dim = 0;  ///< rotated features per head (even); 0: the whole head
  float base = 10000.0f;
  bool interleaved = false;

  void apply(tensor_view<float> x, tensor_view<const std::int32_t> start) const {
    if (x.rank() != 4) throw shape_error("tformer::nn::rotary: expected [B, S, H, D], got " + x.shape().to_string());
    const std::int64_t B = x.dim(0), S = x.dim(1), H = x.dim(2), D = x.dim(3);
    const std::int64_t rd = dim == 0 ? D : dim;
    if (rd % 2 != 0 || rd > D)
      throw value_error("tformer::nn::rotary: rotary dim " + std::to_string(rd) + " must be even and <= head dim " +
                        std::to_string(D));
    detail::check_start("rotary", start, B);
    const std::int64_t half = rd / 2;
    std::vector<float> inv_freq(static_cast<std::size_t>(half));  // [rd/2]
    for (std::int64_t i = 0; i < half; ++i)
      inv_freq[static_cast<std::size_t>(i)] =
          1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(rd));
    parallel_for(B * S, [&](std::int64_t t) {
      const std::int64_t b = t / S, s = t % S;
      const float pos = static_cast<float>(detail::start_of(start, b) + s);
      std::vector<float> c(static_cast<std::size_t>(half)), sn(static_cast<std::size_t>(half));
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[static_cast<std::size_t>(i)];  // float product, as in HF
        c[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sn[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      for (std::int64_t h = 0; h < H; ++h) {
        float* v = x.data() + b * x.stride(0) + s * x.stride(1) + h * x.stride(2);
        for (std::int64_t i = 0; i < half; ++i) {
          const std::int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
          const float a = v[i0], bb = v[i1], cc = c[static_cast<std::size_t>(i)], ss = sn[static_cast<std::size_t>(i)];
          v[i0] = a * cc - bb * ss;
          v[i1] = bb * cc + a * ss;
        }
      }
    }, H * D);
  }
};

// ---- additive attention biases ---------------------------------------------------------------------

/// @brief ALiBi (Train Short, Test Long): logit += slope_h * (k - q), with the paper's slopes
/// (a geometric sequence from 2^(-8/n); for n not a power of two, interleaved from 2n).
class alibi_bias {
 public:
  static constexpr bool enabled = true;
  alibi_bias() = default;
  explicit alibi_bias(std::int64_t heads) : slopes_(slopes(heads)) {}
  static std::vector<float> slopes(std::int64_t n) {
    if (n < 1) throw value_error("tformer::nn::alibi_bias: heads must be >= 1, got " + std::to_string(n));
    auto pow2 = [](std::int64_t m) {
      std::vector<float> s(static_cast<std::size_t>(m));
      const double start = std::pow(2.0, -8.0 / static_cast<double>(m));
      for (std::int64_t i = 0; i < m; ++i) s[static_cast<std::size_t>(i)] = static_cast<float>(std::pow(start, i + 1));
      return s;
    };
    std::int64_t p = 1;
    while (p * 2 <= n) p *= 2;
    auto s = pow2(p);
    if (p != n) {
      const auto extra = pow2(2 * p);
      for (std::int64_t i = 0; i < n - p; ++i) s.push_back(extra[static_cast<std::size_t>(2 * i)]);
    }
    return s;
  }
  void add(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k0, std::int64_t n, float* row) const {
    const float slope = slopes_[static_cast<std::size_t>(h)];
    for (std::int64_t i = 0; i < n; ++i) row[i] += slope * static_cast<float>(k0 + i - q);
  }

 private:
  std::vector<float> slopes_;
};

/// @brief T5 relative position buckets: logit += table[bucket(k - q), h]; bidirectional in the
/// encoder, causal in the decoder. The bucket arithmetic follows Hugging Face's float32 steps.
class t5_relative_bias {
 public:
  static constexpr bool enabled = true;
  t5_relative_bias() = default;
  t5_relative_bias(std::int64_t buckets, std::int64_t heads, std::int64_t max_distance, bool bidirectional)
      : weight(shape{buckets, heads}), max_distance_(max_distance), bidirectional_(bidirectional) {}

  /// @brief The bucket of a relative position k - q.
  std::int64_t bucket(std::int64_t relative) const {
    std::int64_t buckets = weight.dim(0), result = 0;
    if (bidirectional_) {
      buckets /= 2;
      if (relative > 0) result += buckets;
      relative = relative < 0 ? -relative : relative;
    } else {
      relative = relative < 0 ? -relative : 0;
    }
    const std::int64_t max_exact = buckets / 2;
    if (relative < max_exact) return result + relative;
    const float scaled = std::log(static_cast<float>(relative) / static_cast<float>(max_exact)) /
                         static_cast<float>(std::log(static_cast<double>(max_distance_) / static_cast<double>(max_exact))) *
                         static_cast<float>(buckets - max_exact);
    const std::int64_t large = max_exact + static_cast<std::int64_t>(scaled);
    return result + (large < buckets - 1 ? large : buckets - 1);
  }
  void add(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k0, std::int64_t n, float* row) const {
    const std::int64_t heads = weight.dim(1);
    for (std::int64_t i = 0; i < n; ++i) row[i] += weight.data()[bucket(k0 + i - q) * heads + h];
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }
  tensor<float> weight;  // [buckets, heads]

 private:
  std::int64_t max_distance_ = 128;
  bool bidirectional_ = true;
};

}  // namespace tformer::nn
