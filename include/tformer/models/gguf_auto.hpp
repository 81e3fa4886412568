// Runtime dispatch on a GGUF file's general.architecture, for programs that accept any decoder
// GGUF (the GGUF counterpart of hf_auto.hpp): open_gguf_decoder reads the config with the
// architecture's preset reader, picks an instantiation whose weight formats are the file's when
// it has one (layers and token table all Q8_0, or Q4_1 layers with a Q8_0 table: kept as they
// are) and float otherwise (dequantized on load), and loads the weights.
//
//   io::gguf_file f("SmolLM2-135M-Instruct.Q4_1.gguf");
//   auto lm = models::open_gguf_decoder(f);   // llama, qwen2, gpt2
//   auto out = std::visit([&](const auto& m) { return generate::run(m, prompts, options); }, lm);
#pragma once

#include <string>
#include <variant>

#include "../io/gguf.hpp"
#include "../io/gguf_source.hpp"
#include "../io/name_maps.hpp"
#include "../quant/f32.hpp"
#include "../quant/q4_1.hpp"
#include "../quant/q8_0.hpp"
#include "decoder.hpp"
#include "gpt2.hpp"
#include "llama.hpp"

namespace tformer::models {

/// @brief A decoder-only model from a GGUF file.
using gguf_decoder = std::variant<decoder_lm<llama<quant::f32, quant::f32, false>>, decoder_lm<llama<quant::f32, quant::f32, true>>,
                                  decoder_lm<llama<quant::q8_0, quant::q8_0, false>>, decoder_lm<llama<quant::q8_0, quant::q8_0, true>>,
                                  decoder_lm<llama<quant::q4_1, quant::q8_0, true>>, decoder_lm<gpt2<>>>;

/// @brief The architectures open_gguf_decoder reads.
inline constexpr const char* gguf_decoder_architectures = "llama, qwen2, gpt2";

namespace detail {
// The type name every tensor blk.N.<role>.weight of a llama-family file shares ("" when they differ).
inline std::string gguf_layer_type(const io::gguf_file& f, std::int64_t layers) {
  std::string type;
  for (std::int64_t i = 0; i < layers; ++i)
    for (const char* role : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      const auto* t = f.find("blk." + std::to_string(i) + "." + role + ".weight");
      if (!t) return "";
      if (type.empty()) type = t->type_name;
      if (t->type_name != type) return "";
    }
  return type;
}

template <class M>
gguf_decoder load_gguf_as(const io::gguf_file& f, const model_config& c, const io::name_map& map) {
  M m(c);
  io::load_gguf(m, f, map);
  return m;
}
}  // namespace detail

/// @brief The decoder-only model of a GGUF file (general.architecture llama, qwen2 or gpt2),
/// loaded; io_error naming the file and the architecture for any other.
inline gguf_decoder open_gguf_decoder(const io::gguf_file& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch == "gpt2") return detail::load_gguf_as<decoder_lm<gpt2<>>>(f, gpt2_config(f), io::gguf_gpt2());
  if (arch != "llama" && arch != "qwen2")
    throw io_error("tformer: gguf file '" + f.path() + "': general.architecture is '" + arch +
                   "', which open_gguf_decoder cannot run; supported: " + gguf_decoder_architectures);
  const model_config c = llama_config(f);
  const io::name_map map = arch == "qwen2" ? io::gguf_qwen2() : io::gguf_llama();
  const bool tied = gguf_tied_head(f);
  const std::string layers = detail::gguf_layer_type(f, c.layers);
  const auto* table = f.find("token_embd.weight");
  const auto* head = f.find("output.weight");
  const bool table_q8 = table && table->type_name == "Q8_0", head_q8 = tied || (head && head->type_name == "Q8_0");
  if (layers == "Q4_1" && table_q8 && tied) return detail::load_gguf_as<decoder_lm<llama<quant::q4_1, quant::q8_0, true>>>(f, c, map);
  if (layers == "Q8_0" && table_q8 && head_q8) {
    if (tied) return detail::load_gguf_as<decoder_lm<llama<quant::q8_0, quant::q8_0, true>>>(f, c, map);
    return detail::load_gguf_as<decoder_lm<llama<quant::q8_0, quant::q8_0, false>>>(f, c, map);
  }
  if (tied) return detail::load_gguf_as<decoder_lm<llama<quant::f32, quant::f32, true>>>(f, c, map);
  return detail::load_gguf_as<decoder_lm<llama<quant::f32, quant::f32, false>>>(f, c, map);
}

}  // namespace tformer::models
