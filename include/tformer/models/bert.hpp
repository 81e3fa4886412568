// The BERT family as a preset (BertModel, MiniLM, sentence-transformers models such as
// all-MiniLM-L6-v2): a spec, the sizes read from a Hugging Face config.json or from a GGUF file's
// bert.* metadata, the name maps (io::hf_bert, io::gguf_bert), and sentence-transformers' Pooling
// and Normalize modules. Nothing a user could not write: it is models::encoder<models::bert<...>>
// with a config filled from config.json or the GGUF.
//
//   io::hf_directory dir("all-MiniLM-L6-v2");
//   auto m = models::load_bert(dir);                         // config.json + model.safetensors
//   const auto pooling = models::read_sentence_pooling(dir);  // 1_Pooling/config.json, Normalize
//   const auto hidden = m.forward(ids, lengths);              // [B, S, 384]
//   tensor<float> emb(shape{B, pooling.dim(384)});
//   models::sentence_embedding(hidden, lengths, pooling, emb);
//
//   io::gguf_file f("all-MiniLM-L6-v2.gguf");                // convert_hf_to_gguf.py
//   models::encoder<models::bert<>> g(models::bert_config(f));
//   io::load_gguf(g, f, io::gguf_bert());
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

#include "../core/error.hpp"
#include "../io/gguf.hpp"
#include "../io/gguf_hparams.hpp"
#include "../io/hf_directory.hpp"
#include "../io/name_maps.hpp"
#include "../nn/layers.hpp"
#include "../quant/f32.hpp"
#include "config.hpp"
#include "encoder.hpp"
#include "heads.hpp"

namespace tformer::models {

/// @brief BERT: learned positions, token-type embeddings, LayerNorm after the embeddings, Post-LN
/// layers with exact GELU. Weights: the format of every linear; Embedding: the tables'.
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = quant::f32>
struct bert {
  using layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>>;
  using positions = nn::learned_positions;
  using embed_norm = nn::layer_norm;
  using weights = Weights;
  using embedding_weights = Embedding;
};

/// @brief The sizes of a Hugging Face BERT config.json (model_type "bert"). Throws
/// io::config_error naming the file and the field for a missing, mistyped or unsupported field.
inline model_config bert_config(const io::json_fields& f) {
  if (f.has("model_type") && f.string("model_type") != "bert")
    f.fail("model_type", "is '" + f.string("model_type") + "', not 'bert'");
  if (const auto act = f.string_or("hidden_act", "gelu"); act != "gelu")
    f.fail("hidden_act", "is '" + act + "': the BERT preset runs 'gelu' (exact GELU) only");
  if (const auto pos = f.string_or("position_embedding_type", "absolute"); pos != "absolute")
    f.fail("position_embedding_type", "is '" + pos + "': only 'absolute' positions are supported");
  if (f.boolean_or("is_decoder", false)) f.fail("is_decoder", "is true: the BERT preset is an encoder");
  model_config c;
  c.vocab = f.integer_at_least("vocab_size", 1);
  c.layers = f.integer_at_least("num_hidden_layers", 1);
  c.max_positions = f.integer_at_least("max_position_embeddings", 1);
  c.token_types = f.integer_at_least_or("type_vocab_size", 0, 2);
  const std::int64_t d = f.integer_at_least("hidden_size", 1), heads = f.integer_at_least("num_attention_heads", 1);
  if (d % heads != 0)
    f.fail("num_attention_heads", "is " + std::to_string(heads) + ", which does not divide hidden_size " + std::to_string(d));
  c.layer.attention = {.d_model = d, .heads = heads};
  c.layer.ffn = {.d_model = d, .d_ff = f.integer_at_least("intermediate_size", 1), .bias = true};
  const double eps = f.number_or("layer_norm_eps", 1e-12);
  if (!(eps > 0)) f.fail("layer_norm_eps", "must be > 0");
  c.layer.norm_eps = static_cast<float>(eps);
  return c;
}

/// @brief bert_config of a directory's config.json.
inline model_config bert_config(const io::hf_directory& dir) { return bert_config(dir.fields()); }

/// @brief The sizes of a bert-architecture GGUF as llama.cpp's converter writes it (bert.* keys:
/// block_count, context_length, embedding_length, feed_forward_length, attention.head_count,
/// attention.layer_norm_epsilon; the vocabulary is token_embd's rows, the token types
/// token_types' rows (none without that tensor), which tokenizer.ggml.token_type_count must
/// equal). Throws io_error naming the file and the key or tensor for a missing or contradictory
/// field, causal attention, or a fused attn_qkv.
inline model_config bert_config(const io::gguf_file& f) {
  const io::gguf_hparams h(f, {"bert"});
  if (h.boolean_or("attention.causal", false)) h.fail_key("attention.causal", "is true: the BERT preset is an encoder");
  model_config c;
  c.layers = h.integer_at_least("block_count", 1);
  c.max_positions = h.positions();
  c.vocab = h.vocab();
  if (f.find("token_types.weight")) {  // optional in llama.cpp's loader
    c.token_types = h.rows("token_types.weight");
    const char* count = "tokenizer.ggml.token_type_count";
    if (f.find_metadata(count) && f.get_int(count) != c.token_types)
      h.fail(std::string("key '") + count + "' is " + std::to_string(f.get_int(count)) + " but token_types.weight has " +
             std::to_string(c.token_types) + " rows");
  }
  const std::int64_t d = h.integer_at_least("embedding_length", 1), heads = h.integer_at_least("attention.head_count", 1);
  h.check_divides("embedding_length", d, "attention.head_count", heads);
  c.layer.attention = {.d_model = d, .heads = heads};
  c.layer.ffn = {.d_model = d, .d_ff = h.integer_at_least("feed_forward_length", 1), .bias = true};
  c.layer.norm_eps = static_cast<float>(h.positive("attention.layer_norm_epsilon"));
  if (f.find("blk.0.attn_qkv.weight"))
    h.fail("tensor 'blk.0.attn_qkv.weight': fused q/k/v (convert_hf_to_gguf.py --fuse-qkv) is not supported");
  return c;
}

/// @brief io::hf_bert with the prefix the directory's tensor names have ("bert." for BertFor*).
inline io::name_map hf_bert_map(const io::hf_directory& dir) {
  return io::hf_bert(dir.has_prefix("bert.embeddings.") ? "bert." : "");
}

/// @brief A BERT encoder read and loaded from a Hugging Face directory in one call.
template <quant::weight_format Weights = quant::f32, quant::weight_format Embedding = quant::f32>
encoder<bert<Weights, Embedding>> load_bert(const io::hf_directory& dir) {
  encoder<bert<Weights, Embedding>> m(bert_config(dir));
  io::load_checkpoint(m, dir, hf_bert_map(dir));
  return m;
}

// ---- sentence-transformers: Pooling and Normalize --------------------------------------------

/// @brief sentence-transformers' Pooling module (1_Pooling/config.json) and whether a Normalize
/// module follows. Several modes concatenate, in sentence-transformers' order: cls, max, mean,
/// mean_sqrt_len, last token.
struct sentence_pooling {
  bool cls = false;
  bool max = false;
  bool mean = true;
  bool mean_sqrt_len = false;
  bool last = false;
  bool normalize = false;  ///< L2-normalize the pooled vector (the Normalize module)
  /// @brief The embedding size for hidden size d.
  std::int64_t dim(std::int64_t d) const { return d * (cls + max + mean + mean_sqrt_len + last); }
};

/// @brief The pooling of a Pooling module's config.json (read from `file` for errors).
inline sentence_pooling sentence_pooling_config(const io::json_fields& f) {
  sentence_pooling p;
  p.cls = f.boolean_or("pooling_mode_cls_token", false);
  p.max = f.boolean_or("pooling_mode_max_tokens", false);
  p.mean = f.boolean_or("pooling_mode_mean_tokens", false);
  p.mean_sqrt_len = f.boolean_or("pooling_mode_mean_sqrt_len_tokens", false);
  p.last = f.boolean_or("pooling_mode_lasttoken", false);
  if (f.boolean_or("pooling_mode_weightedmean_tokens", false))
    f.fail("pooling_mode_weightedmean_tokens", "is true: weighted-mean pooling is not supported");
  if (f.has("pooling_mode")) {  // the constructor's string form, kept by some exports
    const auto mode = f.string("pooling_mode");
    p = sentence_pooling{.mean = false};
    if (mode == "cls") p.cls = true;
    else if (mode == "max") p.max = true;
    else if (mode == "mean") p.mean = true;
    else if (mode == "mean_sqrt_len_tokens") p.mean_sqrt_len = true;
    else if (mode == "lasttoken") p.last = true;
    else f.fail("pooling_mode", "is '" + mode + "': expected cls, max, mean, mean_sqrt_len_tokens or lasttoken");
  }
  if (!(p.cls || p.max || p.mean || p.mean_sqrt_len || p.last)) f.fail("pooling_mode_mean_tokens", "no pooling mode is set");
  return p;
}

/// @brief The pooling of a sentence-transformers directory: modules.json names the Pooling module
/// (its config.json) and whether a Normalize module follows. A directory without modules.json
/// pools by masked mean without normalizing. Throws io::config_error naming the file and field.
inline sentence_pooling read_sentence_pooling(const io::hf_directory& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path modules = dir.root() / "modules.json";
  if (!fs::exists(modules, ec)) return {};
  const auto j = io::read_json_file(modules);
  if (!j.is_array()) throw io::config_error(modules.string(), "", std::string("is ") + io::json_fields::kind(j) + ", expected an array");
  sentence_pooling p;
  bool pooled = false;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const io::json_fields m(j[i], modules.string(), io::detail::element_prefix(i));
    const std::string type = m.string("type");
    if (type == "sentence_transformers.models.Pooling") {
      const std::string sub = m.string_or("path", "");
      if (!io::detail::plain_file_name(sub)) m.fail("path", "names '" + sub + "', not a subdirectory of the model directory");
      const fs::path file = dir.root() / sub / "config.json";
      const auto pj = io::read_json_file(file);
      p = sentence_pooling_config(io::json_fields(pj, file.string()));
      pooled = true;
    } else if (type == "sentence_transformers.models.Normalize") {
      p.normalize = true;
    } else if (type != "sentence_transformers.models.Transformer") {
      m.fail("type", "is '" + type + "': tformer runs Transformer, Pooling and Normalize modules only");
    }
  }
  if (!pooled) throw io::config_error(modules.string(), "", "names no sentence_transformers.models.Pooling module");
  return p;
}

/// @brief out [B, p.dim(d)]: the sentence embeddings of hidden states [B, S, d] with lengths [B]
/// real tokens (padding never read), pooled and (p.normalize) L2-normalized as sentence-transformers
/// does. A sequence of length 0 pools to zeros.
inline void sentence_embedding(tensor_view<const float> hidden, tensor_view<const std::int32_t> lengths,
                               const sentence_pooling& p, tensor_view<float> out) {
  if (hidden.rank() != 3) throw shape_error("tformer::models::sentence_embedding: hidden must be [B, S, d], got " + hidden.shape().to_string());
  const std::int64_t B = hidden.dim(0), S = hidden.dim(1), d = hidden.dim(2);
  if (out.rank() != 2 || out.dim(0) != B || out.dim(1) != p.dim(d))
    throw shape_error("tformer::models::sentence_embedding: out must be [" + std::to_string(B) + ", " + std::to_string(p.dim(d)) +
                      "], got " + out.shape().to_string());
  detail::check_lengths("sentence_embedding", lengths, B, S);
  tensor<float> part(shape{B, d});  // [B, d]: one pooling mode
  std::int64_t at = 0;
  auto put = [&](auto&& fill) {
    fill();
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t c = 0; c < d; ++c) out(b, at + c) = part(b, c);
    at += d;
  };
  if (p.cls) put([&] { pool(hidden, lengths, pooling::cls, part); });
  if (p.max)
    put([&] {
      for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t n = lengths.data() ? lengths(b) : S;
        for (std::int64_t c = 0; c < d; ++c) {
          float m = n > 0 ? -std::numeric_limits<float>::infinity() : 0.0f;
          for (std::int64_t s = 0; s < n; ++s) m = std::max(m, hidden(b, s, c));
          part(b, c) = m;
        }
      }
    });
  if (p.mean) put([&] { pool(hidden, lengths, pooling::mean, part); });
  if (p.mean_sqrt_len)
    put([&] {
      pool(hidden, lengths, pooling::mean, part);
      for (std::int64_t b = 0; b < B; ++b) {  // sum / sqrt(n) = mean * sqrt(n)
        const double n = static_cast<double>(lengths.data() ? lengths(b) : S);
        for (std::int64_t c = 0; c < d; ++c) part(b, c) = static_cast<float>(part(b, c) * std::sqrt(n));
      }
    });
  if (p.last) put([&] { pool(hidden, lengths, pooling::last, part); });
  if (!p.normalize) return;
  for (std::int64_t b = 0; b < B; ++b) {  // torch.nn.functional.normalize: x / max(|x|, 1e-12)
    double ss = 0;
    for (std::int64_t c = 0; c < out.dim(1); ++c) ss += static_cast<double>(out(b, c)) * out(b, c);
    const double norm = std::max(std::sqrt(ss), 1e-12);
    for (std::int64_t c = 0; c < out.dim(1); ++c) out(b, c) = static_cast<float>(out(b, c) / norm);
  }
}

}  // namespace tformer::models
