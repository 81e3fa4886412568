// Encoder-decoder model (original Transformer, T5, BART family). The encoder runs once per
// source; its output and the cross-attention keys/values of every decoder layer are kept in an
// `encoded` object that any number of decoding steps (and beams) share. One token embedding table
// serves both sides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../nn/linear.hpp"
#include "spec.hpp"
#include "stack.hpp"

namespace tformer::models {

/// @brief A layer usable in the decoder of an encoder-decoder.
template <class L>
concept cross_attention_layer = std::constructible_from<L, const nn::layer_config&> &&
    requires(const L& l, tensor_view<const float> m, nn::kv_cache_layer& kv) { l.cross_attn.project_kv(m, kv); };

/// @brief The encoder's result for a batch of sources.
struct encoded {
  tensor<float> hidden;                  // [B, S, d]
  tensor<std::int32_t> lengths;          // [B] source lengths
  std::vector<nn::kv_cache_layer> cross;  // per decoder layer: K/V [B, S, kv_heads, head_dim]
  std::int64_t batch() const { return hidden.rank() == 3 ? hidden.dim(0) : 0; }

  /// @brief Keeps sources rows[i] as source i (e.g. drops the sources whose decoding ended).
  void select(std::span<const std::int64_t> rows) {
    hidden = detail::gather_rows(hidden, rows);
    lengths = detail::gather_rows(lengths, rows);
    for (auto& c : cross) {
      c.k = detail::gather_rows(c.k, rows);
      c.v = detail::gather_rows(c.v, rows);
    }
  }
};

/// @brief Encoder-decoder transformer defined by a spec with encoder_layer and decoder_layer.
template <class Spec>
class encoder_decoder {
 public:
  using traits = spec_traits<Spec>;
  using encoder_layer = typename Spec::encoder_layer;
  using decoder_layer = typename Spec::decoder_layer;
  static_assert(self_attention_layer<encoder_layer>, "Spec::encoder_layer must be a self-attention layer");
  static_assert(cross_attention_layer<decoder_layer>, "Spec::decoder_layer must be an nn::cross_decoder_layer");

  explicit encoder_decoder(const model_config& c)
      : config(c),
        embed(c),
        encoder(c, c.layers, /*bidirectional=*/true),
        decoder(c, c.decoder_layers > 0 ? c.decoder_layers : c.layers, /*bidirectional=*/false) {
    if constexpr (!traits::tie_embeddings) lm_head = nn::linear<>(c.d_model(), c.vocab, false);
  }

  /// @brief Encodes source ids [B, S] (lengths[b] real tokens each).
  encoded encode(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {}) const {
    detail::check_ids("encoder_decoder", ids);
    tensor<float> x(shape{ids.dim(0), ids.dim(1), config.d_model()});  // [B, S, d]
    embed.forward(ids, {}, x);
    return encode_hidden(std::move(x), lengths);
  }

  /// @brief Encodes source embeddings x [B, S, d] (models without token embeddings, e.g. nn.Transformer).
  encoded encode_hidden(tensor<float> x, tensor_view<const std::int32_t> lengths = {}) const {
    const std::int64_t B = x.dim(0), S = x.dim(1);
    detail::check_lengths("encoder_decoder", lengths, B, S);
    encoded e;
    e.lengths = tensor<std::int32_t>(shape{B}, static_cast<std::int32_t>(S));
    if (lengths.data())
      for (std::int64_t b = 0; b < B; ++b) e.lengths(b) = lengths(b);
    encoder.forward(x, nn::sequence_info{e.lengths, {}}, ops::attention_mask{}, nullptr);
    for (const auto& l : decoder.layers) {
      e.cross.emplace_back();
      l.cross_attn.project_kv(x, e.cross.back());
    }
    e.hidden = std::move(x);
    return e;
  }

  /// @brief An empty self-attention cache for the decoder.
  kv_cache make_cache(std::int64_t batch, std::int64_t capacity) const {
    kv_cache c;
    for (const auto& l : decoder.layers) c.layers.push_back(l.self_attn.make_cache(batch, capacity));
    c.lengths = tensor<std::int32_t>(shape{batch});
    return c;
  }

  /// @brief Logits [B, T, vocab] of target ids [B, T] given the encoded sources. B may be a
  /// multiple g of the encoded batch: rows b*g .. b*g + g - 1 then all decode source b (beams share
  /// the source's cross-attention keys and values without copies).
  tensor<float> decode(tensor_view<const std::int32_t> ids, const encoded& source,
                       tensor_view<const std::int32_t> lengths = {}, kv_cache* cache = nullptr) const {
    detail::check_ids("encoder_decoder", ids);
    const std::int64_t B = ids.dim(0), T = ids.dim(1);
    tensor<float> y(shape{B, T, config.d_model()});  // [B, T, d]
    tensor_view<const std::int32_t> start = cache ? tensor_view<const std::int32_t>(cache->lengths) : tensor_view<const std::int32_t>();
    embed.forward(ids, start, y);
    decode_hidden(y, source, lengths, cache);
    tensor<float> logits(shape{B, T, config.vocab});
    if constexpr (traits::tie_embeddings) {
      ops::linear(y.view().reshape(shape{B * T, config.d_model()}), embed.tokens.weight,
                  logits.view().reshape(shape{B * T, config.vocab}));
    } else {
      lm_head.forward(y, logits);
    }
    return logits;
  }

  /// @brief Decoder layers and final norm over target embeddings y [B, T, d] in place.
  void decode_hidden(tensor_view<float> y, const encoded& source, tensor_view<const std::int32_t> lengths = {},
                     kv_cache* cache = nullptr) const {
    const std::int64_t B = y.dim(0), T = y.dim(1);
    detail::check_lengths("encoder_decoder", lengths, B, T);
    if (source.batch() < 1 || B % source.batch() != 0)
      throw shape_error("tformer::models::encoder_decoder: the target batch " + std::to_string(B) +
                        " is not a multiple of the encoded batch " + std::to_string(source.batch()));
    if (cache && cache->batch() != B)
      throw shape_error("tformer::models::encoder_decoder: the KV cache is for batch " + std::to_string(cache->batch()));
    tensor_view<const std::int32_t> start = cache ? tensor_view<const std::int32_t>(cache->lengths) : tensor_view<const std::int32_t>();
    ops::attention_mask mask;
    mask.causal = true;
    const tensor_view<const std::int32_t> src_lengths = source.lengths;
    decoder.forward(
        y, nn::sequence_info{lengths, start}, mask, cache,
        [&](std::size_t i) -> const nn::kv_cache_layer& { return source.cross[i]; },
        [&](std::size_t) { return src_lengths; });
    if (cache)
      for (std::int64_t b = 0; b < B; ++b) cache->lengths(b) += static_cast<std::int32_t>(lengths.data() ? lengths(b) : T);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    encoder.visit(v, prefix + "encoder.");
    decoder.visit(v, prefix + "decoder.");
    if constexpr (!traits::tie_embeddings)
      if (config.vocab > 0) lm_head.visit(v, prefix + "lm_head.");
  }

  model_config config;
  embedder<typename traits::positions, typename traits::embed_norm> embed;
  layer_stack<encoder_layer, typename traits::attention_bias, typename traits::final_norm> encoder;
  layer_stack<decoder_layer, typename traits::attention_bias, typename traits::final_norm> decoder;
  nn::linear<> lm_head;  // [vocab, d], unused when tied
};

}  // namespace tformer::models
