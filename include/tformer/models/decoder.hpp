// Decoder-only causal language model (GPT-2, Llama families): embeddings, causal self-attention
// layers with per-layer states for incremental decoding, final norm, LM head (tied to the
// embeddings or its own weights).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../nn/linear.hpp"
#include "config.hpp"
#include "spec.hpp"
#include "stack.hpp"
#include "state.hpp"

namespace tformer::models {

/// @brief Decoder-only causal LM defined by a spec (see spec.hpp).
template <class Spec>
class decoder_lm {
 public:
  using traits = spec_traits<Spec>;
  static_assert(!traits::separate_positions && !traits::logits_bias,
                "spec::separate_positions and spec::logits_bias belong to encoder-decoder specs");
  using layers_type = typename traits::template stack_layers<typename spec_layer<Spec>::type>;
  using stack_type = layer_stack<layers_type, typename traits::attention_bias, typename traits::final_norm>;
  using state_type = model_state<typename stack_type::state_type>;
  using embedder_type = embedder<typename traits::positions, typename traits::embed_norm, typename traits::embedding_weights>;
  using head_type = nn::linear<typename traits::head_weights>;

  explicit decoder_lm(const model_config& c) : config(c) {
    check_layers(layers_type{});
    detail::build_checked("decoder_lm", c, [&] {
      embed = embedder_type(c);
      stack = stack_type(c, c.layers, /*bidirectional=*/false, &traits::template layer_kind<layers_type::count>);
      if constexpr (!traits::tie_embeddings) lm_head = head_type(c.d_model(), c.vocab, false);
    });
  }

  /// @brief An empty state for batch sequences of up to capacity tokens.
  state_type make_state(std::int64_t batch, std::int64_t capacity) const {
    return state_type(stack.make_states(batch, capacity), batch);
  }

  /// @brief Logits [B, S, vocab] of ids [B, S] (sequence b: lengths[b] real tokens, then padding).
  /// With a state, the tokens continue each sequence of the state and are appended to it.
  tensor<float> forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths = {},
                        state_type* state = nullptr, ops::attention_mask mask = causal()) const {
    detail::check_ids("decoder_lm", ids);
    tensor<float> logits(shape{ids.dim(0), ids.dim(1), config.vocab});  // [B, S, vocab]
    workspace own;
    run(ids, lengths, state, logits, mask, state ? state->scratch : own);
    return logits;
  }

  /// @brief forward() into logits [B, S, vocab]: with the same shapes as the previous call on this
  /// state, it allocates no memory (the state's workspace holds every temporary).
  void forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths, state_type& state,
               tensor_view<float> logits, ops::attention_mask mask = causal()) const {
    run(ids, lengths, &state, logits, mask, state.scratch);
  }

  /// @brief A prompt's prefill: appends ids [B, S] (sequence b: lengths[b] >= 1 real tokens, then
  /// padding) to the state and writes the logits of each sequence's last real token into logits
  /// [B, vocab]. The head runs on B rows instead of B * S, which is all generation needs from a
  /// prompt (in a d 768, 12-layer Llama with a 32000-token head, the head on every position is a
  /// quarter of the prompt's FLOPs).
  void forward_last(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths, state_type& state,
                    tensor_view<float> logits) const {
    detail::check_ids("decoder_lm", ids);
    const std::int64_t B = ids.dim(0), S = ids.dim(1), d = config.d_model();
    if (logits.rank() != 2 || logits.dim(0) != B || logits.dim(1) != config.vocab || !logits.is_contiguous())
      throw shape_error("tformer::models::decoder_lm::forward_last: logits must be a contiguous [" + std::to_string(B) + ", " +
                        std::to_string(config.vocab) + "], got " + logits.shape().to_string());
    detail::check_lengths("decoder_lm::forward_last", lengths, B, S);
    if (S < 1) throw shape_error("tformer::models::decoder_lm::forward_last: the ids have no position (got " +
                                 ids.shape().to_string() + ")");
    for (std::int64_t b = 0; lengths.data() && b < B; ++b)
      if (lengths(b) < 1)
        throw shape_error("tformer::models::decoder_lm::forward_last: sequence " + std::to_string(b) +
                          " has no token (lengths[b] = " + std::to_string(lengths(b)) + ")");
    check_state(&state, B);
    workspace& ws = state.scratch;
    const auto scope = ws.open();
    const auto x = ws.take<float>(shape{B, S, d});  // [B, S, d]
    const auto last = ws.take<float>(shape{B, d});  // [B, d]: each sequence's last real position
    embed.forward(ids, state.lengths, x);
    forward_hidden(x, lengths, &state);
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t at = (lengths.data() ? lengths(b) : S) - 1;
      std::copy_n(x.data() + (b * S + at) * d, d, last.data() + b * d);
    }
    head(last, logits, &ws);
  }

  /// @brief Layers and final norm over embeddings x [B, S, d] in place (advances the state).
  void forward_hidden(tensor_view<float> x, tensor_view<const std::int32_t> lengths = {}, state_type* state = nullptr,
                      ops::attention_mask mask = causal()) const {
    const std::int64_t B = x.dim(0), S = x.dim(1);
    detail::check_lengths("decoder_lm", lengths, B, S);
    check_state(state, B);
    const nn::sequence_info seq{lengths, state ? tensor_view<const std::int32_t>(state->lengths) : tensor_view<const std::int32_t>(),
                                state ? &state->scratch : nullptr};
    stack.forward(x, seq, mask, state ? &state->layers : nullptr);
    if (state)
      for (std::int64_t b = 0; b < B; ++b) state->lengths(b) += static_cast<std::int32_t>(lengths.data() ? lengths(b) : S);
  }

  /// @brief logits [..., vocab] = hidden [..., d] times the head (tied: the embedding table).
  void head(tensor_view<const float> hidden, tensor_view<float> logits, workspace* ws = nullptr) const {
    if constexpr (traits::tie_embeddings) {
      const shape h2{hidden.rows(), config.d_model()}, l2{logits.rows(), config.vocab};
      ops::linear(hidden.reshape(h2), embed.tokens.weight, logits.reshape(l2), {}, ws);
    } else {
      lm_head.forward(hidden, logits, ws);
    }
  }

  static ops::attention_mask causal() {
    ops::attention_mask m;
    m.causal = true;
    return m;
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    embed.visit(v, prefix + "embed.");
    stack.visit(v, prefix);
    if constexpr (!traits::tie_embeddings)
      if (config.vocab > 0) lm_head.visit(v, prefix + "lm_head.");
  }

  model_config config;
  embedder_type embed;
  stack_type stack;
  head_type lm_head;  // [vocab, d], unused when tied

 private:
  template <class... L>
  static void check_layers(layer_types<L...>) {
    static_assert((self_attention_layer<L> && ...), "Spec::layer(s) must be self-attention layers (nn::transformer_layer or "
                                                    "nn::parallel_layer)");
  }
  void check_state(const state_type* state, std::int64_t B) const {
    if (state && state->batch() != B)
      throw shape_error("tformer::models::decoder_lm: the state is for batch " + std::to_string(state->batch()) +
                        ", the ids are for batch " + std::to_string(B));
  }
  void run(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> lengths, state_type* state,
           tensor_view<float> logits, const ops::attention_mask& mask, workspace& ws) const {
    detail::check_ids("decoder_lm", ids);
    const std::int64_t B = ids.dim(0), S = ids.dim(1);
    detail::check_logits("decoder_lm", logits, B, S, config.vocab);
    check_state(state, B);
    const auto scope = ws.open();
    const auto x = ws.take<float>(shape{B, S, config.d_model()});  // [B, S, d]
    embed.forward(ids, state ? tensor_view<const std::int32_t>(state->lengths) : tensor_view<const std::int32_t>(), x);
    if (state) {
      forward_hidden(x, lengths, state, mask);
    } else {
      detail::check_lengths("decoder_lm", lengths, B, S);
      stack.forward(x, nn::sequence_info{lengths, {}, &ws}, mask, nullptr);
    }
    head(x, logits, &ws);
  }
};

}  // namespace tformer::models
