// T5 as a preset: v1.0 (ReLU feed-forward, head tied to the shared table with the decoder output
// rescaled by d_model^-0.5) and v1.1 / Flan-T5 (gated-GELU feed-forward, own head): a spec, the
// sizes read from a Hugging Face config.json, and the name map (io::hf_t5). Nothing a user could
// not write: it is models::encoder_decoder<models::t5<...>> with a config filled from config.json;
// the rescale is folded into the decoder's final RMSNorm weight when loading (load_t5).
//
//   io::hf_directory dir("t5-small");
//   auto m = models::load_t5<t5<false, true>>(dir);   // Gated = t5_gated(dir), Tied = t5_tied(dir)
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/error.hpp"
#include "../io/hf_directory.hpp"
#include "../io/name_maps.hpp"
#include "../nn/layers.hpp"
#include "../nn/t5_relative_bias.hpp"
#include "../quant/f32.hpp"
#include "config.hpp"
#include "encoder_decoder.hpp"

namespace tformer::models {

/// @brief T5: RMSNorm Pre-LN layers without biases, unscaled attention logits, relative position
/// buckets, final RMSNorms. Gated: v1.1's gated tanh-GELU feed-forward, else v1.0's ReLU MLP;
/// Tied: the head is the shared token table.
template <bool Gated = true, bool Tied = false, quant::weight_format Weights = quant::f32,
          quant::weight_format Embedding = quant::f32>
struct t5 {
  using ffn = std::conditional_t<Gated, nn::gated_mlp<simd::act::gelu_tanh>, nn::mlp<simd::act::relu>>;
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, ffn>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, ffn>;
  using attention_bias = nn::t5_relative_bias;
  using final_norm = nn::rms_norm;
  using weights = Weights;
  using embedding_weights = Embedding;
  static constexpr bool tie_embeddings = Tied;
  static constexpr bool gated = Gated;
};

namespace detail {
inline void check_t5_type(const io::json_fields& f) {
  if (f.has("model_type") && f.string("model_type") != "t5") f.fail("model_type", "is '" + f.string("model_type") + "', not 't5'");
}
}  // namespace detail

/// @brief True for a gated feed-forward (feed_forward_proj "gated-gelu"), false for "relu" (the
/// default); io::config_error naming the field for any other.
inline bool t5_gated(const io::json_fields& f) {
  detail::check_t5_type(f);
  const auto proj = f.string_or("feed_forward_proj", "relu");
  if (proj == "relu") return false;
  if (proj == "gated-gelu") return true;
  f.fail("feed_forward_proj", "is '" + proj + "': the T5 preset runs 'relu' (v1.0) and 'gated-gelu' (v1.1)");
}

/// @brief True when the head is the shared table: tie_word_embeddings, true when absent (as
/// transformers' T5Config).
inline bool t5_tied(const io::json_fields& f) {
  detail::check_t5_type(f);
  return f.boolean_or("tie_word_embeddings", true);
}

/// @brief The factor on the decoder's output before the head: d_model^-0.5 when transformers 5's
/// scale_decoder_outputs is true (or, in 4.x configs without it, when the head is tied), else 1.
inline float t5_decoder_output_scale(const io::json_fields& f) {
  const bool scale = f.has("scale_decoder_outputs") ? f.boolean("scale_decoder_outputs") : t5_tied(f);
  return scale ? 1.0f / std::sqrt(static_cast<float>(f.integer_at_least("d_model", 1))) : 1.0f;
}

/// @brief The sizes of a Hugging Face T5 config.json (model_type "t5"). Throws io::config_error
/// naming the file and the field for a missing, mistyped or unsupported field.
inline model_config t5_config(const io::json_fields& f) {
  detail::check_t5_type(f);
  (void)t5_gated(f);
  model_config c;
  c.vocab = f.integer_at_least("vocab_size", 1);
  c.layers = f.integer_at_least("num_layers", 1);
  c.decoder_layers = f.integer_at_least_or("num_decoder_layers", 1, c.layers);
  c.relative_buckets = f.integer_at_least_or("relative_attention_num_buckets", 2, 32);
  c.relative_max_distance = f.integer_at_least_or("relative_attention_max_distance", 1, 128);
  const std::int64_t d = f.integer_at_least("d_model", 1);
  c.layer.attention = {.d_model = d, .heads = f.integer_at_least("num_heads", 1), .head_dim = f.integer_at_least("d_kv", 1),
                       .qkv_bias = false, .out_bias = false, .scale = 1.0f};
  c.layer.ffn = {.d_model = d, .d_ff = f.integer_at_least("d_ff", 1), .bias = false};
  const double eps = f.number_or("layer_norm_epsilon", 1e-6);
  if (!(eps > 0)) f.fail("layer_norm_epsilon", "must be > 0");
  c.layer.norm_eps = static_cast<float>(eps);
  return c;
}

/// @brief t5_config of a directory's config.json.
inline model_config t5_config(const io::hf_directory& dir) { return t5_config(dir.fields()); }

/// @brief A T5 model read and loaded from a Hugging Face directory in one call; Spec is a
/// models::t5<Gated, Tied, ...> whose Gated and Tied must match the config (io::config_error
/// naming the field otherwise). The decoder output rescale is multiplied into the decoder's final
/// norm weight.
template <class Spec = t5<>>
encoder_decoder<Spec> load_t5(const io::hf_directory& dir) {
  const auto f = dir.fields();
  if (t5_gated(f) != Spec::gated)
    f.fail("feed_forward_proj", std::string("is '") + f.string_or("feed_forward_proj", "relu") + "' but the model type has a " +
                                    (Spec::gated ? "gated" : "ReLU") + " feed-forward");
  if (t5_tied(f) != Spec::tie_embeddings)
    f.fail("tie_word_embeddings", std::string("is ") + (Spec::tie_embeddings ? "false" : "true") + " but the model type asked for a" +
                                      (Spec::tie_embeddings ? " tied" : "n untied") + " head");
  encoder_decoder<Spec> m(t5_config(f));
  io::load_checkpoint(m, dir, io::hf_t5(Spec::gated, Spec::tie_embeddings));
  const float scale = t5_decoder_output_scale(f);
  if (scale != 1.0f)
    for (std::int64_t i = 0; i < m.decoder.final_norm.weight.numel(); ++i) m.decoder.final_norm.weight.data()[i] *= scale;
  return m;
}

}  // namespace tformer::models
