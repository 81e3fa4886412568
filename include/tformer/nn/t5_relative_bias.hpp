// T5 relative position buckets: an additive attention bias learned per bucket of key-query distance.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "attention_bias.hpp"

namespace tformer::nn {

/// @brief T5 relative position buckets: logit += table[bucket(k - q), h]; bidirectional in the
/// encoder, causal in the decoder. The bucket arithmetic follows Hugging Face's float32 steps.
class t5_relative_bias {
 public:
  static constexpr bool enabled = true;
  t5_relative_bias() = default;
  t5_relative_bias(std::int64_t buckets, std::int64_t heads, std::int64_t max_distance, bool bidirectional)
      : weight(shape{buckets, heads}), max_distance_(max_distance), bidirectional_(bidirectional) {}
  /// @brief One table per stack: bidirectional in an encoder, causal in a decoder.
  explicit t5_relative_bias(const bias_config& c)
      : t5_relative_bias(c.relative_buckets, c.heads, c.relative_max_distance, c.bidirectional) {}

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
