// Pieces every model shares: the embedding stage (tokens, segment 0, absolute positions, norm)
// and a stack of layers with its shared attention bias and final norm.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../nn/embedding.hpp"
#include "spec.hpp"

namespace tformer::models {

/// @brief Token embedding (+ segment-0 embedding) (+ absolute positions) (+ norm).
template <class Positions, class EmbedNorm>
class embedder {
 public:
  embedder() = default;
  explicit embedder(const model_config& c)
      : tokens(c.vocab, c.d_model()),
        token_type(c.token_types > 0 ? tensor<float>(shape{c.token_types, c.d_model()}) : tensor<float>()),
        positions(c.max_positions, c.d_model()),
        norm(c.d_model(), c.layer.norm_eps),
        scale(c.embed_scale) {}

  /// @brief out [B, S, d] = embeddings of ids [B, S] whose first token sits at start[b].
  void forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> start, tensor_view<float> out) const {
    tokens.forward(ids, out, scale);
    if (token_type.rank() == 2) {  // every token is in segment 0
      const std::int64_t d = tokens.dim();
      parallel_for(out.rows(), [&](std::int64_t r) {
        float* row = out.row(r);
        for (std::int64_t c = 0; c < d; ++c) row[c] += token_type.data()[c];
      }, d);
    }
    positions.add(out, start);
    norm.forward(out, out);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    if (tokens.vocab() > 0) tokens.visit(v, prefix + "tokens.");  // vocab 0: the model takes embeddings
    if (token_type.rank() == 2) v(prefix + "token_type.weight", token_type);
    positions.visit(v, prefix + "positions.");
    norm.visit(v, prefix + "norm.");
  }

  nn::embedding tokens;    // [vocab, d]
  tensor<float> token_type;  // [token_types, d] or rank 0
  Positions positions;
  EmbedNorm norm;
  float scale = 1.0f;
};

/// @brief Layers run in order over x [B, S, d], sharing one attention bias, then a final norm.
template <class Layer, class Bias, class FinalNorm>
class layer_stack {
 public:
  layer_stack() = default;
  layer_stack(const model_config& c, std::int64_t n_layers, bool bidirectional)
      : bias(c, bidirectional), final_norm(c.d_model(), detail::final_eps(c)) {
    if (n_layers < 1) throw value_error("tformer::models: a stack needs at least one layer, got " + std::to_string(n_layers));
    layers.reserve(static_cast<std::size_t>(n_layers));
    for (std::int64_t i = 0; i < n_layers; ++i) layers.emplace_back(c.layer);
  }

  /// @brief Runs every layer on x in place; extra... are passed on to each layer after its cache.
  template <class... Extra>
  void forward(tensor_view<float> x, const nn::sequence_info& seq, const ops::attention_mask& mask, kv_cache* cache,
               const Extra&... extra) const {
    for (std::size_t i = 0; i < layers.size(); ++i)
      layers[i].forward(x, seq, mask, cache ? &cache->layers[i] : nullptr, extra(i)..., bias);
    final_norm.forward(x, x);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    bias.visit(v, prefix + "relative_bias.");
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i].visit(v, prefix + "layers." + std::to_string(i) + ".");
    final_norm.visit(v, prefix + "final_norm.");
  }

  std::vector<Layer> layers;
  Bias bias;
  FinalNorm final_norm;
};

}  // namespace tformer::models
