// Pre-tokenizers: the second stage of a tokenizer, splitting normalized text into the pieces the
// model encodes one by one, as Hugging Face tokenizers defines them (BertPreTokenizer, ByteLevel,
// Split, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit,
// Sequence). Empty pieces are dropped, as there.
#pragma once

#include <array>
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json_config.hpp"
#include "normalizer.hpp"
#include "regex.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief One piece of pre-tokenized text. `first`: it starts where the input text starts (what
/// Metaspace's prepend_scheme "first" looks at).
struct piece {
  std::string text;
  bool first = false;
};

/// @brief How a split treats the matched delimiters (Hugging Face's SplitDelimiterBehavior).
enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

namespace detail {
struct span_match {
  std::size_t b, e;
  bool match;
};

// Byte ranges of the pieces a split keeps, given the matches covering the text (HF's
// NormalizedString::split).
inline std::vector<std::pair<std::size_t, std::size_t>> apply_behavior(const std::vector<span_match>& m, split_behavior how) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  bool previous = false;
  switch (how) {
    case split_behavior::removed:
      for (const auto& s : m)
        if (!s.match) out.emplace_back(s.b, s.e);
      break;
    case split_behavior::isolated:
      for (const auto& s : m) out.emplace_back(s.b, s.e);
      break;
    case split_behavior::merged_with_previous:
      for (const auto& s : m) {
        if (s.match && !previous && !out.empty()) out.back().second = s.e;
        else out.emplace_back(s.b, s.e);
        previous = s.match;
      }
      break;
    case split_behavior::merged_with_next:
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->match && !previous && !out.empty()) out.back().first = it->b;
        else out.emplace_back(it->b, it->e);
        previous = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case split_behavior::contiguous:
      for (const auto& s : m) {
        if (s.match == previous && !out.empty()) out.back().second = s.e;
        else out.emplace_back(s.b, s.e);
        previous = s.match;
      }
      break;
  }
  return out;
}

// The matches of a regex, with the gaps between them, covering s.
inline std::vector<span_match> regex_spans(const regex& re, std::string_view s, bool invert) {
  std::vector<span_match> out;
  if (s.empty()) return {{0, 0, false}};
  std::size_t prev = 0;
  for (const auto& [b, e] : re.find_all(s)) {
    if (prev != b) out.push_back({prev, b, invert});
    out.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != s.size()) out.push_back({prev, s.size(), invert});
  return out;
}

// Each character for which pred holds is a match of its own; the runs between are gaps.
inline std::vector<span_match> char_spans(std::string_view s, const std::function<bool(char32_t)>& pred) {
  std::vector<span_match> out;
  std::size_t gap = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t b = i;
    if (pred(next_code_point(s, i))) {
      if (gap != b) out.push_back({gap, b, false});
      out.push_back({b, i, true});
      gap = i;
    }
  }
  if (gap != s.size()) out.push_back({gap, s.size(), false});
  return out;
}

inline split_behavior read_behavior(const json_node& j) {
  const std::string b = j.str();
  if (b == "Removed") return split_behavior::removed;
  if (b == "Isolated") return split_behavior::isolated;
  if (b == "MergedWithPrevious") return split_behavior::merged_with_previous;
  if (b == "MergedWithNext") return split_behavior::merged_with_next;
  if (b == "Contiguous") return split_behavior::contiguous;
  j.fail("'" + b + "' is not a split behavior (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

// BERT's punctuation: ASCII punctuation or a Unicode P* character.
inline bool is_bert_punctuation(char32_t c) noexcept {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) || is_punctuation(c);
}
}  // namespace detail

/// @brief Splits pieces of text into smaller pieces.
struct pre_tokenizer {
  virtual ~pre_tokenizer() = default;
  virtual void split(std::vector<piece>& pieces) const = 0;

 protected:
  // Replaces every piece by the ranges f returns for its text (empty ranges dropped).
  template <class F>
  static void split_each(std::vector<piece>& pieces, F&& f) {
    std::vector<piece> out;
    out.reserve(pieces.size());
    for (auto& p : pieces) {
      for (const auto& [b, e] : f(std::string_view(p.text)))
        if (e > b) out.push_back({p.text.substr(b, e - b), p.first && b == 0});
    }
    pieces = std::move(out);
  }
};

/// @brief Splits on a regex or on characters, with a delimiter behavior (Split, Punctuation,
/// Digits, WhitespaceSplit, CharDelimiterSplit, Whitespace, BertPreTokenizer are made of these).
struct split_pre_tokenizer final : pre_tokenizer {
  std::optional<regex> pattern;              // a regex split, or
  std::function<bool(char32_t)> predicate;   // a character split
  split_behavior behavior = split_behavior::isolated;
  bool invert = false;

  void split(std::vector<piece>& pieces) const override {
    split_each(pieces, [&](std::string_view s) {
      auto spans = pattern ? detail::regex_spans(*pattern, s, invert) : detail::char_spans(s, predicate);
      if (!pattern && invert)
        for (auto& m : spans) m.match = !m.match;
      return detail::apply_behavior(spans, behavior);
    });
  }
};

/// @brief GPT-2's byte-level pre-tokenizer: optional prefix space, the GPT-2 regex split, then
/// every byte mapped to a printable character (bytes_to_unicode).
struct byte_level_pre_tokenizer final : pre_tokenizer {
  static constexpr std::string_view gpt2_pattern =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  bool add_prefix_space = false;
  bool use_regex = true;
  regex re{gpt2_pattern};

  /// @brief The character standing for byte b (GPT-2's bytes_to_unicode), as UTF-8.
  static const std::array<std::string, 256>& byte_chars() {
    static const std::array<std::string, 256> table = [] {
      std::array<std::string, 256> t;
      int extra = 0;
      for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        t[static_cast<std::size_t>(b)] = utf8(printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++));
      }
      return t;
    }();
    return table;
  }
  /// @brief s with every byte replaced by its character.
  static std::string map_bytes(std::string_view s) {
    const auto& t = byte_chars();
    std::string out;
    out.reserve(s.size() * 2);
    for (const char c : s) out += t[static_cast<unsigned char>(c)];
    return out;
  }

  void split(std::vector<piece>& pieces) const override {
    std::vector<piece> out;
    for (auto& p : pieces) {
      std::string s = std::move(p.text);
      if (add_prefix_space && (s.empty() || s[0] != ' ')) s.insert(s.begin(), ' ');
      if (!use_regex) {
        if (!s.empty()) out.push_back({map_bytes(s), p.first});
        continue;
      }
      for (const auto& [b, e] : detail::apply_behavior(detail::regex_spans(re, s, false), split_behavior::isolated))
        if (e > b) out.push_back({map_bytes(std::string_view(s).substr(b, e - b)), p.first && b == 0});
    }
    pieces = std::move(out);
  }
};

/// @brief SentencePiece's spaces: ' ' becomes the replacement ("▁"), a replacement is prepended
/// (always, never, or on the first piece of the text), then the text is split before each
/// replacement (when split is set).
struct metaspace_pre_tokenizer final : pre_tokenizer {
  enum class prepend { always, never, first };
  std::string replacement = "\xE2\x96\x81";
  prepend scheme = prepend::always;
  bool split_pieces = true;

  void split(std::vector<piece>& pieces) const override {
    std::vector<piece> out;
    for (auto& p : pieces) {
      if (p.text.empty()) continue;
      std::string s;
      for (const char c : p.text) {
        if (c == ' ') s += replacement;
        else s += c;
      }
      const bool starts = s.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == prepend::always || (scheme == prepend::first && p.first))) s = replacement + s;
      if (!split_pieces) {
        if (!s.empty()) out.push_back({std::move(s), p.first});
        continue;
      }
      std::vector<detail::span_match> spans;
      std::size_t gap = 0;
      for (std::size_t i = s.find(replacement); i != std::string::npos; i = s.find(replacement, i + replacement.size())) {
        if (gap != i) spans.push_back({gap, i, false});
        spans.push_back({i, i + replacement.size(), true});
        gap = i + replacement.size();
      }
      if (gap != s.size()) spans.push_back({gap, s.size(), false});
      for (const auto& [b, e] : detail::apply_behavior(spans, split_behavior::merged_with_next))
        if (e > b) out.push_back({s.substr(b, e - b), p.first && b == 0});
    }
    pieces = std::move(out);
  }
};

/// @brief Pre-tokenizers applied in order.
struct sequence_pre_tokenizer final : pre_tokenizer {
  std::vector<std::unique_ptr<pre_tokenizer>> steps;
  void split(std::vector<piece>& pieces) const override {
    for (const auto& s : steps) s->split(pieces);
  }
};

/// @brief The pre-tokenizer a tokenizer.json "pre_tokenizer" object describes (nullptr for null).
inline std::unique_ptr<pre_tokenizer> make_pre_tokenizer(const json_node& j) {
  if (j.value.is_null()) return nullptr;
  j.require_object();
  const std::string type = j.type();
  const auto chars = [](std::function<bool(char32_t)> pred, split_behavior how) {
    auto p = std::make_unique<split_pre_tokenizer>();
    p->predicate = std::move(pred);
    p->behavior = how;
    return p;
  };
  if (type == "BertPreTokenizer") {
    auto seq = std::make_unique<sequence_pre_tokenizer>();
    seq->steps.push_back(chars([](char32_t c) { return is_whitespace(c); }, split_behavior::removed));
    seq->steps.push_back(chars(detail::is_bert_punctuation, split_behavior::isolated));
    return seq;
  }
  if (type == "WhitespaceSplit") return chars([](char32_t c) { return is_whitespace(c); }, split_behavior::removed);
  if (type == "Whitespace") {
    auto p = std::make_unique<split_pre_tokenizer>();
    p->pattern = regex(R"(\w+|[^\w\s]+)", j.where());
    p->behavior = split_behavior::removed;
    p->invert = true;
    return p;
  }
  if (type == "Punctuation")
    return chars(detail::is_bert_punctuation, j.has("behavior") ? detail::read_behavior(j.at("behavior")) : split_behavior::isolated);
  if (type == "Digits") {
    const bool individual = j.bool_or("individual_digits", false);
    // Rust's char::is_numeric: general categories Nd, Nl, No
    const auto numeric = [](char32_t c) {
      const int k = category(c);
      return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
    };
    return chars(numeric, individual ? split_behavior::isolated : split_behavior::contiguous);
  }
  if (type == "CharDelimiterSplit") {
    const std::string d = j.at("delimiter").str();
    std::size_t k = 0;
    if (d.empty() || !is_valid_utf8(d) || (next_code_point(d, k), k != d.size())) j.at("delimiter").fail("must be one character");
    std::size_t i = 0;
    const char32_t c = next_code_point(d, i);
    return chars([c](char32_t x) { return x == c; }, split_behavior::removed);
  }
  if (type == "Split") {
    auto p = std::make_unique<split_pre_tokenizer>();
    p->pattern = read_pattern(j.at("pattern"));
    p->behavior = detail::read_behavior(j.at("behavior"));
    p->invert = j.bool_or("invert", false);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<byte_level_pre_tokenizer>();
    p->add_prefix_space = j.bool_or("add_prefix_space", true);
    p->use_regex = j.bool_or("use_regex", true);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<metaspace_pre_tokenizer>();
    if (j.has("replacement")) {
      p->replacement = j.at("replacement").str();
      std::size_t k = 0;
      if (p->replacement.empty() || !is_valid_utf8(p->replacement) || (next_code_point(p->replacement, k), k != p->replacement.size()))
        j.at("replacement").fail("must be one character");
    }
    if (j.has("prepend_scheme")) {
      const std::string s = j.at("prepend_scheme").str();
      if (s == "always") p->scheme = metaspace_pre_tokenizer::prepend::always;
      else if (s == "never") p->scheme = metaspace_pre_tokenizer::prepend::never;
      else if (s == "first") p->scheme = metaspace_pre_tokenizer::prepend::first;
      else j.at("prepend_scheme").fail("'" + s + "' is not a prepend scheme (always, never, first)");
    } else if (j.has("add_prefix_space")) {
      p->scheme = j.at("add_prefix_space").boolean() ? metaspace_pre_tokenizer::prepend::always : metaspace_pre_tokenizer::prepend::never;
    }
    p->split_pieces = j.bool_or("split", true);
    return p;
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<sequence_pre_tokenizer>();
    const auto list = j.at("pretokenizers");
    list.require_array();
    for (std::size_t i = 0; i < list.value.size(); ++i)
      if (auto step = make_pre_tokenizer(list[i])) seq->steps.push_back(std::move(step));
    return seq;
  }
  j.unsupported_type(
      "pre-tokenizers: BertPreTokenizer, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation, "
      "CharDelimiterSplit, Sequence");
}

}  // namespace tformer::text
