// The model stage of a tokenizer: one pre-tokenized piece -> token ids. The models (WordPiece,
// BPE, Unigram) share the vocabulary (token string <-> id) kept here.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/error.hpp"

namespace tformer::text {

/// @brief Token strings by id and ids by token string. Ids need not be contiguous.
class vocabulary {
 public:
  /// @brief Adds token with id; throws value_error (naming `where`) on a repeated id.
  void add(std::string token, std::int32_t id, const std::string& where) {
    if (id < 0) throw value_error(where + ": token '" + token + "' has a negative id " + std::to_string(id));
    if (static_cast<std::size_t>(id) >= tokens_.size()) {
      if (static_cast<std::size_t>(id) > tokens_.size() + (std::size_t{1} << 24))
        throw value_error(where + ": token id " + std::to_string(id) + " is far past the vocabulary size");
      tokens_.resize(static_cast<std::size_t>(id) + 1);
      present_.resize(static_cast<std::size_t>(id) + 1, false);
    }
    if (present_[static_cast<std::size_t>(id)])
      throw value_error(where + ": id " + std::to_string(id) + " is given to both '" + tokens_[static_cast<std::size_t>(id)] +
                        "' and '" + token + "'");
    present_[static_cast<std::size_t>(id)] = true;
    ids_.emplace(token, id);  // a repeated string keeps its first id
    tokens_[static_cast<std::size_t>(id)] = std::move(token);
  }
  /// @brief The id of token, or -1.
  std::int32_t find(std::string_view token) const {
    const auto it = ids_.find(std::string(token));
    return it == ids_.end() ? -1 : it->second;
  }
  /// @brief The string of id, or nullptr when no token has it.
  const std::string* token(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < tokens_.size() && present_[static_cast<std::size_t>(id)]
               ? &tokens_[static_cast<std::size_t>(id)]
               : nullptr;
  }
  /// @brief One more than the largest id.
  std::int64_t size() const noexcept { return static_cast<std::int64_t>(tokens_.size()); }
  /// @brief SentencePiece's byte fallback: appends to out the ids of the tokens <0xXX> of every
  /// byte of piece and returns true, or returns false (out unchanged) when one of them is missing.
  bool append_byte_tokens(std::string_view piece, std::vector<std::int32_t>& out) const {
    const std::size_t start = out.size();
    for (const char c : piece) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(static_cast<unsigned char>(c)));
      const std::int32_t id = find(name);
      if (id < 0) {
        out.resize(start);
        return false;
      }
      out.push_back(id);
    }
    return !piece.empty();
  }

 private:
  std::vector<std::string> tokens_;
  std::vector<bool> present_;
  std::unordered_map<std::string, std::int32_t> ids_;
};

/// @brief Encodes one pre-tokenized piece into ids.
struct model {
  virtual ~model() = default;
  /// @brief Appends the ids of piece (valid UTF-8) to out.
  virtual void encode(std::string_view piece, std::vector<std::int32_t>& out) const = 0;
  virtual const vocabulary& vocab() const noexcept = 0;
};

}  // namespace tformer::text
