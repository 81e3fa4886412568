// The Llama family as a preset (Llama, SmolLM2, Mistral, Qwen2): a spec, the sizes read from a
// GGUF file's metadata (general.architecture "llama" or "qwen2") or from a Hugging Face
// config.json, and the name maps (io::gguf_llama, io::gguf_qwen2, io::hf_llama). Nothing a user
// could not write: it is models::decoder_lm<models::llama<...>> with a config filled from llama.* /
// qwen2.* keys or config.json.
//
//   io::gguf_file f("SmolLM2-135M-Instruct.Q4_1.gguf");          // or a qwen2 GGUF
//   models::decoder_lm<models::llama<quant::q4_1, quant::q8_0, true>> lm(models::llama_config(f));
//   io::load_gguf(lm, f, io::gguf_llama());                      // Tied: gguf_tied_head(f)
//
//   io::hf_directory dir("Qwen2-0.5B");                       // model_type llama, mistral or qwen2
//   auto lm = models::load_llama<quant::f32, quant::f32, true>(dir);  // Tied: hf_tied_head(dir)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/gguf.hpp"
#include "../io/gguf_hparams.hpp"
#include "../io/hf_directory.hpp"
#include "../io/name_maps.hpp"
#include "../nn/layers.hpp"
#include "../nn/rope_scaling.hpp"
#include "../nn/rotary.hpp"
#include "../quant/f32.hpp"
#include "config.hpp"
#include "decoder.hpp"

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

/// @brief The sizes of a Llama-family GGUF as llama.cpp's converter writes it: general.architecture
/// "llama" (llama.* keys; attn_q / attn_k rows permuted for adjacent rotary pairs, so rotary is
/// interleaved) or "qwen2" (qwen2.* keys; rows in Hugging Face's order, run by llama.cpp with NEOX
/// rotary: rotate-half). q/k/v and output biases are on when blk.0 has them (Qwen2; Llama's
/// attention_bias). Scaled rotary: rope.scaling.type "linear", and Llama 3's rope_freqs.weight.
/// Throws io_error naming the file and key for a missing or contradictory field, other rope
/// scaling (YaRN), a sliding window (llama.cpp's qwen2 converter writes none), or a fused attn_qkv.
inline model_config llama_config(const io::gguf_file& f) {
  const io::gguf_hparams h(f, {"llama", "qwen2"});
  model_config c;
  c.layers = h.integer_at_least("block_count", 1);
  const std::int64_t d = h.integer_at_least("embedding_length", 1);
  const std::int64_t heads = h.integer_at_least("attention.head_count", 1);
  const std::int64_t kv = h.integer_at_least_or("attention.head_count_kv", 1, heads);
  h.check_divides("embedding_length", d, "attention.head_count", heads);
  h.check_divides("attention.head_count", heads, "attention.head_count_kv", kv);
  const std::int64_t head_dim = h.integer_at_least_or("attention.key_length", 1, d / heads);
  if (head_dim % 2 != 0) h.fail("the head dim is " + std::to_string(head_dim) + ": rotary needs an even head dim");
  if (h.integer_or("attention.value_length", head_dim) != head_dim)
    h.fail_key("attention.value_length", "differs from " + h.key("attention.key_length") + " (" + std::to_string(head_dim) + ")");
  c.layer.ffn = {.d_model = d, .d_ff = h.integer_at_least("feed_forward_length", 1), .bias = false};
  c.layer.norm_eps = static_cast<float>(h.positive("attention.layer_norm_rms_epsilon"));
  const double base = h.number_or("rope.freq_base", 10000.0);
  if (!(base > 1.0)) h.fail_key("rope.freq_base", "is " + std::to_string(base) + ", expected > 1");
  const std::int64_t rope_dim = h.integer_or("rope.dimension_count", head_dim);
  if (rope_dim != head_dim)
    h.fail_key("rope.dimension_count", "(" + std::to_string(rope_dim) + ") differs from the head dim (" + std::to_string(head_dim) + ")");
  c.layer.rope = nn::rotary{.dim = 0, .base = static_cast<float>(base), .interleaved = h.arch() == "llama"};
  // scaled rotary: linear (rope.scaling.factor, or the older rope.scale_linear) and Llama 3's
  // per-frequency divisors in rope_freqs.weight (as llama.cpp applies them: theta / factor[i])
  const std::string scaling = h.has("rope.scaling.type") ? f.get_string(h.key("rope.scaling.type")) : "none";
  if (scaling == "linear") {
    const char* key = h.has("rope.scaling.factor") ? "rope.scaling.factor" : "rope.scale_linear";
    c.layer.rope.inv_freq = nn::rope_linear(head_dim, c.layer.rope.base, static_cast<float>(h.positive(key)));
  } else if (scaling != "none") {
    h.fail_key("rope.scaling.type", "is '" + scaling + "': tformer reads 'none' and 'linear' (and Llama 3's rope_freqs.weight)");
  }
  if (f.find("rope_freqs.weight")) {
    const tensor<float> divisors = f.load_float("rope_freqs.weight");
    if (divisors.numel() != head_dim / 2)
      h.fail("tensor 'rope_freqs.weight' has " + std::to_string(divisors.numel()) + " values for a rotary dim of " +
             std::to_string(head_dim) + " (expected " + std::to_string(head_dim / 2) + ")");
    if (c.layer.rope.inv_freq.empty()) c.layer.rope.inv_freq = nn::rope_inv_freq(head_dim, c.layer.rope.base);
    for (std::int64_t i = 0; i < divisors.numel(); ++i) {
      if (!(divisors.data()[i] > 0.0f))
        h.fail("tensor 'rope_freqs.weight' value " + std::to_string(i) + " is " + std::to_string(divisors.data()[i]) + ", expected > 0");
      c.layer.rope.inv_freq[static_cast<std::size_t>(i)] /= divisors.data()[i];
    }
  }
  if (h.has("attention.sliding_window")) h.fail_key("attention.sliding_window", "is set: use a windowed preset");
  if (f.find("blk.0.attn_qkv.weight"))
    h.fail("tensor 'blk.0.attn_qkv.weight': fused q/k/v (convert_hf_to_gguf.py --fuse-qkv) is not supported");
  c.vocab = h.vocab();
  c.layer.attention = {.d_model = d, .heads = heads, .kv_heads = kv, .head_dim = head_dim,
                       .qkv_bias = f.find("blk.0.attn_q.bias") != nullptr, .out_bias = f.find("blk.0.attn_output.bias") != nullptr};
  return c;
}

/// @brief True when the GGUF has no output.weight: the head is the token table (tie_embeddings).
inline bool gguf_tied_head(const io::gguf_file& f) { return f.find("output.weight") == nullptr; }

// ---- Hugging Face config.json ---------------------------------------------------------------

namespace detail {

// The rotary positions of a config: the base from transformers 5's rope_parameters {rope_theta,
// rope_type, ...} or 4.x's rope_theta and rope_scaling {type or rope_type, ...}; rope types
// "default", "linear", "llama3" and "yarn" (nn/rope_scaling.hpp). rope_dim: the rotary dim (0: the
// head's), head_dim: the head's.
inline nn::rotary hf_rotary(const io::json_fields& f, std::int64_t rope_dim, std::int64_t head_dim) {
  const auto params = f.object_or_none("rope_parameters");
  const auto scaling = f.object_or_none("rope_scaling");
  auto type_field = [](const io::json_fields& o) { return std::string(o.has("rope_type") ? "rope_type" : "type"); };
  auto type_of = [&](const io::json_fields& o) { return o.string_or(type_field(o), "default"); };
  if (params && scaling && type_of(*params) != type_of(*scaling))
    scaling->fail(type_field(*scaling), "is '" + type_of(*scaling) + "' but rope_parameters." + type_field(*params) + " is '" +
                                            type_of(*params) + "'");
  double base = f.number_or("rope_theta", 10000.0);
  if (params && params->has("rope_theta")) {
    const double b = params->number("rope_theta");
    if (f.has("rope_theta") && f.number("rope_theta") != b)
      f.fail("rope_theta", "is " + std::to_string(f.number("rope_theta")) + " but rope_parameters.rope_theta is " +
                               std::to_string(b));
    base = b;
  }
  if (!(base > 1.0)) f.fail(params && params->has("rope_theta") ? "rope_parameters.rope_theta" : "rope_theta", "must be > 1");
  nn::rotary r{.dim = rope_dim, .base = static_cast<float>(base), .interleaved = false};
  // the object holding the scaling: rope_parameters when it names a type, else rope_scaling
  const io::json_fields* o = params && (params->has("rope_type") || params->has("type") || !scaling) ? &*params
                             : scaling                                                           ? &*scaling
                                                                                                 : nullptr;
  if (!o) return r;
  const std::string type = type_of(*o);
  if (type == "default") return r;
  const std::int64_t dim = rope_dim > 0 ? rope_dim : head_dim;
  auto positive = [&](const char* key) {
    const double v = o->number(key);
    if (!(v > 0)) o->fail(key, "is " + std::to_string(v) + ", expected > 0");
    return v;
  };
  // the pretraining context: a top-level original_max_position_embeddings (Phi-3) first
  auto original = [&] {
    if (f.has("original_max_position_embeddings")) return f.integer_at_least("original_max_position_embeddings", 1);
    if (o->has("original_max_position_embeddings")) return o->integer_at_least("original_max_position_embeddings", 1);
    return f.integer_at_least("max_position_embeddings", 1);
  };
  if (type == "linear") {
    r.inv_freq = nn::rope_linear(dim, r.base, static_cast<float>(positive("factor")));
  } else if (type == "llama3") {
    const nn::llama3_scaling s{.factor = static_cast<float>(positive("factor")),
                               .low_freq_factor = static_cast<float>(positive("low_freq_factor")),
                               .high_freq_factor = static_cast<float>(positive("high_freq_factor")),
                               .original_max_positions = original()};
    if (!(s.high_freq_factor > s.low_freq_factor)) o->fail("high_freq_factor", "must exceed low_freq_factor");
    r.inv_freq = nn::rope_llama3(dim, r.base, s);
  } else if (type == "yarn") {
    nn::yarn_scaling s;
    s.original_max_positions = original();
    s.factor = o->has("factor") && !o->json().at("factor").is_null()
                   ? positive("factor")
                   : static_cast<double>(f.integer_at_least("max_position_embeddings", 1)) / static_cast<double>(s.original_max_positions);
    auto number = [&](const char* key, double fallback) {  // absent or null: the fallback
      return o->has(key) && !o->json().at(key).is_null() ? o->number(key) : fallback;
    };
    s.attention_factor = number("attention_factor", 0.0);
    s.mscale = number("mscale", 0.0);
    s.mscale_all_dim = number("mscale_all_dim", 0.0);
    s.beta_fast = number("beta_fast", 0.0) > 0 ? number("beta_fast", 0.0) : 32.0;  // transformers: `or 32`
    s.beta_slow = number("beta_slow", 0.0) > 0 ? number("beta_slow", 0.0) : 1.0;
    s.truncate = o->boolean_or("truncate", true);
    r.inv_freq = nn::rope_yarn(dim, r.base, s);
    r.attention_factor = static_cast<float>(s.attention());
  } else {
    o->fail(type_field(*o), "is '" + type + "': supported rope types are default, linear, llama3 and yarn ('dynamic' "
                                            "rescales with the sequence length, which tformer does not do)");
  }
  return r;
}

// Per-layer sliding windows (0: full attention) of a Llama-family config: transformers 5's
// layer_types, else Mistral's sliding_window on every layer, else Qwen2's use_sliding_window from
// max_window_layers on.
inline std::vector<std::int64_t> hf_windows(const io::json_fields& f, const std::string& type, std::int64_t layers) {
  std::vector<std::int64_t> w(static_cast<std::size_t>(layers), 0);
  auto window = [&] { return f.integer_at_least("sliding_window", 1); };
  if (const auto kinds = f.strings_or_none("layer_types")) {
    if (static_cast<std::int64_t>(kinds->size()) != layers)
      f.fail("layer_types", "has " + std::to_string(kinds->size()) + " entries for num_hidden_layers " + std::to_string(layers));
    for (std::size_t i = 0; i < kinds->size(); ++i) {
      if ((*kinds)[i] == "sliding_attention")
        w[i] = window();
      else if ((*kinds)[i] != "full_attention")
        f.fail("layer_types[" + std::to_string(i) + "]", "is '" + (*kinds)[i] + "': expected full_attention or sliding_attention");
    }
    return w;
  }
  if (type == "mistral" && f.has("sliding_window")) {
    for (auto& x : w) x = window();
  } else if (type == "qwen2" && f.boolean_or("use_sliding_window", false) && f.has("sliding_window")) {
    const std::int64_t from = f.integer_at_least_or("max_window_layers", 0, 28);
    for (std::int64_t i = from; i < layers; ++i) w[static_cast<std::size_t>(i)] = window();
  }
  return w;
}

}  // namespace detail

/// @brief The model types llama_config reads from config.json.
inline constexpr const char* hf_llama_types[] = {"llama", "mistral", "qwen2"};

/// @brief The sizes of a Hugging Face Llama-family config.json (model_type llama, mistral or qwen2;
/// SmolLM2 is llama): grouped-query attention, rotate-half rotary (interleaved = false), Qwen2's
/// q/k/v biases, Llama's attention_bias, per-layer sliding windows (Mistral's sliding_window,
/// Qwen2's use_sliding_window / max_window_layers, transformers 5's layer_types). Throws
/// io::config_error naming the file and the field for a missing, mistyped, contradictory or
/// unsupported field (rope types other than default, linear, llama3 and yarn; mlp_bias; a non-SiLU activation).
inline model_config llama_config(const io::json_fields& f) {
  const std::string type = f.string("model_type");
  if (type != "llama" && type != "mistral" && type != "qwen2")
    f.fail("model_type", "is '" + type + "', not one of the Llama family's: llama, mistral, qwen2");
  if (const auto act = f.string_or("hidden_act", "silu"); act != "silu")
    f.fail("hidden_act", "is '" + act + "': the Llama preset runs 'silu' only");
  if (f.boolean_or("mlp_bias", false)) f.fail("mlp_bias", "is true, which is not supported");
  model_config c;
  c.vocab = f.integer_at_least("vocab_size", 1);
  c.layers = f.integer_at_least("num_hidden_layers", 1);
  const std::int64_t d = f.integer_at_least("hidden_size", 1), heads = f.integer_at_least("num_attention_heads", 1);
  const std::int64_t kv = f.integer_at_least_or("num_key_value_heads", 1, heads);
  if (heads % kv != 0)
    f.fail("num_key_value_heads", "is " + std::to_string(kv) + ", which does not divide num_attention_heads " + std::to_string(heads));
  if (!f.has("head_dim") && d % heads != 0)
    f.fail("num_attention_heads", "is " + std::to_string(heads) + ", which does not divide hidden_size " + std::to_string(d) +
                                      " (and there is no head_dim)");
  const std::int64_t head_dim = f.integer_at_least_or("head_dim", 2, d / heads);
  if (head_dim % 2 != 0) f.fail("head_dim", "is " + std::to_string(head_dim) + ": rotary needs an even head dim");
  const bool attention_bias = f.boolean_or("attention_bias", false);
  c.layer.attention = {.d_model = d, .heads = heads, .kv_heads = kv, .head_dim = head_dim,
                       .qkv_bias = type == "qwen2" || attention_bias, .out_bias = attention_bias};
  c.layer.ffn = {.d_model = d, .d_ff = f.integer_at_least("intermediate_size", 1), .bias = false};
  const double eps = f.number_or("rms_norm_eps", 1e-6);
  if (!(eps > 0)) f.fail("rms_norm_eps", "must be > 0");
  c.layer.norm_eps = static_cast<float>(eps);
  std::int64_t rope_dim = 0;
  if (f.has("partial_rotary_factor")) {
    const double p = f.number("partial_rotary_factor");
    rope_dim = static_cast<std::int64_t>(static_cast<double>(head_dim) * p);
    if (!(p > 0 && p <= 1) || rope_dim % 2 != 0)
      f.fail("partial_rotary_factor", "is " + std::to_string(p) + ": expected (0, 1] giving an even rotary dim");
    if (rope_dim == head_dim) rope_dim = 0;
  }
  c.layer.rope = detail::hf_rotary(f, rope_dim, head_dim);
  const auto windows = detail::hf_windows(f, type, c.layers);
  bool any = false;
  for (auto w : windows) any = any || w > 0;
  if (any) c.layer_rule = [windows](std::int64_t i, nn::layer_config& l) { l.attention.window = windows[static_cast<std::size_t>(i)]; };
  return c;
}

/// @brief llama_config of a directory's config.json.
inline model_config llama_config(const io::hf_directory& dir) { return llama_config(dir.fields()); }

/// @brief True when the model's head is its token table: config.json's tie_word_embeddings (false
/// when absent), checked against the checkpoint (a tied model needs no lm_head.weight; an untied
/// one must have it). Throws io::config_error naming config.json when they disagree.
inline bool hf_tied_head(const io::hf_directory& dir) {
  const auto f = dir.fields();
  const bool tied = f.boolean_or("tie_word_embeddings", false);
  if (!tied && !dir.has_tensor("lm_head.weight"))
    f.fail("tie_word_embeddings", "is false but '" + dir.path() + "' has no lm_head.weight");
  return tied;
}

/// @brief A Llama-family model read and loaded from a Hugging Face directory in one call. Tied
/// must equal hf_tied_head(dir) (io::config_error otherwise).
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = Weights, bool Tied = false>
decoder_lm<llama<Weights, Embedding, Tied>> load_llama(const io::hf_directory& dir) {
  if (hf_tied_head(dir) != Tied)
    dir.fields().fail("tie_word_embeddings", std::string("is ") + (Tied ? "false" : "true") + " but the model type asked for a" +
                                                 (Tied ? " tied" : "n untied") + " head");
  decoder_lm<llama<Weights, Embedding, Tied>> m(llama_config(dir));
  io::load_checkpoint(m, dir, io::hf_llama(Tied));
  return m;
}

}  // namespace tformer::models
