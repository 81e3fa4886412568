// Normalizers: the first stage of a tokenizer, text -> text, as Hugging Face tokenizers defines
// them (BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, Replace, Prepend,
// Precompiled (SentencePiece's charsmap), Sequence). Input and output are valid UTF-8.
#pragma once

#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json_config.hpp"
#include "precompiled_charsmap.hpp"
#include "regex.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief A text -> text transformation applied before pre-tokenization.
struct normalizer {
  virtual ~normalizer() = default;
  virtual std::string normalize(std::string_view s) const = 0;
};

/// @brief BERT's normalizer: control characters removed and whitespace made ' ' (clean_text),
/// spaces around CJK ideographs, accents stripped (NFD, then Mn removed), lowercased.
struct bert_normalizer final : normalizer {
  bool clean_text = true, handle_chinese_chars = true, strip_accents = true, lowercase = true;

  /// The CJK Unified Ideograph blocks BERT pads with spaces.
  static bool is_cjk(char32_t c) noexcept {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  }
  static bool is_control(char32_t c) noexcept {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    const int k = category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO;  // unassigned code points stay, as in HF
  }

  std::string normalize(std::string_view s) const override {
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size();) {
      const char32_t c = next_code_point(s, i);
      if (clean_text) {
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_whitespace(c)) {
          out += ' ';
          continue;
        }
      }
      if (handle_chinese_chars && is_cjk(c)) {
        out += ' ';
        append_utf8(out, c);
        out += ' ';
        continue;
      }
      append_utf8(out, c);
    }
    if (strip_accents) {
      const std::string d = text::normalize(out, normal_form::nfd);
      out.clear();
      for (std::size_t i = 0; i < d.size();) {
        const char32_t c = next_code_point(d, i);
        if (category(c) != UTF8PROC_CATEGORY_MN) append_utf8(out, c);
      }
    }
    if (lowercase) out = text::lowercase(out);
    return out;
  }
};

/// @brief One of the four Unicode normalization forms.
struct unicode_normalizer final : normalizer {
  normal_form form = normal_form::nfc;
  explicit unicode_normalizer(normal_form f) : form(f) {}
  std::string normalize(std::string_view s) const override { return text::normalize(s, form); }
};

/// @brief Character-wise lowercase.
struct lowercase_normalizer final : normalizer {
  std::string normalize(std::string_view s) const override { return lowercase(s); }
};

/// @brief Removes marks (general category M).
struct strip_accents_normalizer final : normalizer {
  std::string normalize(std::string_view s) const override {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
      const char32_t c = next_code_point(s, i);
      if (!is_mark(c)) append_utf8(out, c);
    }
    return out;
  }
};

/// @brief Removes leading and/or trailing whitespace.
struct strip_normalizer final : normalizer {
  bool left = true, right = true;
  std::string normalize(std::string_view s) const override {
    std::size_t b = 0, e = s.size();
    if (left)
      while (b < e) {
        std::size_t k = b;
        if (!is_whitespace(next_code_point(s, k))) break;
        b = k;
      }
    if (right)
      while (e > b) {
        std::size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        std::size_t j = k;
        if (!is_whitespace(next_code_point(s, j))) break;
        e = k;
      }
    return std::string(s.substr(b, e - b));
  }
};

/// @brief Replaces every match of a literal string or a regex with a fixed content.
struct replace_normalizer final : normalizer {
  regex pattern;
  std::string content;
  replace_normalizer(regex p, std::string c) : pattern(std::move(p)), content(std::move(c)) {}
  std::string normalize(std::string_view s) const override {
    std::string out;
    std::size_t last = 0;
    for (const auto& [b, e] : pattern.find_all(s)) {
      out.append(s.substr(last, b - last));
      out += content;
      last = e;
    }
    out.append(s.substr(last));
    return out;
  }
};

/// @brief Prepends a string to non-empty text.
struct prepend_normalizer final : normalizer {
  std::string prefix;
  std::string normalize(std::string_view s) const override { return s.empty() ? std::string() : prefix + std::string(s); }
};

/// @brief SentencePiece's precompiled character map (T5, ALBERT, XLNet tokenizer.json files).
struct precompiled_normalizer final : normalizer {
  precompiled_charsmap map;
  std::string normalize(std::string_view s) const override { return map.normalize(s); }
};

/// @brief Normalizers applied in order.
struct sequence_normalizer final : normalizer {
  std::vector<std::unique_ptr<normalizer>> steps;
  std::string normalize(std::string_view s) const override {
    std::string out(s);
    for (const auto& n : steps) out = n->normalize(out);
    return out;
  }
};

/// @brief A regex for a {"String": s} (literal) or {"Regex": r} pattern of a tokenizer.json.
inline regex read_pattern(const json_node& j) {
  j.require_object();
  if (j.has("String")) {
    const std::string lit = j.at("String").str();
    std::string escaped;
    for (const char c : lit) {  // a backslash before an ASCII non-alphanumeric is always literal
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x80 && !std::isalnum(u)) escaped += '\\';
      escaped += c;
    }
    return regex(escaped.empty() ? "(?!)" : escaped, j.where());
  }
  if (j.has("Regex")) return regex(j.at("Regex").str(), j.where());
  j.fail("must hold a \"String\" or a \"Regex\" pattern");
}

/// @brief The normalizer a tokenizer.json "normalizer" object describes (nullptr for null).
inline std::unique_ptr<normalizer> make_normalizer(const json_node& j) {
  if (j.value.is_null()) return nullptr;
  j.require_object();
  const std::string type = j.type();
  if (type == "BertNormalizer") {
    auto n = std::make_unique<bert_normalizer>();
    n->clean_text = j.bool_or("clean_text", true);
    n->handle_chinese_chars = j.bool_or("handle_chinese_chars", true);
    n->lowercase = j.bool_or("lowercase", true);
    n->strip_accents = j.bool_or("strip_accents", n->lowercase);  // null: follows lowercase
    return n;
  }
  if (type == "NFC") return std::make_unique<unicode_normalizer>(normal_form::nfc);
  if (type == "NFD") return std::make_unique<unicode_normalizer>(normal_form::nfd);
  if (type == "NFKC") return std::make_unique<unicode_normalizer>(normal_form::nfkc);
  if (type == "NFKD") return std::make_unique<unicode_normalizer>(normal_form::nfkd);
  if (type == "Lowercase") return std::make_unique<lowercase_normalizer>();
  if (type == "StripAccents") return std::make_unique<strip_accents_normalizer>();
  if (type == "Strip") {
    auto n = std::make_unique<strip_normalizer>();
    n->left = j.bool_or("strip_left", true);
    n->right = j.bool_or("strip_right", true);
    return n;
  }
  if (type == "Replace") return std::make_unique<replace_normalizer>(read_pattern(j.at("pattern")), j.at("content").str());
  if (type == "Prepend") {
    auto n = std::make_unique<prepend_normalizer>();
    n->prefix = j.at("prepend").str();
    return n;
  }
  if (type == "Precompiled") {
    auto n = std::make_unique<precompiled_normalizer>();
    n->map = precompiled_charsmap::from_base64(j.at("precompiled_charsmap"));
    return n;
  }
  if (type == "Sequence") {
    auto n = std::make_unique<sequence_normalizer>();
    const auto list = j.at("normalizers");
    list.require_array();
    for (std::size_t i = 0; i < list.value.size(); ++i)
      if (auto step = make_normalizer(list[i])) n->steps.push_back(std::move(step));
    return n;
  }
  j.unsupported_type("normalizers: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Replace, Prepend, Precompiled, Sequence");
}

}  // namespace tformer::text
