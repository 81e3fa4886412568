// Encoder-decoder model (original Transformer, T5, BART family). The encoder runs once per
// source; its output and the cross-attention keys/values of every decoder layer are kept in an
// `encoded` object that any number of decoding steps (and beams) share. One token embedding table
// serves both sides; with spec::separate_positions the decoder adds its own positions and embed
// norm (decoder_embed), and spec::logits_bias adds a bias to the logits (BART, Marian). The encoder reads token ids or an encoder_input (embeddings in place of ids,
// left padding: encoder.hpp); a model whose encoder is not a token stack (Whisper's convolutions)
// hands its encoder's output to from_encoder_output and decodes as usual.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../nn/linear.hpp"
#include "../ops/gather.hpp"
#include "config.hpp"
#include "encoder.hpp"
#include "spec.hpp"
#include "stack.hpp"
#include "state.hpp"

namespace tformer::models {

/// @brief The encoder's result for a batch of sources.
struct encoded {
  tensor<float> hidden;              // [B, S, d], real positions first (left-padded sources are moved)
  tensor<std::int32_t> lengths;      // [B] source lengths
  std::vector<nn::cross_kv> cross;   // per decoder layer: K/V [B, S, kv_heads, head_dim]
  std::int64_t batch() const { return hidden.rank() == 3 ? hidden.dim(0) : 0; }

  /// @brief Keeps sources rows[i] as source i (e.g. drops the sources whose decoding ended).
  void select(std::span<const std::int64_t> rows) {
    ops::select_rows(hidden, rows);
    ops::select_rows(lengths, rows);
    for (auto& c : cross) c.select(rows);
  }
};

/// @brief Encoder-decoder transformer defined by a spec with encoder_layer(s) and decoder_layer(s).
template <class Spec>
class encoder_decoder {
 public:
  using traits = spec_traits<Spec>;
  using encoder_layers = typename traits::template stack_layers<typename spec_side_layer<Spec, 0>::type>;
  using decoder_layers = typename traits::template stack_layers<typename spec_side_layer<Spec, 1>::type>;
  using encoder_stack = layer_stack<encoder_layers, typename traits::attention_bias, typename traits::final_norm>;
  using decoder_stack = layer_stack<decoder_layers, typename traits::attention_bias, typename traits::final_norm>;
  using state_type = model_state<typename decoder_stack::state_type>;
  using embedder_type = embedder<typename traits::positions, typename traits::embed_norm, typename traits::embedding_weights>;
  using head_type = nn::linear<typename traits::head_weights>;

  explicit encoder_decoder(const model_config& c) : config(c) {
    check_layers(encoder_layers{}, decoder_layers{});
    detail::build_checked("encoder_decoder", c, [&] {
      embed = embedder_type(c);
      if constexpr (traits::separate_positions) {
        model_config dc = c;  // positions and norm only: the decoder reads embed's token table
        dc.vocab = 0;
        dc.token_types = 0;
        decoder_embed = embedder_type(dc);
      }
      if constexpr (traits::logits_bias) logits_bias = tensor<float>(shape{1, c.vocab}, 0.0f);
      encoder = encoder_stack(c, c.layers, /*bidirectional=*/true, &traits::template layer_kind<encoder_layers::count>);
      decoder = decoder_stack(c, c.decoder_layers > 0 ? c.decoder_layers : c.layers, /*bidirectional=*/false,
                              &traits::template layer_kind<decoder_layers::count>);
      if constexpr (!traits::tie_embeddings) lm_head = head_type(c.d_model(), c.vocab, false);
    });
  }

  /// @brief Encodes source ids [B, S] (lengths[b] real tokens each).
  encoded encode(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {}) const {
    detail::check_ids("encoder_decoder", ids);
    tensor<float> x(shape{ids.dim(0), ids.dim(1), config.d_model()});  // [B, S, d]
    embed.forward(ids, {}, x);
    return encode_hidden(std::move(x), lengths);
  }

  /// @brief Encodes an encoder_input: token ids or embeddings (HF inputs_embeds), right or left
  /// padded (encoded keeps every source with its real positions first).
  encoded encode(const encoder_input& in) const {
    tensor<float> x;
    tensor<std::int32_t> start;
    detail::embed_input("encoder_decoder", embed, in, config.d_model(), x, start);
    return run_encoder(std::move(x), in.lengths, start);
  }

  /// @brief Encodes source embeddings x [B, S, d] (models without token embeddings, e.g. nn.Transformer).
  encoded encode_hidden(tensor<float> x, tensor_view<const std::int32_t> lengths = {}) const {
    return run_encoder(std::move(x), lengths, {});
  }

  /// @brief The sources from the encoder's output hidden [B, S, d] (lengths [B], empty: all S)
  /// computed elsewhere (HF encoder_outputs): only the decoder's cross-attention keys and values
  /// are computed. The seam for encoders that do not read tokens (audio, images).
  encoded from_encoder_output(tensor<float> hidden, tensor_view<const std::int32_t> lengths = {}) const {
    if (hidden.rank() != 3 || hidden.dim(2) != config.d_model())
      throw shape_error("tformer::models::encoder_decoder: the encoder output must be [batch, seq, " +
                        std::to_string(config.d_model()) + "], got " + hidden.shape().to_string());
    encoded e = with_lengths(hidden.dim(0), hidden.dim(1), lengths);
    attach(e, std::move(hidden));
    return e;
  }

  /// @brief An empty self-attention state for the decoder.
  state_type make_state(std::int64_t batch, std::int64_t capacity) const {
    return state_type(decoder.make_states(batch, capacity), batch);
  }

  /// @brief Logits [B, T, vocab] of target ids [B, T] given the encoded sources. B may be a
  /// multiple g of the encoded batch: rows b*g .. b*g + g - 1 then all decode source b (beams share
  /// the source's cross-attention keys and values without copies).
  tensor<float> decode(tensor_view<const std::int32_t> ids, const encoded& source,
                       tensor_view<const std::int32_t> lengths = {}, state_type* state = nullptr) const {
    detail::check_ids("encoder_decoder", ids);
    tensor<float> logits(shape{ids.dim(0), ids.dim(1), config.vocab});  // [B, T, vocab]
    workspace own;
    run(ids, source, lengths, state, logits, state ? state->scratch : own);
    return logits;
  }

  /// @brief decode() into logits [B, T, vocab]: with the same shapes as the previous call on this
  /// state, it allocates no memory (the state's workspace holds every temporary).
  void decode(tensor_view<const std::int32_t> ids, const encoded& source, tensor_view<const std::int32_t> lengths,
              state_type& state, tensor_view<float> logits) const {
    run(ids, source, lengths, &state, logits, state.scratch);
  }

  /// @brief Decoder layers and final norm over target embeddings y [B, T, d] in place.
  void decode_hidden(tensor_view<float> y, const encoded& source, tensor_view<const std::int32_t> lengths = {},
                     state_type* state = nullptr, workspace* ws = nullptr) const {
    const std::int64_t B = y.dim(0), T = y.dim(1);
    detail::check_lengths("encoder_decoder", lengths, B, T);
    if (source.batch() < 1 || B % source.batch() != 0)
      throw shape_error("tformer::models::encoder_decoder: the target batch " + std::to_string(B) +
                        " is not a multiple of the encoded batch " + std::to_string(source.batch()));
    if (state && state->batch() != B)
      throw shape_error("tformer::models::encoder_decoder: the state is for batch " + std::to_string(state->batch()) +
                        ", the ids are for batch " + std::to_string(B));
    if (source.cross.size() != decoder.layers.size())
      throw shape_error("tformer::models::encoder_decoder: the encoded source has cross keys for " +
                        std::to_string(source.cross.size()) + " layers, the decoder has " + std::to_string(decoder.layers.size()));
    ops::attention_mask mask;
    mask.causal = true;
    const tensor_view<const std::int32_t> src_lengths = source.lengths;
    workspace_ref scratch(ws ? ws : state ? &state->scratch : nullptr);
    const nn::sequence_info seq{lengths, state ? tensor_view<const std::int32_t>(state->lengths) : tensor_view<const std::int32_t>(),
                                scratch.get()};
    decoder.forward(
        y, seq, mask, state ? &state->layers : nullptr,
        [&](std::size_t i) -> const nn::cross_kv& { return source.cross[i]; }, [&](std::size_t) { return src_lengths; });
    if (state)
      for (std::int64_t b = 0; b < B; ++b) state->lengths(b) += static_cast<std::int32_t>(lengths.data() ? lengths(b) : T);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    if constexpr (traits::separate_positions) decoder_embed.visit(v, prefix + "decoder_embed.");
    encoder.visit(v, prefix + "encoder.");
    decoder.visit(v, prefix + "decoder.");
    if constexpr (!traits::tie_embeddings)
      if (config.vocab > 0) lm_head.visit(v, prefix + "lm_head.");
    if constexpr (traits::logits_bias) v(prefix + "logits_bias", logits_bias);
  }

  model_config config;
  embedder_type embed;
  embedder_type decoder_embed;  // separate_positions: the decoder's positions and norm (no token table)
  tensor<float> logits_bias;    // logits_bias: [1, vocab]
  encoder_stack encoder;
  decoder_stack decoder;
  head_type lm_head;  // [vocab, d], unused when tied

 private:
  template <class... E, class... D>
  static void check_layers(layer_types<E...>, layer_types<D...>) {
    static_assert((self_attention_layer<E> && ...), "Spec::encoder_layer(s) must be self-attention layers");
    static_assert((cross_attention_layer<D> && ...), "Spec::decoder_layer(s) must be nn::cross_decoder_layer");
  }
  // encoded with the lengths of a [B, S] batch (all S when lengths is empty).
  static encoded with_lengths(std::int64_t B, std::int64_t S, tensor_view<const std::int32_t> lengths) {
    detail::check_lengths("encoder_decoder", lengths, B, S);
    encoded e;
    e.lengths = tensor<std::int32_t>(shape{B}, static_cast<std::int32_t>(S));
    if (lengths.data())
      for (std::int64_t b = 0; b < B; ++b) e.lengths(b) = lengths(b);
    return e;
  }
  // e.hidden = the encoder output, with every decoder layer's cross-attention keys and values.
  void attach(encoded& e, tensor<float> hidden) const {
    e.cross.resize(decoder.layers.size());
    decoder.for_each_layer([&](std::size_t i, const auto& l) { l.cross_attn.project_kv(hidden, e.cross[i]); });
    e.hidden = std::move(hidden);
  }
  // The encoder stack over embeddings x [B, S, d] (right-padded; rows starting at positions start [B] or 0).
  encoded run_encoder(tensor<float> x, tensor_view<const std::int32_t> lengths, tensor_view<const std::int32_t> start) const {
    encoded e = with_lengths(x.dim(0), x.dim(1), lengths);
    workspace ws;
    encoder.forward(x, nn::sequence_info{e.lengths, start, &ws}, ops::attention_mask{}, nullptr);
    attach(e, std::move(x));
    return e;
  }
  void run(tensor_view<const std::int32_t> ids, const encoded& source, tensor_view<const std::int32_t> lengths,
           state_type* state, tensor_view<float> logits, workspace& ws) const {
    detail::check_ids("encoder_decoder", ids);
    const std::int64_t B = ids.dim(0), T = ids.dim(1);
    detail::check_logits("encoder_decoder", logits, B, T, config.vocab);
    if (state && state->batch() != B)
      throw shape_error("tformer::models::encoder_decoder: the state is for batch " + std::to_string(state->batch()) +
                        ", the ids are for batch " + std::to_string(B));
    const auto scope = ws.open();
    const auto y = ws.take<float>(shape{B, T, config.d_model()});  // [B, T, d]
    const tensor_view<const std::int32_t> start = state ? tensor_view<const std::int32_t>(state->lengths) : tensor_view<const std::int32_t>();
    if constexpr (traits::separate_positions) {
      embed.tokens.forward(ids, y, embed.scale);
      decoder_embed.add_positions(y, start);
    } else {
      embed.forward(ids, start, y);
    }
    decode_hidden(y, source, lengths, state, &ws);
    const shape y2{B * T, config.d_model()}, l2{B * T, config.vocab};
    if constexpr (traits::tie_embeddings)
      ops::linear(y.reshape(y2), embed.tokens.weight, logits.reshape(l2), {}, &ws);
    else
      lm_head.forward(y, logits, &ws);
    if constexpr (traits::logits_bias) {
      const float* bias = logits_bias.data();
      const std::int64_t V = config.vocab;
      parallel_for(B * T, [&](std::int64_t r) {
        float* row = logits.data() + r * V;
        for (std::int64_t v = 0; v < V; ++v) row[v] += bias[v];
      }, V);
    }
  }
};

}  // namespace tformer::models
