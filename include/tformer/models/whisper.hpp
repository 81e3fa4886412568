// Whisper (OpenAI's speech recognizer) as a preset: a spec, a model type that adds the speech front
// end to models::encoder_decoder, config readers (CTranslate2's model folder, transformers'
// config.json) and name maps (CTranslate2's variables, transformers' parameters).
//
//   encoder: features [B, n_mels, 2 n_audio_ctx] -> nn::conv_front_end (conv k3 + GELU, conv k3
//            stride 2 + GELU, + stored sinusoidal positions) -> pre-LN layers (exact-erf GELU MLP)
//            -> final LayerNorm
//   decoder: token embeddings + learned positions (n_text_ctx) -> pre-LN layers with self and
//            cross attention -> final LayerNorm -> logits by the tied embedding table
//   attention: biases on q, v, o; none on k (CTranslate2 stores a zero k bias in its fused
//            projection; a k bias adds the same q . b to every score of a query, which softmax
//            ignores), scale 1 / sqrt(head_dim)
//
// The model is encoder_decoder<whisper_spec<>> plus the front end: encode_features(features)
// gives the models::encoded that decode() and models' decoding loops take. Decoding a transcript
// is: forced prefix (<|startoftranscript|>, language and task tokens on multilingual models,
// <|notimestamps|>), then tokens with whisper_config::suppress_ids masked at every step and
// suppress_ids_begin at the first free step, until <|endoftext|>.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../io/checkpoint.hpp"
#include "../io/ctranslate2.hpp"
#include "../nn/attention.hpp"
#include "../nn/conv.hpp"
#include "../nn/feed_forward.hpp"
#include "../nn/layers.hpp"
#include "../nn/norm.hpp"
#include "../nn/positions.hpp"
#include "../nn/residual.hpp"
#include "../quant/f32.hpp"
#include "../simd/activation.hpp"
#include "config.hpp"
#include "encoder_decoder.hpp"

namespace tformer::models {

/// @brief Whisper's spec; Weights is the format of every linear and of the embedding table.
template <quant::weight_format Weights = quant::f32>
struct whisper_spec {
  using ffn = nn::mlp<simd::act::gelu>;
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::attention<>, ffn>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::layer_norm, nn::attention<>, ffn>;
  using positions = nn::learned_positions;  // the decoder's (the encoder's are the front end's)
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
  using weights = Weights;
};

/// @brief Whisper's sizes and its decoding settings.
struct whisper_config {
  model_config model;            ///< vocab, layers (encoder), decoder_layers, max_positions (n_text_ctx), layer sizes
  std::int64_t n_mels = 80;
  std::int64_t n_audio_ctx = 1500;  ///< encoder positions: the front end takes 2 n_audio_ctx frames
  std::vector<std::int32_t> suppress_ids;        ///< masked at every step
  std::vector<std::int32_t> suppress_ids_begin;  ///< masked at the first step after the prefix
  std::vector<std::int32_t> lang_ids;            ///< language tokens (CTranslate2 lists them for .en models too)
  std::int32_t sot = -1, eot = -1, no_timestamps = -1, transcribe = -1, translate = -1;  ///< -1: unknown

  /// @brief Whether the model takes language and task tokens: Whisper's rule, a vocabulary of at
  /// least 51865 tokens (the English-only models have 51864).
  bool multilingual() const noexcept { return model.vocab >= 51865; }

  /// @brief The forced prefix of a transcription without timestamps: <|startoftranscript|>
  /// [language, <|transcribe|> on multilingual models] <|notimestamps|>.
  std::vector<std::int32_t> prefix(std::optional<std::int32_t> language = std::nullopt) const {
    if (sot < 0 || no_timestamps < 0)
      throw value_error("tformer::models::whisper_config: the ids of <|startoftranscript|> and <|notimestamps|> are unknown "
                        "(read the config with the model's vocabulary)");
    std::vector<std::int32_t> p{sot};
    if (multilingual()) {
      if (!language) throw value_error("tformer::models::whisper_config: a multilingual model needs a language token");
      p.push_back(*language);
      p.push_back(transcribe);
    }
    p.push_back(no_timestamps);
    return p;
  }
};

/// @brief Whisper: encoder_decoder<Spec> with the speech front end (see the file comment).
template <class Spec = whisper_spec<>>
class whisper : public encoder_decoder<Spec> {
 public:
  using base = encoder_decoder<Spec>;
  using front_end_type = nn::conv_front_end<simd::act::gelu>;

  explicit whisper(const whisper_config& c)
      : base(c.model), settings(c), front(c.n_mels, c.model.d_model(), c.n_audio_ctx) {}

  /// @brief Encodes log-mel features [B, n_mels, frames] (audio/log_mel.hpp; 2 n_audio_ctx frames
  /// for 30 s windows, as Whisper is trained on).
  encoded encode_features(tensor_view<const float> features, workspace* ws = nullptr) const {
    return this->encode_hidden(front.forward(features, ws));
  }

  template <class V>
  void visit(V&& v, const std::string& prefix = "") {
    base::visit(v, prefix);
    front.visit(v, prefix + "encoder.front.");
  }

  whisper_config settings;
  front_end_type front;
};

namespace detail {
// A token id: an integer of int32's range (value_error naming the key otherwise).
inline std::int32_t token_id(const nlohmann::json& v, const char* key) {
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<std::uint64_t>() > 0x7FFFFFFFu
                                                        : v.get<std::int64_t>() < INT32_MIN || v.get<std::int64_t>() > INT32_MAX))
    throw value_error(std::string("tformer::models: Whisper config field '") + key + "' holds " + v.dump() +
                      ", not a token id (an integer in int32's range)");
  return static_cast<std::int32_t>(v.get<std::int64_t>());
}
inline std::vector<std::int32_t> int_list(const nlohmann::json& j, const char* key) {
  std::vector<std::int32_t> out;
  if (!j.contains(key) || j.at(key).is_null()) return out;
  if (!j.at(key).is_array()) throw value_error(std::string("tformer::models: Whisper config field '") + key + "' is not a list");
  for (const auto& v : j.at(key)) out.push_back(token_id(v, key));
  return out;
}
// Whether path exists; an unreadable folder counts as no.
inline bool file_exists(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}
inline whisper_config whisper_layer_sizes(whisper_config c, std::int64_t d, std::int64_t heads, std::int64_t d_ff) {
  c.model.layer.attention.d_model = d;
  c.model.layer.attention.heads = heads;
  c.model.layer.attention.qkv_bias = true;  // k's bias is zero (see the file comment)
  c.model.layer.ffn = nn::ffn_config{d, d_ff, true};
  c.model.layer.norm_eps = 1e-5f;
  return c;
}
// The special tokens of a Whisper vocabulary, by their text.
inline void whisper_special_ids(whisper_config& c, const std::vector<std::string>& tokens) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto id = static_cast<std::int32_t>(i);
    if (tokens[i] == "<|startoftranscript|>") c.sot = id;
    if (tokens[i] == "<|endoftext|>") c.eot = id;
    if (tokens[i] == "<|notimestamps|>") c.no_timestamps = id;
    if (tokens[i] == "<|transcribe|>") c.transcribe = id;
    if (tokens[i] == "<|translate|>") c.translate = id;
  }
}
}  // namespace detail

/// @brief The config of a CTranslate2 Whisper: sizes from model.bin (shapes and the num_heads
/// scalars), decoding settings from the folder's config.json (suppress_ids, suppress_ids_begin,
/// lang_ids) and the special tokens from its vocabulary.txt (one token a line) or
/// vocabulary.json (a list) when present. Throws io_error naming the file and what is missing.
inline whisper_config read_whisper_ctranslate2(const io::ctranslate2_file& f, const std::filesystem::path& folder = {}) {
  if (f.spec_name() != "WhisperSpec")
    throw io_error("tformer: '" + f.path() + "' holds a CTranslate2 '" + f.spec_name() + "', not a WhisperSpec");
  whisper_config c;
  auto need = [&](const char* name) -> const io::ct2_variable& {
    const auto* v = f.find(name);
    if (!v) throw io_error("tformer: Whisper file '" + f.path() + "' has no variable '" + name + "'");
    return *v;
  };
  const auto& emb = need("decoder/embeddings/weight");
  const auto& conv1 = need("encoder/conv1/weight");
  const auto& enc_pos = need("encoder/position_encodings/encodings");
  const auto& dec_pos = need("decoder/position_encodings/encodings");
  const auto& ff = need("encoder/layer_0/ffn/linear_0/weight");
  if (emb.shape.size() != 2 || conv1.shape.size() != 3 || enc_pos.shape.size() != 2 || dec_pos.shape.size() != 2 ||
      ff.shape.size() != 2)
    throw io_error("tformer: Whisper file '" + f.path() + "': the embeddings, conv1, position and ffn variables must be "
                   "[vocab, d], [d, n_mels, 3], [n_ctx, d] and [d_ff, d]");
  const std::int64_t d = emb.shape[1];
  std::int64_t enc_layers = 0, dec_layers = 0;
  while (f.find("encoder/layer_" + std::to_string(enc_layers) + "/ffn/linear_0/weight")) ++enc_layers;
  while (f.find("decoder/layer_" + std::to_string(dec_layers) + "/ffn/linear_0/weight")) ++dec_layers;
  const std::int64_t heads = f.scalar_int("encoder/num_heads");
  if (f.scalar_int("decoder/num_heads") != heads)
    throw io_error("tformer: Whisper file '" + f.path() + "': encoder and decoder head counts differ (" +
                   std::to_string(heads) + ", " + std::to_string(f.scalar_int("decoder/num_heads")) +
                   "); tformer's encoder_decoder shares one layer config");
  if (heads < 1 || d % heads != 0)
    throw io_error("tformer: Whisper file '" + f.path() + "': d_model " + std::to_string(d) + " is not a multiple of " +
                   std::to_string(heads) + " heads");
  c = detail::whisper_layer_sizes(c, d, heads, ff.shape[0]);
  c.model.vocab = emb.shape[0];
  c.model.layers = enc_layers;
  c.model.decoder_layers = dec_layers;
  c.model.max_positions = dec_pos.shape[0];
  c.n_mels = conv1.shape[1];
  c.n_audio_ctx = enc_pos.shape[0];
  if (folder.empty()) return c;
  const auto cfg = folder / "config.json";
  if (detail::file_exists(cfg)) {
    std::ifstream in(cfg);
    try {
      const auto j = nlohmann::json::parse(in);
      c.suppress_ids = detail::int_list(j, "suppress_ids");
      c.suppress_ids_begin = detail::int_list(j, "suppress_ids_begin");
      c.lang_ids = detail::int_list(j, "lang_ids");
    } catch (const nlohmann::json::exception& e) {
      throw io_error("tformer: '" + cfg.string() + "' is not a CTranslate2 Whisper config: " + e.what());
    }
  }
  std::vector<std::string> tokens;
  if (const auto txt = folder / "vocabulary.txt"; detail::file_exists(txt)) {
    std::ifstream in(txt);
    for (std::string line; std::getline(in, line);) tokens.push_back(line);
  } else if (const auto js = folder / "vocabulary.json"; detail::file_exists(js)) {
    std::ifstream in(js);
    try {
      tokens = nlohmann::json::parse(in).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      throw io_error("tformer: '" + js.string() + "' is not a list of tokens: " + e.what());
    }
  }
  detail::whisper_special_ids(c, tokens);
  return c;
}

/// @brief The config of transformers' WhisperConfig (config.json); special ids from its
/// decoder_start_token_id / eos_token_id, and suppress_tokens / begin_suppress_tokens.
inline whisper_config read_whisper_hf_config(const nlohmann::json& j) {
  whisper_config c;
  try {
    const auto heads = j.at("encoder_attention_heads").get<std::int64_t>();
    if (j.at("decoder_attention_heads").get<std::int64_t>() != heads)
      throw value_error("tformer::models::read_whisper_hf_config: encoder and decoder head counts differ");
    c = detail::whisper_layer_sizes(c, j.at("d_model").get<std::int64_t>(), heads, j.at("encoder_ffn_dim").get<std::int64_t>());
    c.model.vocab = j.at("vocab_size").get<std::int64_t>();
    c.model.layers = j.at("encoder_layers").get<std::int64_t>();
    c.model.decoder_layers = j.at("decoder_layers").get<std::int64_t>();
    c.model.max_positions = j.at("max_target_positions").get<std::int64_t>();
    c.n_mels = j.at("num_mel_bins").get<std::int64_t>();
    c.n_audio_ctx = j.at("max_source_positions").get<std::int64_t>();
    c.suppress_ids = detail::int_list(j, "suppress_tokens");
    c.suppress_ids_begin = detail::int_list(j, "begin_suppress_tokens");
    if (j.contains("decoder_start_token_id")) c.sot = detail::token_id(j.at("decoder_start_token_id"), "decoder_start_token_id");
    if (j.contains("eos_token_id")) c.eot = detail::token_id(j.at("eos_token_id"), "eos_token_id");
  } catch (const nlohmann::json::exception& e) {
    throw value_error(std::string("tformer::models::read_whisper_hf_config: ") + e.what());
  }
  return c;
}

}  // namespace tformer::models

namespace tformer::io {

/// @brief CTranslate2's Whisper variables (WhisperSpec revision 3) -> models::whisper. The fused
/// projections split: self-attention linear_0 [3d, d] into q, k, v; cross-attention linear_1
/// [2d, d] into k, v. The scalars (num_heads, flags), the projection alias (the tied head) and
/// the alignment heads are known and not loaded.
inline name_map ct2_whisper() {
  name_map m;
  auto norm = [&](const std::string& to, const std::string& from) { m.add(to + "weight", from + "gamma").add(to + "bias", from + "beta"); };
  auto lin = [&](const std::string& to, const std::string& from, int chunk = 0, int chunks = 1) {
    m.add(to + "weight", from + "weight", false, chunk, chunks).add(to + "bias", from + "bias", false, chunk, chunks);
  };
  m.add("embed.tokens.weight", "decoder/embeddings/weight");
  m.add("embed.positions.weight", "decoder/position_encodings/encodings");
  lin("encoder.front.conv1.", "encoder/conv1/");
  lin("encoder.front.conv2.", "encoder/conv2/");
  m.add("encoder.front.positions.weight", "encoder/position_encodings/encodings");
  for (const std::string side : {"encoder", "decoder"}) {
    const std::string L = side + ".layers.{i}.", C = side + "/layer_{i}/";
    const char* qkv[] = {"q", "k", "v"};
    for (int i = 0; i < 3; ++i) lin(L + "attn." + qkv[i] + ".", C + "self_attention/linear_0/", i, 3);
    lin(L + "attn.o.", C + "self_attention/linear_1/");
    norm(L + "attn_norm.", C + "self_attention/layer_norm/");
    lin(L + "ffn.up.", C + "ffn/linear_0/");
    lin(L + "ffn.down.", C + "ffn/linear_1/");
    norm(L + "ffn_norm.", C + "ffn/layer_norm/");
    norm(side + ".final_norm.", side + "/layer_norm/");
  }
  const std::string L = "decoder.layers.{i}.", C = "decoder/layer_{i}/attention/";
  lin(L + "cross.q.", C + "linear_0/");
  lin(L + "cross.k.", C + "linear_1/", 0, 2);
  lin(L + "cross.v.", C + "linear_1/", 1, 2);
  lin(L + "cross.o.", C + "linear_2/");
  norm(L + "cross_norm.", C + "layer_norm/");
  m.ignore("decoder/projection/weight").ignore("*/num_heads").ignore("decoder/activation").ignore("decoder/alibi*");
  m.ignore("decoder/alignment_*").ignore("decoder/pre_norm").ignore("decoder/scale_*").ignore("decoder/start_from_zero_embedding");
  m.ignore("decoder/layer_norm_epsilon").ignore("encoder/layer_norm_epsilon");
  return m;
}

/// @brief transformers' WhisperForConditionalGeneration -> models::whisper. k_proj has no bias in
/// these checkpoints: load them through whisper_hf_source, which reads it as zeros.
inline name_map hf_whisper() {
  name_map m;
  auto norm = [&](const std::string& to, const std::string& from) { m.add(to + "weight", from + "weight").add(to + "bias", from + "bias"); };
  auto lin = [&](const std::string& to, const std::string& from) { norm(to, from); };
  m.add("embed.tokens.weight", "model.decoder.embed_tokens.weight");
  m.add("embed.positions.weight", "model.decoder.embed_positions.weight");
  lin("encoder.front.conv1.", "model.encoder.conv1.");
  lin("encoder.front.conv2.", "model.encoder.conv2.");
  m.add("encoder.front.positions.weight", "model.encoder.embed_positions.weight");
  for (const std::string side : {"encoder", "decoder"}) {
    const std::string L = side + ".layers.{i}.", H = "model." + side + ".layers.{i}.";
    for (const char* p : {"q", "k", "v"}) lin(L + "attn." + p + ".", H + "self_attn." + p + "_proj.");
    lin(L + "attn.o.", H + "self_attn.out_proj.");
    norm(L + "attn_norm.", H + "self_attn_layer_norm.");
    lin(L + "ffn.up.", H + "fc1.");
    lin(L + "ffn.down.", H + "fc2.");
    norm(L + "ffn_norm.", H + "final_layer_norm.");
    norm(side + ".final_norm.", "model." + side + ".layer_norm.");
  }
  const std::string L = "decoder.layers.{i}.", H = "model.decoder.layers.{i}.";
  for (const char* p : {"q", "k", "v"}) lin(L + "cross." + p + ".", H + "encoder_attn." + p + "_proj.");
  lin(L + "cross.o.", H + "encoder_attn.out_proj.");
  norm(L + "cross_norm.", H + "encoder_attn_layer_norm.");
  m.ignore("proj_out.weight");
  return m;
}

/// @brief A transformers Whisper checkpoint (any checkpoint source) with the k_proj biases it
/// lacks: "<x>.k_proj.bias" reads as zeros of k_proj.weight's row count when the file has no
/// such tensor. Keeps a pointer to src, which must outlive it.
template <checkpoint_source Src>
class whisper_hf_source {
 public:
  explicit whisper_hf_source(const Src& src) : src_(&src) {}
  std::string path() const { return src_->path(); }
  std::vector<std::string> tensor_names() const { return src_->tensor_names(); }
  std::optional<checkpoint_tensor> find_tensor(const std::string& name) const {
    if (auto t = src_->find_tensor(name)) return t;
    const auto w = k_weight(name);
    if (!w) return std::nullopt;
    return checkpoint_tensor{name, {w->shape.empty() ? 0 : w->shape[0]}, {}, {}};
  }
  tensor<float> read_float(const std::string& name) const {
    if (src_->find_tensor(name)) return src_->read_float(name);
    const auto w = k_weight(name);
    if (!w) return src_->read_float(name);  // throws, naming the tensor
    return tensor<float>(shape{w->shape.empty() ? 0 : w->shape[0]}, 0.0f);  // [d]
  }

 private:
  std::optional<checkpoint_tensor> k_weight(const std::string& name) const {
    static const std::string tail = "k_proj.bias";
    if (name.size() < tail.size() || name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return std::nullopt;
    return src_->find_tensor(name.substr(0, name.size() - 4) + "weight");
  }
  const Src* src_;
};

}  // namespace tformer::io
