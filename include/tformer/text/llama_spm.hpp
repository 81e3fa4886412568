// SentencePiece tokenization as llama.cpp runs it for a GGUF vocabulary whose
// tokenizer.ggml.model is "llama" (llm_tokenizer_spm and token_to_piece in llama.cpp's
// src/llama-vocab.cpp); text/gguf_tokenizer.hpp assembles the tokenizer from these parts:
//
//   llama_spm_normalizer  each text segment (the text between special tokens) gets a space in
//                         front when tokenizer.ggml.add_space_prefix, then every ' ' becomes "▁"
//                         (only U+0020: tabs, newlines and other spaces stay as they are);
//   llama_spm             the segment split into UTF-8 characters, then adjacent symbols merged
//                         while their concatenation is a token, best score first (ties: the
//                         leftmost pair); a final symbol that is no token becomes the byte tokens
//                         <0xXX> of its bytes (byte fallback);
//   llama_spm_decoder     token -> text as token_to_piece: "▁" -> ' ' in NORMAL tokens, a BYTE
//                         token <0xXX> -> its byte, CONTROL / UNKNOWN / USER_DEFINED tokens as
//                         written, UNUSED and UNDEFINED ones -> nothing; the first token loses one
//                         leading space when tokenizer.ggml.add_space_prefix; the bytes joined and
//                         invalid UTF-8 replaced by U+FFFD.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "decoder.hpp"
#include "model.hpp"
#include "normalizer.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief llama.cpp's token types (the values of tokenizer.ggml.token_type).
enum class gguf_token_type : std::int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

namespace detail {
inline constexpr std::string_view spm_space = "\xE2\x96\x81";  // U+2581, SentencePiece's "▁"

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

/// @brief llama.cpp's SentencePiece space handling of one text segment: a space in front when
/// add_space_prefix (and the segment is not empty), then ' ' -> "▁".
struct llama_spm_normalizer final : normalizer {
  bool add_space_prefix = true;
  std::string normalize(std::string_view s) const override {
    std::string out;
    if (s.empty()) return out;
    out.reserve(s.size() + 8);
    if (add_space_prefix) out.append(detail::spm_space);
    for (const char c : s) {
      if (c == ' ') out.append(detail::spm_space);
      else out += c;
    }
    return out;
  }
};

/// @brief The SentencePiece model of llama.cpp (see the file comment): tokens with their scores.
class llama_spm final : public model {
 public:
  /// @brief tokens[i] has id i and score scores[i] (value_error when the sizes differ); unk is
  /// the id used for a byte that has no token (-1: none, a value_error when one is needed).
  /// `where` names the file in errors.
  llama_spm(const std::vector<std::string>& tokens, std::vector<float> scores, std::int32_t unk, const std::string& where)
      : scores_(std::move(scores)), unk_(unk), where_(where) {
    if (scores_.size() != tokens.size())
      throw value_error(where + ": " + std::to_string(scores_.size()) + " scores for " + std::to_string(tokens.size()) + " tokens");
    if (unk >= static_cast<std::int64_t>(tokens.size()))
      throw value_error(where + ": the unknown token id " + std::to_string(unk) + " is past the " + std::to_string(tokens.size()) + " tokens");
    ids_.reserve(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      vocab_.add(tokens[i], static_cast<std::int32_t>(i), where);
      ids_.insert_or_assign(tokens[i], static_cast<std::int32_t>(i));  // llama.cpp: a repeated string keeps its last id
    }
    // byte_to_token: "<0xXX>", else the byte itself as a token
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(b));
      std::int32_t id = find(name);
      if (id < 0) id = find(std::string(1, static_cast<char>(b)));
      byte_ids_[static_cast<std::size_t>(b)] = id;
    }
  }

  /// @brief Appends the ids of text (a segment the normalizer escaped) to out.
  void encode(std::string_view text, std::vector<std::int32_t>& out) const override {
    struct symbol {
      int prev, next;
      std::size_t begin, n;
    };
    struct bigram {
      int left, right;
      float score;
      std::size_t size;
    };
    // llama.cpp's llm_bigram_spm::comparator: the highest score on top, then the leftmost pair
    struct lower {
      bool operator()(const bigram& l, const bigram& r) const { return l.score < r.score || (l.score == r.score && l.left > r.left); }
    };
    std::vector<symbol> symbols;
    for (std::size_t offs = 0; offs < text.size();) {
      static constexpr std::size_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};  // unicode_len_utf8
      const std::size_t len = utf8_len[static_cast<unsigned char>(text[offs]) >> 4];
      symbol s;
      s.begin = offs;
      s.n = std::min(len, text.size() - offs);
      offs += s.n;
      s.prev = static_cast<int>(symbols.size()) - 1;
      s.next = offs == text.size() ? -1 : static_cast<int>(symbols.size()) + 1;
      symbols.push_back(s);
    }
    std::priority_queue<bigram, std::vector<bigram>, lower> queue;
    const auto try_add = [&](int left, int right) {
      if (left == -1 || right == -1) return;
      const auto& l = symbols[static_cast<std::size_t>(left)];
      const auto& r = symbols[static_cast<std::size_t>(right)];
      const std::size_t size = l.n + r.n;
      const std::int32_t id = find(text.substr(l.begin, size));
      if (id < 0) return;
      queue.push({left, right, scores_[static_cast<std::size_t>(id)], size});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const bigram b = queue.top();
      queue.pop();
      auto& l = symbols[static_cast<std::size_t>(b.left)];
      auto& r = symbols[static_cast<std::size_t>(b.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // one of them was merged since
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    // resegment: every merged symbol is a token (a pair is queued only when it is one), so
    // llama.cpp's lookup of how a symbol was merged never finds anything: a symbol is a token, or
    // a single character without one, which becomes its bytes
    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<std::size_t>(i)].next) {
      const auto& s = symbols[static_cast<std::size_t>(i)];
      const std::string_view piece = text.substr(s.begin, s.n);
      const std::int32_t id = find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (const char c : piece) {
        const std::int32_t byte = byte_ids_[static_cast<unsigned char>(c)];
        if (byte >= 0) out.push_back(byte);
        else if (unk_ >= 0) out.push_back(unk_);
        else throw value_error(where_ + ": the vocabulary has no token for the byte " + std::to_string(static_cast<unsigned char>(c)) +
                               " (no <0xXX> token, no unknown token)");
      }
    }
  }

  const vocabulary& vocab() const noexcept override { return vocab_; }
  /// @brief The id of token as llama.cpp looks it up (the last id of a repeated string), or -1.
  std::int32_t find(std::string_view token) const {
    const auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }
  /// @brief The score of id.
  float score(std::int32_t id) const { return scores_.at(static_cast<std::size_t>(id)); }

 private:
  vocabulary vocab_;
  std::unordered_map<std::string, std::int32_t, detail::string_hash, std::equal_to<>> ids_;
  std::vector<float> scores_;
  std::array<std::int32_t, 256> byte_ids_{};
  std::int32_t unk_;
  std::string where_;
};

/// @brief llama.cpp's token_to_piece and detokenize for a SentencePiece vocabulary (see the file
/// comment). Tokens are told apart by their strings: `pieces` holds the text of every token
/// that is not NORMAL (a NORMAL token is its string with "▁" -> ' ').
struct llama_spm_decoder final : decoder {
  std::unordered_map<std::string, std::string> pieces;
  bool strip_first_space = true;  // tokenizer.ggml.add_space_prefix

  /// @brief The decoder of tokens with types types (gguf_token_type values; equal sizes).
  static std::unique_ptr<llama_spm_decoder> from_vocab(const std::vector<std::string>& tokens, const std::vector<std::int64_t>& types,
                                                       bool add_space_prefix) {
    auto d = std::make_unique<llama_spm_decoder>();
    d->strip_first_space = add_space_prefix;
    for (std::size_t i = 0; i < tokens.size() && i < types.size(); ++i) {
      const std::int64_t t = types[i];
      if (t == static_cast<std::int64_t>(gguf_token_type::normal)) continue;
      std::string piece;
      if (t == static_cast<std::int64_t>(gguf_token_type::control) || t == static_cast<std::int64_t>(gguf_token_type::unknown) ||
          t == static_cast<std::int64_t>(gguf_token_type::user_defined)) {
        piece = tokens[i];
      } else if (t == static_cast<std::int64_t>(gguf_token_type::byte)) {
        piece.assign(1, static_cast<char>(byte_value(tokens[i])));
      }  // UNUSED, UNDEFINED and unknown types: no text
      d->pieces.insert_or_assign(tokens[i], std::move(piece));
    }
    return d;
  }

  void decode(std::vector<std::string>& tokens) const override {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string normal;
      std::string_view piece;
      if (const auto it = pieces.find(tokens[i]); it != pieces.end()) {
        piece = it->second;
      } else {
        normal = unescape(tokens[i]);
        piece = normal;
      }
      if (i == 0 && strip_first_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
      out.append(piece);
    }
    tokens.assign(1, sanitize_utf8(out));
  }

  /// @brief s with every "▁" replaced by ' '.
  static std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      if (s.compare(i, detail::spm_space.size(), detail::spm_space) == 0) {
        out += ' ';
        i += detail::spm_space.size();
      } else {
        out += s[i++];
      }
    }
    return out;
  }
  /// @brief The byte of a token "<0xXX>" as llama.cpp's token_to_byte reads it (strtol of the two
  /// characters after "<0x", 0 when they are not hex digits).
  static unsigned char byte_value(const std::string& token) {
    const std::string hex = token.size() > 3 ? token.substr(3, 2) : std::string();
    return static_cast<unsigned char>(std::strtol(hex.c_str(), nullptr, 16));
  }
};

}  // namespace tformer::text
