// Runtime dispatch on a Hugging Face directory's model_type, for programs that accept any model
// directory: each open_* reads config.json, picks the family preset (and its tied / gated
// variant) and loads the weights, returning a std::variant over the presets' f32 instantiations.
// std::visit reaches the model with its static type, so everything that takes a model works:
//
//   io::hf_directory dir(argv[1]);
//   auto lm = models::open_decoder(dir);   // gpt2, llama, mistral, qwen2
//   auto out = std::visit([&](const auto& m) { return generate::run(m, prompts, options); }, lm);
//
// An unknown model_type throws io::config_error naming config.json and model_type and listing the
// supported types.
#pragma once

#include <filesystem>
#include <string>
#include <variant>

#include "../io/hf_directory.hpp"
#include "../quant/f32.hpp"
#include "bart.hpp"
#include "bert.hpp"
#include "gpt2.hpp"
#include "llama.hpp"
#include "t5.hpp"

namespace tformer::models {

/// @brief What a model directory holds.
enum class hf_kind { encoder, decoder, seq2seq };

/// @brief Every model_type the presets read, by kind.
inline constexpr const char* hf_supported_types = "encoders: bert; decoders: gpt2, llama, mistral, qwen2; encoder-decoders: t5, bart, marian";

/// @brief A decoder-only model from a directory.
using hf_decoder = std::variant<decoder_lm<gpt2<>>, decoder_lm<llama<quant::f32, quant::f32, false>>,
                                decoder_lm<llama<quant::f32, quant::f32, true>>>;
/// @brief An encoder-decoder from a directory (T5 v1.0 / v1.1, tied or not; BART with GELU; Marian
/// with swish).
using hf_seq2seq = std::variant<encoder_decoder<t5<true, false>>, encoder_decoder<t5<false, true>>,
                                encoder_decoder<t5<true, true>>, encoder_decoder<t5<false, false>>,
                                encoder_decoder<bart<>>, encoder_decoder<marian<>>>;
/// @brief An encoder from a directory.
using hf_encoder = std::variant<encoder<bert<>>>;

/// @brief The kind of model config.json describes; io::config_error naming model_type when no
/// preset reads it.
inline hf_kind hf_kind_of(const io::hf_directory& dir) {
  const auto f = dir.fields();
  const std::string type = f.string("model_type");
  if (type == "bert") return hf_kind::encoder;
  if (type == "gpt2" || type == "llama" || type == "mistral" || type == "qwen2") return hf_kind::decoder;
  if (type == "t5" || type == "bart" || type == "marian") return hf_kind::seq2seq;
  f.fail("model_type", "is '" + type + "', which tformer cannot load; supported: " + hf_supported_types);
}

namespace detail {
[[noreturn]] inline void wrong_kind(const io::hf_directory& dir, const char* wanted, const char* use) {
  const auto f = dir.fields();
  f.fail("model_type", "is '" + f.string("model_type") + "', not " + wanted + " (" + use + "); supported: " + hf_supported_types);
}
}  // namespace detail

/// @brief The decoder-only model of a directory (gpt2, llama, mistral, qwen2), loaded.
inline hf_decoder open_decoder(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::decoder)
    detail::wrong_kind(dir, "a decoder-only model", hf_kind_of(dir) == hf_kind::encoder ? "use open_encoder" : "use open_seq2seq");
  if (dir.model_type() == "gpt2") return load_gpt2(dir);
  if (hf_tied_head(dir)) return load_llama<quant::f32, quant::f32, true>(dir);
  return load_llama<quant::f32, quant::f32, false>(dir);
}

/// @brief The encoder-decoder of a directory (t5, bart, marian), loaded. BART and Marian run their
/// usual activations (GELU, swish); another is an io::config_error naming activation_function
/// (instantiate models::bart<Act> for it).
inline hf_seq2seq open_seq2seq(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::seq2seq)
    detail::wrong_kind(dir, "an encoder-decoder", hf_kind_of(dir) == hf_kind::encoder ? "use open_encoder" : "use open_decoder");
  const auto f = dir.fields();
  if (dir.model_type() == "bart") return load_bart<bart<>>(dir);
  if (dir.model_type() == "marian") return load_bart<marian<>>(dir);
  const bool gated = t5_gated(f), tied = t5_tied(f);
  if (gated && !tied) return load_t5<t5<true, false>>(dir);
  if (!gated && tied) return load_t5<t5<false, true>>(dir);
  if (gated) return load_t5<t5<true, true>>(dir);
  return load_t5<t5<false, false>>(dir);
}

/// @brief The encoder of a directory (bert, sentence-transformers' BERT models), loaded.
inline hf_encoder open_encoder(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::encoder)
    detail::wrong_kind(dir, "an encoder", hf_kind_of(dir) == hf_kind::decoder ? "use open_decoder" : "use open_seq2seq");
  return load_bert(dir);
}

/// @brief open_decoder of the directory at path (its files are closed once the weights are loaded).
inline hf_decoder open_decoder(const std::filesystem::path& path) { return open_decoder(io::hf_directory(path)); }
/// @brief open_seq2seq of the directory at path.
inline hf_seq2seq open_seq2seq(const std::filesystem::path& path) { return open_seq2seq(io::hf_directory(path)); }
/// @brief open_encoder of the directory at path.
inline hf_encoder open_encoder(const std::filesystem::path& path) { return open_encoder(io::hf_directory(path)); }

}  // namespace tformer::models
