// The Llama family as a preset (Llama, SmolLM2, Mistral without a window): a spec, the sizes read
// from a file's metadata, and the name map (io::gguf_llama). Nothing a user could not write: it is
// models::decoder_lm<models::llama<...>> with a config filled from llama.* keys.
//
//   io::gguf_file f("SmolLM2-135M-Instruct.Q4_1.gguf");
//   models::decoder_lm<models::llama<quant::q4_1, quant::q8_0, true>> lm(models::llama_config(f));
//   io::load_gguf(lm, f, io::gguf_llama());
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../io/gguf.hpp"
#include "../nn/layers.hpp"
#include "../nn/rotary.hpp"
#include "../quant/f32.hpp"
#include "config.hpp"

namespace tformer::models {

/// @brief Llama: RMSNorm Pre-LN, grouped-query attention with rotary positions, SwiGLU, a final
/// RMSNorm. Weights: the format of every linear (and of an untied head); Embedding: the token
/// table's (and the tied head's); Tied: the head shares the token table.
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = Weights, bool Tied = false>
struct llama {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
  using weights = Weights;
  using embedding_weights = Embedding;
  static constexpr bool tie_embeddings = Tied;
};

/// @brief The sizes of a llama-architecture GGUF (general.architecture "llama"; llama.* keys). The
/// GGUF's attn_q / attn_k rows are permuted for adjacent rotary pairs, so rotary is interleaved.
/// Throws io_error naming the file and key for a missing or contradictory field.
inline model_config llama_config(const io::gguf_file& f) {
  const std::string arch = f.get_string("general.architecture");
  auto fail = [&](const std::string& why) { throw io_error("tformer: gguf file '" + f.path() + "': " + why); };
  if (arch != "llama") fail("general.architecture is '" + arch + "', not 'llama'");
  auto int_or = [&](const char* key, std::int64_t fallback) { return f.find_metadata(key) ? f.get_int(key) : fallback; };
  model_config c;
  c.layers = f.get_int("llama.block_count");
  const std::int64_t d = f.get_int("llama.embedding_length");
  const std::int64_t heads = f.get_int("llama.attention.head_count");
  const std::int64_t kv = int_or("llama.attention.head_count_kv", heads);
  if (d < 1 || heads < 1 || d % heads != 0)
    fail("llama.embedding_length (" + std::to_string(d) + ") is not a multiple of llama.attention.head_count (" +
         std::to_string(heads) + ")");
  const std::int64_t head_dim = int_or("llama.attention.key_length", d / heads);
  if (int_or("llama.attention.value_length", head_dim) != head_dim)
    fail("llama.attention.value_length differs from llama.attention.key_length");
  const auto* table = f.find("token_embd.weight");
  if (!table) fail("there is no tensor 'token_embd.weight'");
  c.vocab = int_or("llama.vocab_size", table->rows());
  if (table->rows() != c.vocab)
    fail("llama.vocab_size is " + std::to_string(c.vocab) + " but token_embd.weight has " + std::to_string(table->rows()) +
         " rows");
  c.layer.attention = {.d_model = d, .heads = heads, .kv_heads = kv, .head_dim = head_dim, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = d, .d_ff = f.get_int("llama.feed_forward_length"), .bias = false};
  c.layer.norm_eps = static_cast<float>(f.get_float("llama.attention.layer_norm_rms_epsilon"));
  const double base = f.find_metadata("llama.rope.freq_base") ? f.get_float("llama.rope.freq_base") : 10000.0;
  const std::int64_t rope_dim = int_or("llama.rope.dimension_count", head_dim);
  if (rope_dim != head_dim) fail("llama.rope.dimension_count (" + std::to_string(rope_dim) + ") differs from the head dim");
  if (const auto* scaling = f.find_metadata("llama.rope.scaling.type");
      scaling && !(scaling->type == io::gguf_type::string && std::get<std::string>(scaling->data) == "none"))
    fail("llama.rope.scaling.type is set: rope scaling is not supported yet");
  c.layer.rope = nn::rotary{.dim = 0, .base = static_cast<float>(base), .interleaved = true};
  if (f.find_metadata("llama.attention.sliding_window")) fail("llama.attention.sliding_window: use a windowed preset");
  return c;
}

/// @brief True when the GGUF has no output.weight: the head is the token table (tie_embeddings).
inline bool gguf_tied_head(const io::gguf_file& f) { return f.find("output.weight") == nullptr; }

}  // namespace tformer::models
