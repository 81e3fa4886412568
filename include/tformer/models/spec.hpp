// What a user writes to define a model: a spec struct of types (the policies) and a model_config
// of sizes (runtime data, models/config.hpp). A spec names
//   layer              the layer type of every layer, e.g. nn::transformer_layer<nn::pre_ln, nn::rms_norm,
//                      nn::multi_head_attention<nn::rotary>, nn::gated_mlp<simd::act::silu>>
//   layers             instead of layer: models::layer_types<L0, L1, ...>, layer i of type
//                      layer_type(i) (a static member function of the spec; default i % count),
//                      e.g. alternating local (sliding-window) and global attention layers
//   positions          absolute positions added to embeddings      default nn::no_positions
//   attention_bias     a bias shared by all layers of a stack        default ops::no_bias
//                      (nn::alibi_bias, nn::t5_relative_bias)
//   embed_norm         norm right after the embeddings (BERT)       default nn::no_norm
//   final_norm         norm after the last layer (Pre-LN models)    default nn::no_norm
//   tie_embeddings     LM head shares the token embedding table     default false
//   weights            weight format of every linear and table      default: as the layer types say,
//                                                                    quant::f32 for the tables
//   attention_weights, ffn_weights, embedding_weights, head_weights
//                      one format per role, each defaulting to `weights`
// An encoder-decoder spec names encoder_layer(s) and decoder_layer(s) instead of layer(s), and may say
//   separate_positions the decoder has its own positions and embed_norm   default false
//                      (BART, Marian); the token table stays shared
//   logits_bias        a bias [1, vocab] added to the logits             default false
//                      (BART's and Marian's final_logits_bias)
// Each member is checked with one readable static_assert line.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../nn/attention.hpp"
#include "../nn/attention_bias.hpp"
#include "../nn/layers.hpp"
#include "../nn/norm.hpp"
#include "../nn/positions.hpp"
#include "../quant/f32.hpp"
#include "../quant/format.hpp"
#include "config.hpp"

namespace tformer::models {

/// @brief A list of layer types for a mixed stack (spec member `layers`).
template <class... L>
struct layer_types {
  static constexpr std::size_t count = sizeof...(L);
};

/// @brief A layer usable in a self-attention stack (encoder or decoder-only).
template <class L>
concept self_attention_layer = std::constructible_from<L, const nn::layer_config&> &&
    nn::attention_state<typename L::state_type> &&
    requires(const L& l, tensor_view<float> x, const nn::sequence_info& s, const ops::attention_mask& m,
             typename L::state_type* st) {
      l.forward(x, s, m, st);
      { l.make_state(1, 1) } -> std::same_as<typename L::state_type>;
    };

/// @brief A layer usable in the decoder of an encoder-decoder.
template <class L>
concept cross_attention_layer = std::constructible_from<L, const nn::layer_config&> &&
    nn::attention_state<typename L::state_type> &&
    requires(const L& l, tensor_view<const float> m, nn::cross_kv& kv) { l.cross_attn.project_kv(m, kv); };

namespace detail {
// "no format chosen"
struct unset {};

template <class S> struct positions_of { using type = nn::no_positions; };
template <class S> requires requires { typename S::positions; } struct positions_of<S> { using type = typename S::positions; };
template <class S> struct bias_of { using type = ops::no_bias; };
template <class S> requires requires { typename S::attention_bias; } struct bias_of<S> { using type = typename S::attention_bias; };
template <class S> struct embed_norm_of { using type = nn::no_norm; };
template <class S> requires requires { typename S::embed_norm; } struct embed_norm_of<S> { using type = typename S::embed_norm; };
template <class S> struct final_norm_of { using type = nn::no_norm; };
template <class S> requires requires { typename S::final_norm; } struct final_norm_of<S> { using type = typename S::final_norm; };
template <class S> constexpr bool tied_of() {
  if constexpr (requires { S::tie_embeddings; }) return S::tie_embeddings;
  else return false;
}
template <class S> constexpr bool separate_positions_of() {
  if constexpr (requires { S::separate_positions; }) return S::separate_positions;
  else return false;
}
template <class S> constexpr bool logits_bias_of() {
  if constexpr (requires { S::logits_bias; }) return S::logits_bias;
  else return false;
}

// formats per role: the role's member, else `weights`, else Default
template <class S, class Default> struct weights_of { using type = Default; };
template <class S, class Default> requires requires { typename S::weights; } struct weights_of<S, Default> { using type = typename S::weights; };
template <class S, class D> struct attention_weights_of { using type = typename weights_of<S, D>::type; };
template <class S, class D> requires requires { typename S::attention_weights; } struct attention_weights_of<S, D> { using type = typename S::attention_weights; };
template <class S, class D> struct ffn_weights_of { using type = typename weights_of<S, D>::type; };
template <class S, class D> requires requires { typename S::ffn_weights; } struct ffn_weights_of<S, D> { using type = typename S::ffn_weights; };
template <class S, class D> struct embedding_weights_of { using type = typename weights_of<S, D>::type; };
template <class S, class D> requires requires { typename S::embedding_weights; } struct embedding_weights_of<S, D> { using type = typename S::embedding_weights; };
template <class S, class D> struct head_weights_of { using type = typename weights_of<S, D>::type; };
template <class S, class D> requires requires { typename S::head_weights; } struct head_weights_of<S, D> { using type = typename S::head_weights; };

// Layer L with the formats FA (attention) and FF (feed-forward); `unset` keeps what L says.
template <class L, class FA, class FF>
struct layer_with_formats {
  static_assert((std::is_same_v<FA, unset> && std::is_same_v<FF, unset>) ||
                    requires { typename L::template with_weights<quant::f32, quant::f32>; },
                "spec weights: this layer type cannot change its weight formats (it has no with_weights)");
  using type = L;
};
template <class L, class FA, class FF>
  requires(!(std::is_same_v<FA, unset> && std::is_same_v<FF, unset>)) &&
          requires { typename L::template with_weights<quant::f32, quant::f32>; }
struct layer_with_formats<L, FA, FF> {
  using attention = std::conditional_t<std::is_same_v<FA, unset>, typename L::attention_format, FA>;
  using ffn = std::conditional_t<std::is_same_v<FF, unset>, typename L::ffn_format, FF>;
  static_assert(quant::weight_format<attention>, "spec::attention_weights / weights must be a weight format (quant::f32, ...)");
  static_assert(quant::weight_format<ffn>, "spec::ffn_weights / weights must be a weight format (quant::f32, ...)");
  using type = typename L::template with_weights<attention, ffn>;
};

// A spec's layer member (a type or layer_types<...>) as layer_types<...> with the spec's formats.
template <class L, class FA, class FF>
struct stack_layers {
  using type = layer_types<typename layer_with_formats<L, FA, FF>::type>;
};
template <class... L, class FA, class FF>
struct stack_layers<layer_types<L...>, FA, FF> {
  using type = layer_types<typename layer_with_formats<L, FA, FF>::type...>;
};

// The spec's layer_type(i) rule, or cycling through the list.
template <class S, std::size_t N>
std::size_t layer_kind(std::int64_t i) {
  if constexpr (requires { { S::layer_type(i) } -> std::convertible_to<std::size_t>; }) {
    const std::size_t k = static_cast<std::size_t>(S::layer_type(i));
    if (k >= N)
      throw value_error("tformer::models: spec::layer_type(" + std::to_string(i) + ") = " + std::to_string(k) +
                        " is not an index of its " + std::to_string(N) + " layer types");
    return k;
  } else {
    return static_cast<std::size_t>(i) % N;
  }
}
}  // namespace detail

/// @brief A spec's types with defaults filled in.
template <class S>
struct spec_traits {
  using positions = typename detail::positions_of<S>::type;
  using attention_bias = typename detail::bias_of<S>::type;
  using embed_norm = typename detail::embed_norm_of<S>::type;
  using final_norm = typename detail::final_norm_of<S>::type;
  static constexpr bool tie_embeddings = detail::tied_of<S>();
  static constexpr bool separate_positions = detail::separate_positions_of<S>();
  static constexpr bool logits_bias = detail::logits_bias_of<S>();
  using attention_weights = typename detail::attention_weights_of<S, detail::unset>::type;
  using ffn_weights = typename detail::ffn_weights_of<S, detail::unset>::type;
  using embedding_weights = typename detail::embedding_weights_of<S, quant::f32>::type;
  using head_weights = std::conditional_t<tie_embeddings, embedding_weights, typename detail::head_weights_of<S, quant::f32>::type>;
  /// @brief The stack of spec member L (a layer type or layer_types<...>) in the spec's formats.
  template <class L>
  using stack_layers = typename detail::stack_layers<L, attention_weights, ffn_weights>::type;
  /// @brief The type index of layer i in a list of N layer types.
  template <std::size_t N>
  static std::size_t layer_kind(std::int64_t i) {
    return detail::layer_kind<S, N>(i);
  }

  static_assert(nn::absolute_positions<positions>, "spec::positions must be an absolute-position policy (nn::no_positions, "
                                                   "nn::learned_positions, nn::sinusoidal_positions)");
  static_assert(nn::stack_bias<attention_bias>, "spec::attention_bias must be ops::no_bias, nn::alibi_bias or "
                                                "nn::t5_relative_bias");
  static_assert(nn::norm<embed_norm> && nn::norm<final_norm>, "spec::embed_norm / final_norm must be a norm policy");
  static_assert(quant::weight_format<embedding_weights>, "spec::embedding_weights / weights must be a weight format");
  static_assert(quant::weight_format<head_weights>, "spec::head_weights / weights must be a weight format");
  static_assert(!tie_embeddings || !requires { typename S::head_weights; } ||
                    std::is_same_v<typename detail::head_weights_of<S, quant::f32>::type, embedding_weights>,
                "spec::head_weights must equal the embedding format when tie_embeddings is true (one shared table)");
};

/// @brief The layer member of a decoder-only or encoder spec: `layer` or `layers`.
template <class S>
struct spec_layer {
  static_assert(requires { typename S::layer; } != requires { typename S::layers; },
                "a spec names exactly one of `layer` (one type) and `layers` (models::layer_types<...>)");
};
template <class S>
  requires requires { typename S::layer; }
struct spec_layer<S> {
  using type = typename S::layer;
};
template <class S>
  requires requires { typename S::layers; } && (!requires { typename S::layer; })
struct spec_layer<S> {
  using type = typename S::layers;
};

/// @brief The encoder (Side = 0) or decoder (Side = 1) layer member of an encoder-decoder spec.
template <class S, int Side>
struct spec_side_layer {
  static_assert(Side == 0 ? requires { typename S::encoder_layer; } || requires { typename S::encoder_layers; }
                          : requires { typename S::decoder_layer; } || requires { typename S::decoder_layers; },
                "an encoder-decoder spec names encoder_layer(s) and decoder_layer(s)");
};
template <class S>
  requires requires { typename S::encoder_layer; }
struct spec_side_layer<S, 0> {
  using type = typename S::encoder_layer;
};
template <class S>
  requires requires { typename S::encoder_layers; } && (!requires { typename S::encoder_layer; })
struct spec_side_layer<S, 0> {
  using type = typename S::encoder_layers;
};
template <class S>
  requires requires { typename S::decoder_layer; }
struct spec_side_layer<S, 1> {
  using type = typename S::decoder_layer;
};
template <class S>
  requires requires { typename S::decoder_layers; } && (!requires { typename S::decoder_layer; })
struct spec_side_layer<S, 1> {
  using type = typename S::decoder_layers;
};

}  // namespace tformer::models
