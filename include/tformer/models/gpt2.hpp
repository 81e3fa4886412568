// GPT-2 as a preset: a spec, the sizes read from a Hugging Face config.json or from a GGUF file's
// gpt2.* metadata, and the name maps (io::hf_gpt2, io::gguf_gpt2). Nothing a user could not write:
// it is models::decoder_lm<models::gpt2<...>> with a config filled from config.json or the GGUF.
//
//   io::hf_directory dir("gpt2");
//   auto lm = models::load_gpt2(dir);
//
//   io::gguf_file f("gpt2.Q8_0.gguf");                                   // convert_hf_to_gguf.py
//   models::decoder_lm<models::gpt2<quant::q8_0, quant::q8_0>> lm(models::gpt2_config(f));
//   io::load_gguf(lm, f, io::gguf_gpt2());                               // Q8_0 bytes as they are
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "../core/error.hpp"
#include "../io/gguf.hpp"
#include "../io/gguf_hparams.hpp"
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

/// @brief The sizes of a gpt2-architecture GGUF as llama.cpp's converter writes it (gpt2.* keys:
/// block_count, context_length, embedding_length, feed_forward_length, attention.head_count,
/// attention.layer_norm_epsilon; the vocabulary is token_embd's rows). The head is tied: an
/// output.weight, when the file has one, must be token_embd.weight's copy. Throws io_error naming
/// the file and the key or tensor for a missing or contradictory field.
inline model_config gpt2_config(const io::gguf_file& f) {
  const io::gguf_hparams h(f, {"gpt2"});
  model_config c;
  c.layers = h.integer_at_least("block_count", 1);
  c.max_positions = h.positions();
  c.vocab = h.vocab();
  const std::int64_t d = h.integer_at_least("embedding_length", 1), heads = h.integer_at_least("attention.head_count", 1);
  h.check_divides("embedding_length", d, "attention.head_count", heads);
  if (h.integer_or("attention.head_count_kv", heads) != heads)
    h.fail_key("attention.head_count_kv", "differs from " + h.key("attention.head_count") + ": GPT-2 has no grouped-query attention");
  c.layer.attention = {.d_model = d, .heads = heads};
  c.layer.ffn = {.d_model = d, .d_ff = h.integer_at_least("feed_forward_length", 1), .bias = true};
  c.layer.norm_eps = static_cast<float>(h.positive("attention.layer_norm_epsilon"));
  if (const auto* out = f.find("output.weight")) {  // llama.cpp's loader would use it as an untied head
    const auto& table = f.at("token_embd.weight");
    const auto a = f.bytes(*out), b = f.bytes(table);
    if (out->ggml_type != table.ggml_type || out->shape != table.shape || a.size() != b.size() ||
        (!a.empty() && std::memcmp(a.data(), b.data(), a.size()) != 0))
      h.fail("tensor 'output.weight' differs from 'token_embd.weight': the GPT-2 preset ties its head");
  }
  return c;
}

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
