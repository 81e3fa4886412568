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
//
//   auto m = models::load_whisper("whisper-tiny.en");   // CTranslate2 (model.bin) or transformers layout
//   auto e = m.encode_features(features);                // [1, n_mels, 2 n_audio_ctx]
//   auto prefix = m.settings.prefix();                   // <|startoftranscript|> <|notimestamps|>
#pragma once

#include <algorithm>
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
#include "../io/hf_directory.hpp"
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
// The special id field of c that token names (<|startoftranscript|>, ...), or null.
inline std::int32_t* whisper_special_field(whisper_config& c, const std::string& token) {
  if (token == "<|startoftranscript|>") return &c.sot;
  if (token == "<|endoftext|>") return &c.eot;
  if (token == "<|notimestamps|>") return &c.no_timestamps;
  if (token == "<|transcribe|>") return &c.transcribe;
  if (token == "<|translate|>") return &c.translate;
  return nullptr;
}
// The special tokens of a Whisper vocabulary, by their text.
inline void whisper_special_ids(whisper_config& c, const std::vector<std::string>& tokens) {
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (auto* field = whisper_special_field(c, tokens[i])) *field = static_cast<std::int32_t>(i);
}
// A token id field of a transformers config: an integer in 0 .. vocab - 1 (config_error naming the
// file and the field otherwise).
inline std::int32_t whisper_token_id(const io::json_fields& f, const std::string& key, std::int64_t vocab) {
  const std::int64_t id = f.integer(key);
  if (id < 0 || id >= vocab)
    f.fail(key, "is " + std::to_string(id) + ", not a token id of the vocabulary (0 .. " + std::to_string(vocab - 1) + ")");
  return static_cast<std::int32_t>(id);
}
// A list of token ids (empty when absent), each an integer in 0 .. vocab - 1 (config_error naming
// the file and the element, "key[i]", otherwise).
inline std::vector<std::int32_t> whisper_token_ids(const io::json_fields& f, const std::string& key, std::int64_t vocab) {
  std::vector<std::int32_t> out;
  if (!f.has(key)) return out;
  const auto& list = f.json().at(key);
  if (!list.is_array()) f.fail(key, std::string("is ") + io::json_fields::kind(list) + ", expected a list of token ids");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& v = list[i];
    const std::string name = key + "[" + std::to_string(i) + "]";
    if (!v.is_number_integer()) f.fail(name, std::string("is ") + io::json_fields::kind(v) + ", expected a token id");
    if (v.is_number_unsigned() ? v.get<std::uint64_t>() >= static_cast<std::uint64_t>(vocab)
                               : v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab)
      f.fail(name, "is " + v.dump() + ", not a token id of the vocabulary (0 .. " + std::to_string(vocab - 1) + ")");
    out.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
  }
  return out;
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

/// @brief The config of transformers' WhisperConfig (config.json): sizes, suppress_tokens and
/// begin_suppress_tokens, <|startoftranscript|> and <|endoftext|> from decoder_start_token_id and
/// eos_token_id (the other special ids are in generation_config.json: whisper_hf_config reads it).
/// Throws io::config_error naming the file and the field for a missing or mistyped field, a
/// model_type other than "whisper", encoder and decoder sizes that differ (tformer's
/// encoder_decoder shares one layer config), an activation other than exact GELU, scaled
/// embeddings, or a token id outside the vocabulary.
inline whisper_config read_whisper_hf_config(const io::json_fields& f) {
  if (f.has("model_type") && f.string("model_type") != "whisper")
    f.fail("model_type", "is '" + f.string("model_type") + "', not 'whisper'");
  const std::int64_t d = f.integer_at_least("d_model", 1);
  const std::int64_t heads = f.integer_at_least("encoder_attention_heads", 1);
  if (const auto dh = f.integer_at_least("decoder_attention_heads", 1); dh != heads)
    f.fail("decoder_attention_heads", "is " + std::to_string(dh) + " but encoder_attention_heads is " + std::to_string(heads) +
                                          ": tformer's encoder_decoder shares one layer config");
  if (d % heads != 0)
    f.fail("encoder_attention_heads", "is " + std::to_string(heads) + ", which does not divide d_model " + std::to_string(d));
  const std::int64_t d_ff = f.integer_at_least("encoder_ffn_dim", 1);
  if (const auto dd = f.integer_at_least_or("decoder_ffn_dim", 1, d_ff); dd != d_ff)
    f.fail("decoder_ffn_dim", "is " + std::to_string(dd) + " but encoder_ffn_dim is " + std::to_string(d_ff) +
                                  ": tformer's encoder_decoder shares one layer config");
  if (const auto act = f.string_or("activation_function", "gelu"); act != "gelu")
    f.fail("activation_function", "is '" + act + "': the Whisper preset runs 'gelu' (exact erf GELU)");
  if (f.boolean_or("scale_embedding", false))
    f.fail("scale_embedding", "is true: the Whisper preset does not scale its token embeddings");
  whisper_config c = detail::whisper_layer_sizes({}, d, heads, d_ff);
  c.model.vocab = f.integer_at_least("vocab_size", 1);
  c.model.layers = f.integer_at_least("encoder_layers", 1);
  c.model.decoder_layers = f.integer_at_least("decoder_layers", 1);
  c.model.max_positions = f.integer_at_least("max_target_positions", 1);
  c.n_mels = f.integer_at_least("num_mel_bins", 1);
  c.n_audio_ctx = f.integer_at_least("max_source_positions", 1);
  c.suppress_ids = detail::whisper_token_ids(f, "suppress_tokens", c.model.vocab);
  c.suppress_ids_begin = detail::whisper_token_ids(f, "begin_suppress_tokens", c.model.vocab);
  if (f.has("decoder_start_token_id")) c.sot = detail::whisper_token_id(f, "decoder_start_token_id", c.model.vocab);
  if (f.has("eos_token_id")) c.eot = detail::whisper_token_id(f, "eos_token_id", c.model.vocab);
  return c;
}

/// @brief read_whisper_hf_config of a parsed config; its errors name `file`.
inline whisper_config read_whisper_hf_config(const nlohmann::json& j, const std::string& file = "config.json") {
  return read_whisper_hf_config(io::json_fields(j, file));
}

/// @brief Settings of transformers' generation_config.json over c: suppress_tokens and
/// begin_suppress_tokens (what transformers' generate uses, over config.json's),
/// decoder_start_token_id, no_timestamps_token_id, task_to_id ({"transcribe", "translate"}) and
/// lang_to_id ({"<|en|>": id, ...}) when present. Throws io::config_error naming the field.
inline void read_whisper_generation_config(whisper_config& c, const io::json_fields& g) {
  const std::int64_t vocab = c.model.vocab;
  if (g.has("suppress_tokens")) c.suppress_ids = detail::whisper_token_ids(g, "suppress_tokens", vocab);
  if (g.has("begin_suppress_tokens")) c.suppress_ids_begin = detail::whisper_token_ids(g, "begin_suppress_tokens", vocab);
  if (g.has("decoder_start_token_id")) c.sot = detail::whisper_token_id(g, "decoder_start_token_id", vocab);
  if (g.has("no_timestamps_token_id")) c.no_timestamps = detail::whisper_token_id(g, "no_timestamps_token_id", vocab);
  if (const auto tasks = g.object_or_none("task_to_id")) {
    if (tasks->has("transcribe")) c.transcribe = detail::whisper_token_id(*tasks, "transcribe", vocab);
    if (tasks->has("translate")) c.translate = detail::whisper_token_id(*tasks, "translate", vocab);
  }
  if (const auto langs = g.object_or_none("lang_to_id")) {
    c.lang_ids.clear();
    for (const auto& item : langs->json().items()) c.lang_ids.push_back(detail::whisper_token_id(*langs, item.key(), vocab));
    std::sort(c.lang_ids.begin(), c.lang_ids.end());
  }
}

/// @brief The special ids of c still unknown (-1) from a tokenizer.json's added_tokens (objects
/// {"id", "content"}): <|startoftranscript|>, <|endoftext|>, <|notimestamps|>, <|transcribe|>,
/// <|translate|>. Throws io::config_error naming the file and the field of a malformed entry.
inline void read_whisper_tokenizer_ids(whisper_config& c, const std::filesystem::path& tokenizer_json) {
  const auto j = io::read_json_file(tokenizer_json);
  const io::json_fields f(j, tokenizer_json.string());
  if (!f.has("added_tokens")) return;
  const auto& list = j.at("added_tokens");
  if (!list.is_array()) f.fail("added_tokens", std::string("is ") + io::json_fields::kind(list) + ", expected an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const io::json_fields t(list[i], f.file(), "added_tokens" + io::detail::element_prefix(i));
    auto* field = detail::whisper_special_field(c, t.string("content"));
    if (field && *field < 0) *field = detail::whisper_token_id(t, "id", c.model.vocab);
  }
}

/// @brief The config of a transformers Whisper directory: read_whisper_hf_config of its
/// config.json (whose model_type must be "whisper"), then read_whisper_generation_config of its
/// generation_config.json and read_whisper_tokenizer_ids of its tokenizer.json when present.
inline whisper_config whisper_hf_config(const io::hf_directory& dir) {
  const auto f = dir.fields();
  if (const auto type = f.string("model_type"); type != "whisper") f.fail("model_type", "is '" + type + "', not 'whisper'");
  auto c = read_whisper_hf_config(f);
  if (const auto gen = dir.directory() / "generation_config.json"; detail::file_exists(gen)) {
    const auto g = io::read_json_file(gen);
    read_whisper_generation_config(c, io::json_fields(g, gen.string()));
  }
  if (dir.tokenizer_path()) read_whisper_tokenizer_ids(c, *dir.tokenizer_path());
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

namespace tformer::models {

/// @brief The two layouts of a Whisper model directory.
enum class whisper_layout {
  ctranslate2,   ///< model.bin (+ config.json with suppress_ids, vocabulary.txt / .json, tokenizer.json)
  transformers,  ///< config.json (+ generation_config.json), model.safetensors or shards, tokenizer.json
};

/// @brief The layout of dir: CTranslate2 when it has model.bin, transformers when it has
/// config.json. Throws io_error naming the directory when it is not one, when it has neither file,
/// or when its config.json is CTranslate2's (suppress_ids, no model_type) but model.bin is missing.
inline whisper_layout whisper_directory_layout(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw io_error("tformer: '" + dir.string() + "' is not a directory");
  if (detail::file_exists(dir / "model.bin")) return whisper_layout::ctranslate2;
  const auto cfg = dir / "config.json";
  if (!detail::file_exists(cfg))
    throw io_error("tformer: '" + dir.string() + "' is not a Whisper model directory: it has neither model.bin (CTranslate2's "
                   "layout) nor config.json (transformers')");
  const auto j = io::read_json_file(cfg);
  if (j.is_object() && !j.contains("model_type") && (j.contains("suppress_ids") || j.contains("lang_ids")))
    throw io_error("tformer: '" + dir.string() + "' has CTranslate2's config.json (suppress_ids, no model_type) but no model.bin");
  return whisper_layout::transformers;
}

/// @brief A Whisper model read and loaded from a transformers directory (whisper_hf_config; the
/// weights through io::whisper_hf_source and io::hf_whisper).
template <class Spec = whisper_spec<>>
whisper<Spec> load_whisper(const io::hf_directory& dir) {
  whisper<Spec> m(whisper_hf_config(dir));
  io::load_checkpoint(m, io::whisper_hf_source<io::hf_directory>(dir), io::hf_whisper());
  return m;
}

/// @brief A Whisper model read and loaded from a directory of either layout
/// (whisper_directory_layout). CTranslate2: read_whisper_ctranslate2 of model.bin with the
/// folder's config.json and vocabulary, the weights through io::ct2_whisper; transformers:
/// load_whisper(io::hf_directory). Either way the special ids still unknown come from the
/// folder's tokenizer.json when it has one (read_whisper_tokenizer_ids). Throws io_error naming
/// the file (io::config_error naming the file and the field for a config) for whatever is wrong.
template <class Spec = whisper_spec<>>
whisper<Spec> load_whisper(const std::filesystem::path& dir) {
  if (whisper_directory_layout(dir) == whisper_layout::transformers) return load_whisper<Spec>(io::hf_directory(dir));
  const io::ctranslate2_file f((dir / "model.bin").string());
  auto c = read_whisper_ctranslate2(f, dir);
  if (const auto tok = dir / "tokenizer.json"; detail::file_exists(tok)) read_whisper_tokenizer_ids(c, tok);
  whisper<Spec> m(c);
  io::load_ctranslate2(m, f, io::ct2_whisper());
  return m;
}

}  // namespace tformer::models
