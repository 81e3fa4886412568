// GPT-2 as a preset: a spec, the sizes read from a Hugging Face config.json, and the name map
// (io::hf_gpt2). Nothing a user could not write: it is models::decoder_lm<models::gpt2<...>> with a
// config filled from config.json.
//
//   io::hf_directory dir("gpt2");
//   auto lm = models::load_gpt2(dir);
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../io/hf_directory.hpp"
#include "../io/name_maps.hpp"
#include "../nn/layers.hpp"
#include "../quant/f32.hpp"
#include "config.hpp"
#include "decoder.hpp"

namespace tformer::models {

/// @brief GPT-2: learned positions, Pre-LN LayerNorm layers with a tanh-GELU MLP, a final
/// LayerNorm, the head tied to the token table. Weights: every linear's format; Embedding: the
/// tables' (and so the head's).
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = quant::f32>
struct gpt2 {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  using weights = Weights;
  using embedding_weights = Embedding;
  static constexpr bool tie_embeddings = true;
};

/// @brief The sizes of a Hugging Face GPT-2 config.json (model_type "gpt2"). Throws
/// io::config_error naming the file and the field for a missing, mistyped or unsupported field.
inline model_config gpt2_config(const io::json_fields& f) {
  if (f.has("model_type") && f.string("model_type") != "gpt2")
    f.fail("model_type", "is '" + f.string("model_type") + "', not 'gpt2'");
  if (const auto act = f.string_or("activation_function", "gelu_new"); act != "gelu_new" && act != "gelu_pytorch_tanh")
    f.fail("activation_function", "is '" + act + "': the GPT-2 preset runs 'gelu_new' (tanh GELU) only");
  if (f.boolean_or("reorder_and_upcast_attn", false))
    f.fail("reorder_and_upcast_attn", "is true, which is not supported");
  if (f.boolean_or("add_cross_attention", false)) f.fail("add_cross_attention", "is true, which is not supported");
  if (!f.boolean_or("tie_word_embeddings", true)) f.fail("tie_word_embeddings", "is false: the GPT-2 preset ties its head");
  model_config c;
  c.vocab = f.integer_at_least("vocab_size", 1);
  c.layers = f.integer_at_least("n_layer", 1);
  c.max_positions = f.integer_at_least("n_positions", 1);
  const std::int64_t d = f.integer_at_least("n_embd", 1), heads = f.integer_at_least("n_head", 1);
  if (d % heads != 0) f.fail("n_head", "is " + std::to_string(heads) + ", which does not divide n_embd " + std::to_string(d));
  c.layer.attention = {.d_model = d, .heads = heads};
  if (!f.boolean_or("scale_attn_weights", true)) c.layer.attention.scale = 1.0f;
  c.layer.ffn = {.d_model = d, .d_ff = f.integer_at_least_or("n_inner", 1, 4 * d), .bias = true};
  const double eps = f.number_or("layer_norm_epsilon", 1e-5);
  if (!(eps > 0)) f.fail("layer_norm_epsilon", "must be > 0");
  c.layer.norm_eps = static_cast<float>(eps);
  if (f.boolean_or("scale_attn_by_inverse_layer_idx", false)) {  // layer i's logits also divided by i + 1
    const float base = c.layer.attention.scale.value_or(1.0f / std::sqrt(static_cast<float>(d / heads)));
    c.layer_rule = [base](std::int64_t i, nn::layer_config& l) { l.attention.scale = base / static_cast<float>(i + 1); };
  }
  return c;
}

/// @brief gpt2_config of a directory's config.json.
inline model_config gpt2_config(const io::hf_directory& dir) { return gpt2_config(dir.fields()); }

/// @brief io::hf_gpt2 with the prefix the directory's tensor names have ("transformer." or none).
inline io::name_map hf_gpt2_map(const io::hf_directory& dir) {
  return io::hf_gpt2(dir.has_prefix("transformer.") ? "transformer." : "");
}

/// @brief A GPT-2 model read and loaded from a Hugging Face directory in one call.
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = quant::f32>
decoder_lm<gpt2<Weights, Embedding>> load_gpt2(const io::hf_directory& dir) {
  decoder_lm<gpt2<Weights, Embedding>> m(gpt2_config(dir));
  io::load_checkpoint(m, dir, hf_gpt2_map(dir));
  return m;
}

}  // namespace tformer::models
