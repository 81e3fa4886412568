// Decoders: token strings -> text, as Hugging Face tokenizers defines them (WordPiece, ByteLevel,
// Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence). Each maps the list of
// token strings to a new list; the tokenizer joins the final list.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_config.hpp"
#include "normalizer.hpp"
#include "pre_tokenizer.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief Maps a list of token strings to the strings that are joined into the text.
struct decoder {
  virtual ~decoder() = default;
  virtual void decode(std::vector<std::string>& tokens) const = 0;
};

/// @brief WordPiece: "##" continuations glued to the previous token, others after a space;
/// cleanup removes the spaces before punctuation and in English contractions.
struct wordpiece_decoder final : decoder {
  std::string prefix = "##";
  bool cleanup = true;

  static void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (std::size_t i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size())) s.replace(i, from.size(), to);
  }
  static void clean(std::string& s) {
    replace_all(s, " .", ".");
    replace_all(s, " ?", "?");
    replace_all(s, " !", "!");
    replace_all(s, " ,", ",");
    replace_all(s, " ' ", "'");
    replace_all(s, " n't", "n't");
    replace_all(s, " 'm", "'m");
    replace_all(s, " do not", " don't");
    replace_all(s, " 's", "'s");
    replace_all(s, " 've", "'ve");
    replace_all(s, " 're", "'re");
  }
  void decode(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      if (i != 0) {
        if (!prefix.empty() && t.compare(0, prefix.size(), prefix) == 0) t.erase(0, prefix.size());
        else t.insert(t.begin(), ' ');
      }
      if (cleanup) clean(t);
    }
  }
};

/// @brief Byte-level: every token's characters mapped back to bytes (a token with a character
/// outside the byte alphabet is kept as it is), all joined, invalid UTF-8 replaced by U+FFFD.
struct byte_level_decoder final : decoder {
  void decode(std::vector<std::string>& tokens) const override {
    static const std::unordered_map<char32_t, char> bytes = [] {
      std::unordered_map<char32_t, char> m;
      const auto& t = byte_level_pre_tokenizer::byte_chars();
      for (int b = 0; b < 256; ++b) {
        std::size_t i = 0;
        m.emplace(next_code_point(t[static_cast<std::size_t>(b)], i), static_cast<char>(b));
      }
      return m;
    }();
    std::string out;
    for (const auto& tok : tokens) {
      std::string raw;
      bool all = true;
      for (std::size_t i = 0; i < tok.size() && all;) {
        const auto it = bytes.find(next_code_point(tok, i));
        if (it == bytes.end()) all = false;
        else raw += it->second;
      }
      out += all ? raw : tok;
    }
    tokens.assign(1, sanitize_utf8(out));
  }
};

/// @brief Metaspace: the replacement character becomes a space; in the first token it is
/// dropped unless the prepend scheme is "never".
struct metaspace_decoder final : decoder {
  std::string replacement = "\xE2\x96\x81";
  bool drop_first = true;
  void decode(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (std::size_t k = 0; k < t.size();) {
        if (t.compare(k, replacement.size(), replacement) == 0) {
          if (!(i == 0 && drop_first)) out += ' ';
          k += replacement.size();
        } else {
          out += t[k++];
        }
      }
      tokens[i] = std::move(out);
    }
  }
};

/// @brief Byte fallback: runs of "<0xAB>" tokens become their bytes as UTF-8, or one U+FFFD
/// per byte when the run is not valid UTF-8.
struct byte_fallback_decoder final : decoder {
  static int byte_of(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; ++k) {
      const char c = t[static_cast<std::size_t>(k)];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }
  void decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string run;
    std::size_t run_len = 0;
    const auto flush = [&] {
      if (run_len == 0) return;
      if (is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        std::string r;
        for (std::size_t k = 0; k < run_len; ++k) r += replacement_utf8;
        out.push_back(r);
      }
      run.clear();
      run_len = 0;
    };
    for (auto& t : tokens) {
      const int b = byte_of(t);
      if (b >= 0) {
        run += static_cast<char>(b);
        ++run_len;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

/// @brief Joins all tokens into one.
struct fuse_decoder final : decoder {
  void decode(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

/// @brief Removes up to `start` leading and `stop` trailing copies of a character per token.
struct strip_decoder final : decoder {
  std::string content = " ";
  std::size_t start = 0, stop = 0;
  void decode(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::size_t b = 0, e = t.size();
      for (std::size_t k = 0; k < start && t.compare(b, content.size(), content) == 0 && b + content.size() <= e; ++k) b += content.size();
      for (std::size_t k = 0; k < stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  }
};

/// @brief Replaces every match of a pattern in each token.
struct replace_decoder final : decoder {
  replace_normalizer replace;
  explicit replace_decoder(replace_normalizer r) : replace(std::move(r)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = replace.normalize(t);
  }
};

/// @brief BPEDecoder: the end-of-word suffix becomes a space (none after the last token).
struct bpe_suffix_decoder final : decoder {
  std::string suffix = "</w>";
  void decode(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (suffix.empty()) continue;
      const std::string rep(i + 1 == tokens.size() ? 0 : 1, ' ');
      std::string out;
      const std::string& t = tokens[i];
      std::size_t last = 0;
      for (std::size_t k = t.find(suffix); k != std::string::npos; k = t.find(suffix, last)) {
        out.append(t, last, k - last);
        out += rep;
        last = k + suffix.size();
      }
      out.append(t, last, std::string::npos);
      tokens[i] = std::move(out);
    }
  }
};

/// @brief Decoders applied in order.
struct sequence_decoder final : decoder {
  std::vector<std::unique_ptr<decoder>> steps;
  void decode(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps) s->decode(tokens);
  }
};

/// @brief The decoder a tokenizer.json "decoder" object describes (nullptr for null).
inline std::unique_ptr<decoder> make_decoder(const json_node& j) {
  if (j.value.is_null()) return nullptr;
  j.require_object();
  const std::string type = j.type();
  if (type == "WordPiece") {
    auto d = std::make_unique<wordpiece_decoder>();
    d->prefix = j.str_or("prefix", "##");
    d->cleanup = j.bool_or("cleanup", true);
    return d;
  }
  if (type == "ByteLevel") return std::make_unique<byte_level_decoder>();
  if (type == "Metaspace") {
    auto d = std::make_unique<metaspace_decoder>();
    d->replacement = j.str_or("replacement", d->replacement);
    if (j.has("prepend_scheme")) d->drop_first = j.at("prepend_scheme").str() != "never";
    else d->drop_first = j.bool_or("add_prefix_space", true);
    if (d->replacement.empty()) j.at("replacement").fail("must not be empty");
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<byte_fallback_decoder>();
  if (type == "Fuse") return std::make_unique<fuse_decoder>();
  if (type == "Strip") {
    auto d = std::make_unique<strip_decoder>();
    d->content = j.str_or("content", " ");
    if (d->content.empty()) j.at("content").fail("must not be empty");
    d->start = static_cast<std::size_t>(std::max<std::int64_t>(0, j.int_or("start", 0)));
    d->stop = static_cast<std::size_t>(std::max<std::int64_t>(0, j.int_or("stop", 0)));
    return d;
  }
  if (type == "Replace") return std::make_unique<replace_decoder>(replace_normalizer(read_pattern(j.at("pattern")), j.at("content").str()));
  if (type == "BPEDecoder") {
    auto d = std::make_unique<bpe_suffix_decoder>();
    d->suffix = j.str_or("suffix", "</w>");
    return d;
  }
  if (type == "Sequence") {
    auto d = std::make_unique<sequence_decoder>();
    const auto list = j.at("decoders");
    list.require_array();
    for (std::size_t i = 0; i < list.value.size(); ++i)
      if (auto step = make_decoder(list[i])) d->steps.push_back(std::move(step));
    return d;
  }
  j.unsupported_type("decoders: WordPiece, ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence");
}

}  // namespace tformer::text
