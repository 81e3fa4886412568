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

/// One line's answer from bundle::try_normalize: its normalized date, or why it cannot be read.
struct line_result {
  std::string date;   // YYYY-MM-DD (whatever the model wrote); empty for a bad line
  std::string error;  // empty for a good line, else the reason: "empty", "... not in the vocabulary", ...
  bool ok() const { return error.empty(); }
};

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

  /// The source tokens of one line; value_error with the bare reason (no line number) when the
  /// model cannot read it: empty, longer than max_source_length, or a character outside the vocabulary.
  std::vector<std::int32_t> encode(const std::string& line) const {
    if (line.empty()) throw value_error("empty");
    auto ids = vocab.encode(line);  // value_error for an unknown character or invalid UTF-8
    const std::int64_t max_source = config.at("max_source_length");
    if (static_cast<std::int64_t>(ids.size()) > max_source)
      throw value_error(std::to_string(ids.size()) + " characters; the model reads at most " +
                        std::to_string(max_source));
    return ids;
  }

  /// The normalized date of every line; value_error "line N: why" for the first line the model
  /// cannot read (see encode), before anything is decoded.
  template <generate::logits_processor Processor = generate::no_processing>
  std::vector<std::string> normalize(const std::vector<std::string>& lines, const generate::options& o,
                                     const Processor& proc = {}) const {
    std::vector<std::vector<std::int32_t>> sources;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      try {
        sources.push_back(encode(lines[i]));
      } catch (const value_error& e) {
        throw value_error("line " + std::to_string(i + 1) + ": " + e.what());
      }
    }
    std::vector<std::string> out;
    for (const auto& hyps : generate::run(*net, sources, o, proc)) out.push_back(vocab.decode(hyps.front().tokens));
    return out;
  }

  /// One answer per line, in order: the good lines are decoded together in one batch, a bad line
  /// gets its reason (see encode) instead of a date. Bad options still throw (generate::run's
  /// value_error), even when no line is good.
  template <generate::logits_processor Processor = generate::no_processing>
  std::vector<line_result> try_normalize(const std::vector<std::string>& lines, const generate::options& o,
                                         const Processor& proc = {}) const {
    std::vector<line_result> out(lines.size());
    std::vector<std::vector<std::int32_t>> sources;  // the good lines' tokens
    std::vector<std::size_t> good;                   // and their indices in lines
    for (std::size_t i = 0; i < lines.size(); ++i) {
      try {
        sources.push_back(encode(lines[i]));
        good.push_back(i);
      } catch (const value_error& e) {
        out[i].error = e.what();
      }
    }
    const auto hyps = generate::run(*net, sources, o, proc);
    for (std::size_t k = 0; k < good.size(); ++k) out[good[k]].date = vocab.decode(hyps[k].front().tokens);
    return out;
  }
};

}  // namespace dates
