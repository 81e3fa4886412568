// Token embedding: a table [vocab, d] in a weight format, looked up by id; optionally shared with
// the output head (which then multiplies by the same table, in the same format).
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../quant/f32.hpp"
#include "../quant/format.hpp"
#include "../quant/matrix.hpp"

namespace tformer::nn {

/// @brief Lookup table [vocab, d] of token vectors, stored in format F.
template <quant::weight_format F = quant::f32>
class embedding {
 public:
  using format = F;
  embedding() = default;
  embedding(std::int64_t vocab, std::int64_t d) : weight(vocab, d) {}
  std::int64_t vocab() const { return weight.rows(); }
  std::int64_t dim() const { return weight.cols(); }

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
    if (d > 1 && out.stride(2) != 1) throw shape_error("tformer::nn::embedding: rows of out must be contiguous");
    parallel_for(B * S, [&](std::int64_t i) {
      const std::int64_t b = i / S, s = i % S;
      float* dst = out.data() + b * out.stride(0) + s * out.stride(1);
      F::dequantize_row(weight.row(ids(b, s)), dst, d);
      if (scale != 1.0f)
        for (std::int64_t c = 0; c < d; ++c) dst[c] *= scale;
    }, d);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    v(prefix + "weight", weight);
  }

  quant::matrix<F> weight;  // [vocab, d] in format F
};

}  // namespace tformer::nn
