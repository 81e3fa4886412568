// BART and Marian as presets: post-LN LayerNorm layers with biases, a feed-forward of the config's
// activation (BART: GELU; Marian: swish), one token table shared by both sides and by the head,
// per-side absolute positions (BART: learned, two unused rows before position 0; Marian: split
// sinusoids), BART's layernorm_embedding on each side, embeddings scaled by sqrt(d_model) when
// scale_embedding, and final_logits_bias added to the logits. A spec, a config reader and the name
// map (io::hf_bart); nothing a user could not write.
//
//   io::hf_directory dir("bart-base");
//   auto m = models::load_bart<models::bart<>>(dir);           // activation_function "gelu"
//   auto mt = models::load_bart<models::marian<>>(io::hf_directory("opus-mt-en-de"));  // "swish"
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/error.hpp"
#include "../io/hf_directory.hpp"
#include "../io/name_maps.hpp"
#include "../nn/layers.hpp"
#include "../nn/positions.hpp"
#include "../quant/f32.hpp"
#include "../simd/activation.hpp"
#include "config.hpp"
#include "encoder_decoder.hpp"

namespace tformer::models {

/// @brief BART (Marian = false) or Marian (true) with feed-forward activation Act.
template <class Act = simd::act::gelu, bool Marian = false, quant::weight_format Weights = quant::f32,
          quant::weight_format Embedding = quant::f32>
struct bart {
  using activation = Act;
  using ffn = nn::mlp<Act>;
  using encoder_layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, ffn>;
  using decoder_layer = nn::cross_decoder_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, ffn>;
  using positions = std::conditional_t<Marian, nn::split_sinusoidal_positions, nn::learned_positions>;
  using embed_norm = std::conditional_t<Marian, nn::no_norm, nn::layer_norm>;
  using weights = Weights;
  using embedding_weights = Embedding;
  static constexpr bool tie_embeddings = true;
  static constexpr bool separate_positions = true;
  static constexpr bool logits_bias = true;
  static constexpr bool marian = Marian;
};

/// @brief Marian (MarianMTModel): BART's layers with split sinusoidal positions and no
/// layernorm_embedding; swish by default.
template <class Act = simd::act::silu, quant::weight_format Weights = quant::f32, quant::weight_format Embedding = quant::f32>
using marian = bart<Act, true, Weights, Embedding>;

namespace detail {
// True when transformers' activation_function name runs as Act.
template <class Act>
bool hf_activation_is(const std::string& name) {
  if constexpr (std::is_same_v<Act, simd::act::gelu>) return name == "gelu";
  else if constexpr (std::is_same_v<Act, simd::act::gelu_tanh>) return name == "gelu_new" || name == "gelu_pytorch_tanh";
  else if constexpr (std::is_same_v<Act, simd::act::silu>) return name == "silu" || name == "swish";
  else if constexpr (std::is_same_v<Act, simd::act::relu>) return name == "relu";
  else return false;
}

// model_type "bart" or "marian"; true for marian.
inline bool bart_is_marian(const io::json_fields& f) {
  const std::string type = f.string("model_type");
  if (type != "bart" && type != "marian") f.fail("model_type", "is '" + type + "', not 'bart' or 'marian'");
  return type == "marian";
}

// The encoder's and decoder's values of a size that tformer keeps once: they must agree.
inline std::int64_t same_both_sides(const io::json_fields& f, const std::string& encoder_key, const std::string& decoder_key) {
  const std::int64_t e = f.integer_at_least(encoder_key, 1), d = f.integer_at_least(decoder_key, 1);
  if (e != d)
    f.fail(decoder_key, "is " + std::to_string(d) + " but " + encoder_key + " is " + std::to_string(e) +
                            ": the preset runs one size on both sides");
  return e;
}
}  // namespace detail

/// @brief The sizes of a Hugging Face BART or Marian config.json (model_type "bart" or "marian").
/// Throws io::config_error naming the file and the field for a missing, mistyped, unsupported or
/// contradictory field.
inline model_config bart_config(const io::json_fields& f) {
  const bool is_marian = detail::bart_is_marian(f);
  if (!f.boolean_or("tie_word_embeddings", true)) f.fail("tie_word_embeddings", "is false: the BART preset ties its head");
  model_config c;
  c.vocab = f.integer_at_least("vocab_size", 1);
  if (is_marian) {
    if (!f.boolean_or("share_encoder_decoder_embeddings", true))
      f.fail("share_encoder_decoder_embeddings", "is false: the Marian preset shares one table between both sides");
    if (f.integer_at_least_or("decoder_vocab_size", 1, c.vocab) != c.vocab)
      f.fail("decoder_vocab_size", "differs from vocab_size: the Marian preset shares one table between both sides");
  }
  c.layers = f.integer_at_least("encoder_layers", 1);
  c.decoder_layers = f.integer_at_least("decoder_layers", 1);
  c.max_positions = f.integer_at_least_or("max_position_embeddings", 1, 1024);  // BartConfig's and MarianConfig's default
  c.position_offset = is_marian ? 0 : 2;  // BartLearnedPositionalEmbedding's offset
  const std::int64_t d = f.integer_at_least("d_model", 1);
  const std::int64_t heads = detail::same_both_sides(f, "encoder_attention_heads", "decoder_attention_heads");
  if (d % heads != 0)
    f.fail("encoder_attention_heads", "is " + std::to_string(heads) + ", which does not divide d_model " + std::to_string(d));
  c.layer.attention = {.d_model = d, .heads = heads, .qkv_bias = true, .out_bias = true};
  c.layer.ffn = {.d_model = d, .d_ff = detail::same_both_sides(f, "encoder_ffn_dim", "decoder_ffn_dim"), .bias = true};
  c.layer.norm_eps = 1e-5f;  // torch.nn.LayerNorm's default, which both models use
  // absent: false, as in BartConfig and MarianConfig (Marian checkpoints write true)
  c.embed_scale = f.boolean_or("scale_embedding", false) ? std::sqrt(static_cast<float>(d)) : 1.0f;
  return c;
}

/// @brief bart_config of a directory's config.json.
inline model_config bart_config(const io::hf_directory& dir) { return bart_config(dir.fields()); }

/// @brief The config's activation_function; absent, "gelu" (BartConfig's and MarianConfig's
/// default; Marian checkpoints write "swish").
inline std::string bart_activation(const io::json_fields& f) {
  (void)detail::bart_is_marian(f);
  return f.string_or("activation_function", "gelu");
}

/// @brief A BART or Marian model read and loaded from a Hugging Face directory in one call; Spec
/// is a models::bart<Act, Marian, ...> whose model type and activation must match the config
/// (io::config_error naming the field otherwise).
template <class Spec = bart<>>
encoder_decoder<Spec> load_bart(const io::hf_directory& dir) {
  const auto f = dir.fields();
  if (detail::bart_is_marian(f) != Spec::marian)
    f.fail("model_type", "is '" + f.string("model_type") + "' but the model type is " + (Spec::marian ? "Marian" : "BART"));
  if (const std::string act = bart_activation(f); !detail::hf_activation_is<typename Spec::activation>(act))
    f.fail("activation_function", "is '" + act + "' but the model type runs " + Spec::activation::name);
  encoder_decoder<Spec> m(bart_config(f));
  io::load_checkpoint(m, dir, io::hf_bart(Spec::marian));
  return m;
}

}  // namespace tformer::models
