// Runtime dispatch on a Hugging Face directory's model_type, for programs that accept any model
// directory: each open_* reads config.json, picks the family preset (and its tied / gated
// variant) and loads the weights, returning a std::variant over the presets' instantiations in
// one weight format (float by default; open_decoder<quant::q8_0>(dir) quantizes on load).
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

/// @brief A decoder-only model from a directory, its linears and token table in format W (the
/// checkpoint's floats converted on load; positions and norms stay float).
template <quant::weight_format W = quant::f32>
using basic_hf_decoder = std::variant<decoder_lm<gpt2<W, W>>, decoder_lm<llama<W, W, false>>, decoder_lm<llama<W, W, true>>>;
/// @brief An encoder-decoder from a directory (T5 v1.0 / v1.1, tied or not; BART with GELU; Marian
/// with swish), in format W.
template <quant::weight_format W = quant::f32>
using basic_hf_seq2seq = std::variant<encoder_decoder<t5<true, false, W, W>>, encoder_decoder<t5<false, true, W, W>>,
                                      encoder_decoder<t5<true, true, W, W>>, encoder_decoder<t5<false, false, W, W>>,
                                      encoder_decoder<bart<simd::act::gelu, false, W, W>>,
                                      encoder_decoder<bart<simd::act::silu, true, W, W>>>;
/// @brief An encoder from a directory, in format W.
template <quant::weight_format W = quant::f32>
using basic_hf_encoder = std::variant<encoder<bert<W, W>>>;

using hf_decoder = basic_hf_decoder<>;
using hf_seq2seq = basic_hf_seq2seq<>;
using hf_encoder = basic_hf_encoder<>;

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

/// @brief The decoder-only model of a directory (gpt2, llama, mistral, qwen2), loaded; W: the
/// format of its linears and token table (e.g. quant::q8_0; float checkpoints are quantized).
template <quant::weight_format W = quant::f32>
basic_hf_decoder<W> open_decoder(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::decoder)
    detail::wrong_kind(dir, "a decoder-only model", hf_kind_of(dir) == hf_kind::encoder ? "use open_encoder" : "use open_seq2seq");
  if (dir.model_type() == "gpt2") return load_gpt2<W, W>(dir);
  if (hf_tied_head(dir)) return load_llama<W, W, true>(dir);
  return load_llama<W, W, false>(dir);
}

/// @brief The encoder-decoder of a directory (t5, bart, marian), loaded, in format W. BART and
/// Marian run their usual activations (GELU, swish); another is an io::config_error naming
/// activation_function (instantiate models::bart<Act> for it).
template <quant::weight_format W = quant::f32>
basic_hf_seq2seq<W> open_seq2seq(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::seq2seq)
    detail::wrong_kind(dir, "an encoder-decoder", hf_kind_of(dir) == hf_kind::encoder ? "use open_encoder" : "use open_decoder");
  const auto f = dir.fields();
  if (dir.model_type() == "bart") return load_bart<bart<simd::act::gelu, false, W, W>>(dir);
  if (dir.model_type() == "marian") return load_bart<bart<simd::act::silu, true, W, W>>(dir);
  const bool gated = t5_gated(f), tied = t5_tied(f);
  if (gated && !tied) return load_t5<t5<true, false, W, W>>(dir);
  if (!gated && tied) return load_t5<t5<false, true, W, W>>(dir);
  if (gated) return load_t5<t5<true, true, W, W>>(dir);
  return load_t5<t5<false, false, W, W>>(dir);
}

/// @brief The encoder of a directory (bert, sentence-transformers' BERT models), loaded, in format W.
template <quant::weight_format W = quant::f32>
basic_hf_encoder<W> open_encoder(const io::hf_directory& dir) {
  if (hf_kind_of(dir) != hf_kind::encoder)
    detail::wrong_kind(dir, "an encoder", hf_kind_of(dir) == hf_kind::decoder ? "use open_decoder" : "use open_seq2seq");
  return load_bert<W, W>(dir);
}

/// @brief open_decoder of the directory at path (its files are closed once the weights are loaded).
template <quant::weight_format W = quant::f32>
basic_hf_decoder<W> open_decoder(const std::filesystem::path& path) {
  return open_decoder<W>(io::hf_directory(path));
}
/// @brief open_seq2seq of the directory at path.
template <quant::weight_format W = quant::f32>
basic_hf_seq2seq<W> open_seq2seq(const std::filesystem::path& path) {
  return open_seq2seq<W>(io::hf_directory(path));
}
/// @brief open_encoder of the directory at path.
template <quant::weight_format W = quant::f32>
basic_hf_encoder<W> open_encoder(const std::filesystem::path& path) {
  return open_encoder<W>(io::hf_directory(path));
}

}  // namespace tformer::models
