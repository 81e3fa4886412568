// Pieces every model shares: the embedding stage (tokens, segment 0, absolute positions, norm)
// and a stack of layers with its shared attention bias and final norm. A stack holds one layer
// type, or several (models::layer_types<...>: each layer is then a std::variant of them, and so
// is its state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../nn/attention_bias.hpp"
#include "../nn/embedding.hpp"
#include "config.hpp"
#include "spec.hpp"

namespace tformer::models {

namespace detail {
// The final norm's eps.
inline float final_eps(const model_config& c) { return c.final_norm_eps > 0 ? c.final_norm_eps : c.layer.norm_eps; }

// lengths [B] (or empty: all S) must lie in [0, S].
inline void check_lengths(const char* who, tensor_view<const std::int32_t> lengths, std::int64_t B, std::int64_t S) {
  if (!lengths.data()) return;
  if (lengths.rank() != 1 || lengths.dim(0) != B)
    throw shape_error(std::string("tformer::models::") + who + ": lengths must be [" + std::to_string(B) + "], got " +
                      lengths.shape().to_string());
  for (std::int64_t b = 0; b < B; ++b)
    if (lengths(b) < 0 || lengths(b) > S)
      throw value_error(std::string("tformer::models::") + who + ": lengths[" + std::to_string(b) + "] = " +
                        std::to_string(lengths(b)) + " is outside [0, " + std::to_string(S) + "]");
}

// ids [B, S] of int32.
inline void check_ids(const char* who, tensor_view<const std::int32_t> ids) {
  if (ids.rank() != 2)
    throw shape_error(std::string("tformer::models::") + who + ": token ids must be [batch, seq], got " +
                      ids.shape().to_string());
}

// logits [B, S, V] for a call on [B, S].
inline void check_logits(const char* who, const tensor_view<float>& logits, std::int64_t B, std::int64_t S, std::int64_t V) {
  if (logits.rank() != 3 || logits.dim(0) != B || logits.dim(1) != S || logits.dim(2) != V || !logits.is_contiguous())
    throw shape_error(std::string("tformer::models::") + who + ": logits must be a contiguous [" + std::to_string(B) + ", " +
                      std::to_string(S) + ", " + std::to_string(V) + "], got " + logits.shape().to_string());
}

// Calls f(std::integral_constant<std::size_t, I>{}) for the I == index.
template <std::size_t... I, class F>
void with_index(std::index_sequence<I...>, std::size_t index, F&& f) {
  ((index == I ? (f(std::integral_constant<std::size_t, I>{}), 0) : 0), ...);
}

template <class First, class...>
struct first {
  using type = First;
};

// Positions P for a config: learned tables get the config's offset (BART's two unused rows).
template <class P>
P make_positions(const model_config& c) {
  if constexpr (std::is_same_v<P, nn::learned_positions>)
    return P(c.max_positions, c.d_model(), c.position_offset);
  else
    return P(c.max_positions, c.d_model());
}
}  // namespace detail

/// @brief Token embedding (+ segment-0 embedding) (+ absolute positions) (+ norm).
template <class Positions, class EmbedNorm, quant::weight_format Format = quant::f32>
class embedder {
 public:
  embedder() = default;
  explicit embedder(const model_config& c)
      : tokens(c.vocab, c.d_model()),
        token_type(c.token_types > 0 ? tensor<float>(shape{c.token_types, c.d_model()}) : tensor<float>()),
        positions(detail::make_positions<Positions>(c)),
        norm(c.d_model(), c.layer.norm_eps),
        scale(c.embed_scale) {}

  /// @brief out [B, S, d] = embeddings of ids [B, S] whose first token sits at positions[b].
  void forward(tensor_view<const std::int32_t> ids, tensor_view<const std::int32_t> start, tensor_view<float> out) const {
    tokens.forward(ids, out, scale);
    if (token_type.rank() == 2) {  // every token is in segment 0
      const std::int64_t d = tokens.dim();
      parallel_for(out.rows(), [&](std::int64_t r) {
        float* row = out.row(r);
        for (std::int64_t c = 0; c < d; ++c) row[c] += token_type.data()[c];
      }, d);
    }
    add_positions(out, start);
  }

  /// @brief The stage after the token lookup: out [B, S, d] += positions from start [B], then the
  /// norm (an encoder-decoder whose decoder has its own positions runs the shared tokens, then this).
  void add_positions(tensor_view<float> out, tensor_view<const std::int32_t> start) const {
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

  nn::embedding<Format> tokens;  // [vocab, d]
  tensor<float> token_type;      // [token_types, d] or rank 0
  Positions positions;
  EmbedNorm norm;
  float scale = 1.0f;
};

template <class Layers, class Bias, class FinalNorm>
class layer_stack;

/// @brief Layers run in order over x [B, S, d], sharing one attention bias, then a final norm.
/// Layer i has type L[kind(i)] of the list.
template <class... L, class Bias, class FinalNorm>
class layer_stack<layer_types<L...>, Bias, FinalNorm> {
 public:
  static constexpr bool mixed = sizeof...(L) > 1;
  /// @brief What layers[i] holds: the layer type, or a variant of the listed types.
  using layer_type = std::conditional_t<mixed, std::variant<L...>, typename detail::first<L...>::type>;
  /// @brief One layer's state: the layer's state type, or a variant of the listed layers' states.
  using state_type = std::conditional_t<mixed, std::variant<typename L::state_type...>,
                                        typename detail::first<L...>::type::state_type>;
  using kind_rule = std::size_t (*)(std::int64_t);

  layer_stack() = default;
  layer_stack(const model_config& c, std::int64_t n_layers, bool bidirectional, kind_rule kind = nullptr)
      : bias(nn::make_bias<Bias>(nn::bias_config{c.layer.attention.heads, c.relative_buckets, c.relative_max_distance,
                                                 bidirectional})),
        final_norm(c.d_model(), detail::final_eps(c)) {
    if (n_layers < 1) throw value_error("tformer::models: a stack needs at least one layer, got " + std::to_string(n_layers));
    layers.reserve(static_cast<std::size_t>(n_layers));
    for (std::int64_t i = 0; i < n_layers; ++i) {
      const nn::layer_config lc = c.layer_at(i);
      if constexpr (mixed) {
        const std::size_t k = kind ? kind(i) : static_cast<std::size_t>(i) % sizeof...(L);
        detail::with_index(std::index_sequence_for<L...>{}, k, [&](auto I) {
          layers.emplace_back(std::in_place_index<decltype(I)::value>, lc);
        });
      } else {
        layers.emplace_back(lc);
      }
    }
  }

  /// @brief The states of every layer, for batch sequences of up to capacity positions.
  std::vector<state_type> make_states(std::int64_t batch, std::int64_t capacity) const {
    std::vector<state_type> states;
    states.reserve(layers.size());
    for (const auto& l : layers) {
      if constexpr (mixed)
        detail::with_index(std::index_sequence_for<L...>{}, l.index(), [&](auto I) {
          states.emplace_back(std::in_place_index<decltype(I)::value>,
                              std::get<decltype(I)::value>(l).make_state(batch, capacity));
        });
      else
        states.push_back(l.make_state(batch, capacity));
    }
    return states;
  }

  /// @brief Calls f(i, layer) for every layer, with the layer as its own type.
  template <class F>
  void for_each_layer(F&& f) const {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if constexpr (mixed)
        std::visit([&](const auto& l) { f(i, l); }, layers[i]);
      else
        f(i, layers[i]);
    }
  }

  /// @brief Runs every layer on x in place; extra(i)... are passed on to layer i after its state.
  template <class... Extra>
  void forward(tensor_view<float> x, const nn::sequence_info& seq, const ops::attention_mask& mask,
               std::vector<state_type>* states, const Extra&... extra) const {
    if (states && states->size() != layers.size())
      throw shape_error("tformer::models: the state has " + std::to_string(states->size()) + " layers, the model " +
                        std::to_string(layers.size()));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if constexpr (mixed) {
        detail::with_index(std::index_sequence_for<L...>{}, layers[i].index(), [&](auto I) {
          constexpr std::size_t k = decltype(I)::value;
          auto* st = states ? std::get_if<k>(&(*states)[i]) : nullptr;
          if (states && !st) throw value_error("tformer::models: the state of layer " + std::to_string(i) + " is of another layer type");
          std::get<k>(layers[i]).forward(x, seq, mask, st, extra(i)..., bias);
        });
      } else {
        layers[i].forward(x, seq, mask, states ? &(*states)[i] : nullptr, extra(i)..., bias);
      }
    }
    final_norm.forward(x, x);
  }

  template <class V>
  void visit(V&& v, const std::string& prefix) {
    nn::visit_bias(bias, v, prefix + "relative_bias.");
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const std::string p = prefix + "layers." + std::to_string(i) + ".";
      if constexpr (mixed)
        std::visit([&](auto& l) { l.visit(v, p); }, layers[i]);
      else
        layers[i].visit(v, p);
    }
    final_norm.visit(v, prefix + "final_norm.");
  }

  std::vector<layer_type> layers;
  Bias bias;
  FinalNorm final_norm;
};

}  // namespace tformer::models
