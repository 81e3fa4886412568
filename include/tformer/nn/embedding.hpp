// Token embedding: a table [vocab, d] looked up by id; optionally shared with an output head.
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

namespace tformer::nn {

/// @brief Lookup table [vocab, d] of token vectors.
class embedding {
 public:
  embedding() = default;
  embedding(std::int64_t vocab, std::int64_t d) : weight(shape{vocab, d}) {}
  std::int64_t vocab() const { return weight.rank() == 2 ? weight.dim(0) : 0; }
  std::int64_t dim() const { return weight.rank() == 2 ? weight.dim(1) : 0; }

  /// @brief out[b, s] = scale * weight[ids[b, s]]; ids [B, S] in [0, vocab), out [B, S, d].
  void forward(tensor_view<const std::int32_t> ids, tensor_view<float> out, float scale = 1.0f) const {
    if (ids.rank() != 2 || out.rank() != 3 || out.dim(0) != ids.dim(0) || out.dim(1) != ids.dim(1) || out.dim(2) != dim())
      throw shape_error("tformer::nn::embedding: ids must be [B, S] and out [B, S, " + std::to_string(dim()) +
                        "], got ids " + ids.shape().to_string() + ", out " + out.shape().to_string());
    const std::int64_t B = ids.dim(0), S = ids.dim(1), d = dim();
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t s = 0; s < S; ++s)
        if (ids(b, s) < 0 || ids(b, s) >= vocab())
          throw value_error("tformer::nn::embedding: token id " + std::to_string(ids(b, s)) + " at [" + std::to_string(b) +
                            ", " + std::to_string(s) + "] is outside the vocabulary [0, " + std::to_string(vocab()) + ")");
    parallel_for(B * S, [&](std::int64_t i) {
      const std::int64_t b = i / S, s = i % S;
      const float* src = weight.data() + static_cast<std::int64_t>(ids(b, s)) * d;
      float* dst = out.data() + b * out.stride(0) + s * out.stride(1);
      for (std::int64_t c = 0; c < d; ++c) dst[c] = src[c] * scale;
    }, d);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }

  tensor<float> weight;  // [vocab, d]
};

}  // namespace tformer::nn
