// ALiBi (Train Short, Test Long): an additive attention bias linear in the key-query distance.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "attention_bias.hpp"

namespace tformer::nn {

/// @brief ALiBi (Train Short, Test Long): logit += slope_h * (k - q), with the paper's slopes
/// (a geometric sequence from 2^(-8/n); for n not a power of two, interleaved from 2n).
class alibi_bias {
 public:
  static constexpr bool enabled = true;
  alibi_bias() = default;
  explicit alibi_bias(std::int64_t heads) : slopes_(slopes(heads)) {}
  /// @brief The stack-level bias of a model's attention heads.
  explicit alibi_bias(const bias_config& c) : alibi_bias(c.heads) {}
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
  template <class V>
  void visit(V&&, const std::string&) {}
  void add(std::int64_t, std::int64_t h, std::int64_t q, std::int64_t k0, std::int64_t n, float* row) const {
    const float slope = slopes_[static_cast<std::size_t>(h)];
    for (std::int64_t i = 0; i < n; ++i) row[i] += slope * static_cast<float>(k0 + i - q);
  }

 private:
  std::vector<float> slopes_;
};

}  // namespace tformer::nn
