// WordPiece (BERT): each piece is split greedily into the longest vocabulary entries from the
// left, every entry after the first carrying the continuing-subword prefix ("##"). A piece that
// cannot be split that way, or is longer than max_input_chars_per_word characters, is one
// unknown token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json_config.hpp"
#include "model.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief The WordPiece model.
class wordpiece final : public model {
 public:
  /// @brief From a tokenizer.json "model" object of type WordPiece.
  static std::unique_ptr<wordpiece> from_json(const json_node& j) {
    auto m = std::make_unique<wordpiece>();
    const auto vocab = j.at("vocab");
    vocab.require_object();
    for (const auto& [token, id] : vocab.value.items()) m->vocab_.add(token, json_node{id, j.file, vocab.path + "." + token}.id(), vocab.where());
    m->prefix_ = j.str_or("continuing_subword_prefix", "##");
    m->max_chars_ = static_cast<std::size_t>(std::max<std::int64_t>(0, j.int_or("max_input_chars_per_word", 100)));
    const std::string unk = j.str_or("unk_token", "[UNK]");
    m->unk_ = m->vocab_.find(unk);
    if (m->unk_ < 0) j.at("unk_token").fail("'" + unk + "' is not in model.vocab");
    return m;
  }
  /// @brief From a vocabulary built elsewhere (GGUF files).
  static std::unique_ptr<wordpiece> from_vocab(vocabulary v, std::int32_t unk, std::string prefix = "##", std::size_t max_chars = 100) {
    auto m = std::make_unique<wordpiece>();
    m->vocab_ = std::move(v);
    m->unk_ = unk;
    m->prefix_ = std::move(prefix);
    m->max_chars_ = max_chars;
    return m;
  }

  void encode(std::string_view word, std::vector<std::int32_t>& out) const override {
    if (count_chars(word) > max_chars_) {
      out.push_back(unk_);
      return;
    }
    const std::size_t mark = out.size();
    std::string candidate;
    for (std::size_t start = 0; start < word.size();) {
      std::size_t end = word.size();
      std::int32_t found = -1;
      while (start < end) {
        candidate.assign(start > 0 ? prefix_ : std::string());
        candidate.append(word.substr(start, end - start));
        if ((found = vocab_.find(candidate)) >= 0) break;
        do --end;  // back one character
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (found < 0) {
        out.resize(mark);
        out.push_back(unk_);
        return;
      }
      out.push_back(found);
      start = end;
    }
  }
  const vocabulary& vocab() const noexcept override { return vocab_; }
  const std::string& prefix() const noexcept { return prefix_; }

 private:
  vocabulary vocab_;
  std::string prefix_ = "##";
  std::size_t max_chars_ = 100;
  std::int32_t unk_ = -1;
};

}  // namespace tformer::text
