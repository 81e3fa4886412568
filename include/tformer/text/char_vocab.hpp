// A character vocabulary: one token per Unicode character plus named special tokens ("<pad>",
// "<s>", ...). Encoding splits UTF-8 text into characters; an unknown character is an error
// that names it and its position (or maps to <unk> when asked to).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"

namespace tformer::text {

/// @brief Token strings by id, with a lookup from character to id.
class char_vocab {
 public:
  char_vocab() = default;
  /// @brief tokens[i] is the string of id i; multi-character strings are special tokens.
  explicit char_vocab(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (!ids_.emplace(tokens_[i], static_cast<std::int32_t>(i)).second)
        throw value_error("tformer::text::char_vocab: token '" + tokens_[i] + "' appears twice (ids " +
                          std::to_string(ids_[tokens_[i]]) + " and " + std::to_string(i) + ")");
    }
  }
  /// @brief From a JSON array of token strings.
  static char_vocab from_json(const nlohmann::json& j) {
    if (!j.is_array()) throw value_error("tformer::text::char_vocab: the vocabulary must be a JSON array of strings");
    std::vector<std::string> tokens;
    for (const auto& t : j) {
      if (!t.is_string()) throw value_error("tformer::text::char_vocab: vocabulary entry " + t.dump() + " is not a string");
      tokens.push_back(t.get<std::string>());
    }
    return char_vocab(std::move(tokens));
  }

  std::int64_t size() const noexcept { return static_cast<std::int64_t>(tokens_.size()); }
  /// @brief The id of a token string; throws value_error when absent.
  std::int32_t id(std::string_view token) const {
    const auto it = ids_.find(std::string(token));
    if (it == ids_.end()) throw value_error("tformer::text::char_vocab: no token '" + std::string(token) + "'");
    return it->second;
  }
  const std::string& token(std::int32_t id) const {
    if (id < 0 || id >= size())
      throw value_error("tformer::text::char_vocab: id " + std::to_string(id) + " is outside [0, " + std::to_string(size()) + ")");
    return tokens_[static_cast<std::size_t>(id)];
  }

  /// @brief Ids of the characters of UTF-8 text. An unknown character throws value_error naming
  /// it and its character position, unless unk_id >= 0, which it then maps to.
  std::vector<std::int32_t> encode(std::string_view text, std::int32_t unk_id = -1) const {
    std::vector<std::int32_t> out;
    std::size_t i = 0, position = 0;
    while (i < text.size()) {
      const auto lead = static_cast<unsigned char>(text[i]);
      const std::size_t n = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
      if (n == 0 || i + n > text.size())
        throw value_error("tformer::text::char_vocab: invalid UTF-8 at byte " + std::to_string(i));
      const std::string ch(text.substr(i, n));
      const auto it = ids_.find(ch);
      if (it != ids_.end()) {
        out.push_back(it->second);
      } else if (unk_id >= 0) {
        out.push_back(unk_id);
      } else {
        throw value_error("tformer::text::char_vocab: character '" + ch + "' at position " + std::to_string(position) +
                          " is not in the vocabulary");
      }
      i += n;
      ++position;
    }
    return out;
  }

  /// @brief The text of ids, leaving out special (multi-character) tokens.
  std::string decode(std::span<const std::int32_t> ids) const {
    std::string s;
    for (const auto id : ids) {
      const auto& t = token(id);
      if (is_special(t)) continue;
      s += t;
    }
    return s;
  }

 private:
  static bool is_special(const std::string& t) { return t.size() > 1 && t.front() == '<' && t.back() == '>'; }
  std::vector<std::string> tokens_;
  std::map<std::string, std::int32_t> ids_;
};

}  // namespace tformer::text
