// Heads on top of hidden states [B, S, d]: pooling (first token, masked mean, last real token),
// a dense + tanh pooler (BERT), and classification (a linear layer, nn::linear).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../nn/linear.hpp"
#include "../ops/elementwise.hpp"
#include "../simd/activation.hpp"

namespace tformer::models {

/// @brief How to pool a sequence of hidden states into one vector.
enum class pooling { cls, mean, last };

/// @brief out [B, d] pooled from hidden [B, S, d]; lengths [B] marks the real tokens (padding is
/// never read: mean divides by lengths[b], last takes position lengths[b] - 1). A sequence of
/// length 0 pools to zeros.
inline void pool(tensor_view<const float> hidden, tensor_view<const std::int32_t> lengths, pooling how,
                 tensor_view<float> out) {
  if (hidden.rank() != 3 || out.rank() != 2 || out.dim(0) != hidden.dim(0) || out.dim(1) != hidden.dim(2))
    throw shape_error("tformer::models::pool: hidden must be [B, S, d] and out [B, d], got hidden " +
                      hidden.shape().to_string() + ", out " + out.shape().to_string());
  const std::int64_t B = hidden.dim(0), S = hidden.dim(1), d = hidden.dim(2);
  if (lengths.data() && (lengths.rank() != 1 || lengths.dim(0) != B))
    throw shape_error("tformer::models::pool: lengths must be [" + std::to_string(B) + "]");
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t n = lengths.data() ? lengths(b) : S;
    if (n < 0 || n > S)
      throw value_error("tformer::models::pool: lengths[" + std::to_string(b) + "] = " + std::to_string(n) +
                        " is outside [0, " + std::to_string(S) + "]");
    float* o = out.data() + b * out.stride(0);
    for (std::int64_t c = 0; c < d; ++c) o[c] = 0.0f;
    if (n == 0) continue;
    if (how == pooling::cls || how == pooling::last) {
      const std::int64_t s = how == pooling::cls ? 0 : n - 1;
      for (std::int64_t c = 0; c < d; ++c) o[c] = hidden(b, s, c);
      continue;
    }
    for (std::int64_t c = 0; c < d; ++c) {  // mean over the real tokens, summed in double
      double sum = 0;
      for (std::int64_t s = 0; s < n; ++s) sum += hidden(b, s, c);
      o[c] = static_cast<float>(sum / static_cast<double>(n));
    }
  }
}

/// @brief BERT's pooler: tanh(dense(first token)).
class dense_pooler {
 public:
  dense_pooler() = default;
  explicit dense_pooler(std::int64_t d) : dense(d, d, true) {}
  /// @brief out [B, d] from hidden [B, S, d].
  void forward(tensor_view<const float> hidden, tensor_view<float> out) const {
    tensor<float> first(shape{hidden.dim(0), hidden.dim(2)});  // [B, d]
    pool(hidden, {}, pooling::cls, first);
    dense.forward(first, out);
    ops::activate<simd::act::tanh>(out, out);
  }
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    dense.visit(v, prefix + "dense.");
  }
  nn::linear<> dense;  // [d, d]
};

}  // namespace tformer::models
