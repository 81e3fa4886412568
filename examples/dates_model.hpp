// The bundled date-normalization model (examples/data/dates, trained by tools/train_dates.py):
// its definition in user code, loading the bundle (config.json, vocab.json, model.safetensors),
// and turning lines of text into normalized dates. Used by tformer_dates and by its tests.
#pragma once

#include <tformer/generate/search.hpp>
#include <tformer/tformer.hpp>
#include <tformer/text/char_vocab.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dates {

using namespace tformer;

// A Pre-LN Transformer (PyTorch's nn.Transformer, norm_first=True) with sinusoidal positions and
// one embedding table shared by source, target and the output layer.
struct spec {
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using positions = nn::sinusoidal_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};
using model = models::encoder_decoder<spec>;

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw io_error("tformer: cannot open '" + path + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw io_error("tformer: '" + path + "' is not valid JSON: " + e.what());
  }
}

/// The model with its vocabulary and settings.
struct bundle {
  nlohmann::json config;
  text::char_vocab vocab;
  std::unique_ptr<model> net;

  /// Loads dir/config.json, dir/vocab.json and dir/model.safetensors (io_error when missing or corrupt).
  static bundle load(const std::string& dir) {
    bundle b;
    b.config = read_json(dir + "/config.json");
    b.vocab = text::char_vocab::from_json(read_json(dir + "/vocab.json"));
    const auto& c = b.config;
    try {
      models::model_config mc;
      mc.vocab = c.at("vocab_size"), mc.layers = c.at("layers");
      const std::int64_t d = c.at("d_model");
      mc.embed_scale = std::sqrt(static_cast<float>(d));
      mc.layer.attention = {.d_model = d, .heads = c.at("heads")};
      mc.layer.ffn = {.d_model = d, .d_ff = c.at("d_ff")};
      mc.layer.norm_eps = c.at("norm_eps");
      b.net = std::make_unique<model>(mc);
    } catch (const nlohmann::json::exception& e) {
      throw io_error("tformer: '" + dir + "/config.json' lacks a setting: " + e.what());
    }
    auto names = io::torch_transformer();
    names.add("embed.tokens.weight", "embed.weight");
    io::load_safetensors(*b.net, io::safetensors_file(dir + "/model.safetensors"), names);
    return b;
  }

  /// Decoding settings for this model: its end and start tokens and output length.
  generate::options options() const {
    generate::options o;
    o.eos_ids = {config.at("eos_id").get<std::int32_t>()};
    o.decoder_start_id = config.at("bos_id").get<std::int32_t>();
    o.max_new_tokens = config.at("max_target_length").get<std::int64_t>();
    return o;
  }

  /// The normalized date of every line (value_error for an empty or too long line or an unknown
  /// character, naming the line).
  template <generate::logits_processor Processor = generate::no_processing>
  std::vector<std::string> normalize(const std::vector<std::string>& lines, const generate::options& o,
                                     const Processor& proc = {}) const {
    const std::int64_t max_source = config.at("max_source_length");
    std::vector<std::vector<std::int32_t>> sources;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string where = "line " + std::to_string(i + 1);
      if (lines[i].empty()) throw value_error(where + " is empty");
      std::vector<std::int32_t> ids;
      try {
        ids = vocab.encode(lines[i]);
      } catch (const value_error& e) {
        throw value_error(where + ": " + e.what());
      }
      if (static_cast<std::int64_t>(ids.size()) > max_source)
        throw value_error(where + " has " + std::to_string(ids.size()) + " characters; the model reads at most " +
                          std::to_string(max_source));
      sources.push_back(std::move(ids));
    }
    std::vector<std::string> out;
    for (const auto& hyps : generate::run(*net, sources, o, proc)) out.push_back(vocab.decode(hyps.front().tokens));
    return out;
  }
};

}  // namespace dates
