// Unigram language-model tokenization (T5, ALBERT, XLNet and SentencePiece unigram models): the
// segmentation of a piece into vocabulary entries with the largest total score (log
// probability), by Viterbi over a trie of the entries. A character no entry starts with costs
// the lowest score minus 10 and becomes the unknown token; adjacent unknown characters are one
// unknown token (or, with byte_fallback, the byte tokens "<0xAB>" of their UTF-8).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_config.hpp"
#include "model.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief The Unigram model.
class unigram final : public model {
 public:
  /// @brief From pieces and scores (id = position); unk < 0: no unknown token.
  static std::unique_ptr<unigram> from_pieces(const std::vector<std::pair<std::string, double>>& pieces, std::int32_t unk,
                                              bool byte_fallback, const std::string& where) {
    auto m = std::make_unique<unigram>();
    m->scores_.reserve(pieces.size());
    m->min_score_ = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      m->vocab_.add(pieces[i].first, static_cast<std::int32_t>(i), where);
      m->scores_.push_back(pieces[i].second);
      m->min_score_ = std::min(m->min_score_, pieces[i].second);
      if (!pieces[i].first.empty() && m->vocab_.find(pieces[i].first) == static_cast<std::int32_t>(i)) m->insert(pieces[i].first, static_cast<std::int32_t>(i));
    }
    if (unk >= static_cast<std::int32_t>(pieces.size()))
      throw value_error(where + ": unk_id " + std::to_string(unk) + " is past the " + std::to_string(pieces.size()) + " pieces");
    m->unk_ = unk;
    m->byte_fallback_ = byte_fallback;
    return m;
  }

  /// @brief From a tokenizer.json "model" object of type Unigram.
  static std::unique_ptr<unigram> from_json(const json_node& j) {
    const auto vocab = j.at("vocab");
    vocab.require_array();
    std::vector<std::pair<std::string, double>> pieces;
    pieces.reserve(vocab.value.size());
    for (std::size_t i = 0; i < vocab.value.size(); ++i) {
      const auto item = vocab[i];
      if (!item.value.is_array() || item.value.size() != 2) item.fail("must be a pair [piece, score]");
      pieces.emplace_back(item[0].str(), item[1].number());
    }
    const std::int32_t unk = j.has("unk_id") ? j.at("unk_id").id() : -1;
    return from_pieces(pieces, unk, j.bool_or("byte_fallback", false), j.where());
  }

  void encode(std::string_view s, std::vector<std::int32_t>& out) const override {
    if (s.empty()) return;
    struct node {
      std::int32_t id = -1;
      double score = 0;
      std::int64_t start = -1;  // -1: not reached
    };
    std::vector<node> best(s.size() + 1);
    best[0].start = 0;
    const double unk_score = min_score_ - 10.0;
    for (std::size_t start = 0; start < s.size();) {
      const double here = best[start].score;
      const std::size_t len = std::min(utf8_char_length(static_cast<unsigned char>(s[start])), s.size() - start);
      bool single = false;
      // every entry that is a prefix of s[start..], shortest first
      std::size_t t = 0;
      for (std::size_t k = start; k < s.size(); ++k) {
        const auto it = nodes_[t].next.find(static_cast<unsigned char>(s[k]));
        if (it == nodes_[t].next.end()) break;
        t = it->second;
        const std::int32_t id = nodes_[t].id;
        if (id < 0) continue;
        node& target = best[k + 1];
        const double cand = here + scores_[static_cast<std::size_t>(id)];
        if (target.start < 0 || cand > target.score) target = {id, cand, static_cast<std::int64_t>(start)};
        if (k + 1 - start == len) single = true;
      }
      if (!single) {
        if (unk_ < 0) throw value_error("tformer::text::unigram: the text has a character no piece covers and the model has no unknown token");
        node& target = best[start + len];
        const double cand = here + unk_score;
        if (target.start < 0 || cand > target.score) target = {unk_, cand, static_cast<std::int64_t>(start)};
      }
      start += len;
    }
    // back from the end; adjacent unknown tokens fuse
    std::vector<std::pair<std::int32_t, std::string_view>> path;  // (id, text) from the end
    for (std::size_t end = s.size(); end > 0;) {
      const node& n = best[end];
      const auto b = static_cast<std::size_t>(n.start);
      const std::string_view text = s.substr(b, end - b);
      if (n.id == unk_ && !path.empty() && path.back().first == unk_ && path.back().second.data() == s.data() + end)
        path.back().second = s.substr(b, end - b + path.back().second.size());
      else
        path.emplace_back(n.id, text);
      end = b;
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      std::int32_t id = it->first;
      if (id == unk_) id = vocab_.find(it->second);  // a fused run is a piece only if the vocabulary has it
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      if (byte_fallback_ && vocab_.append_byte_tokens(it->second, out)) continue;
      out.push_back(unk_);
    }
  }
  const vocabulary& vocab() const noexcept override { return vocab_; }
  double score(std::int32_t id) const { return scores_.at(static_cast<std::size_t>(id)); }

 private:
  struct trie_node {
    std::map<unsigned char, std::uint32_t> next;
    std::int32_t id = -1;
  };
  void insert(const std::string& piece, std::int32_t id) {
    std::size_t t = 0;
    for (const char c : piece) {
      const auto it = nodes_[t].next.find(static_cast<unsigned char>(c));
      if (it != nodes_[t].next.end()) {
        t = it->second;
      } else {
        nodes_.emplace_back();
        nodes_[t].next.emplace(static_cast<unsigned char>(c), static_cast<std::uint32_t>(nodes_.size() - 1));
        t = nodes_.size() - 1;
      }
    }
    if (nodes_[t].id < 0) nodes_[t].id = id;
  }

  vocabulary vocab_;
  std::vector<double> scores_;
  std::vector<trie_node> nodes_ = std::vector<trie_node>(1);
  double min_score_ = 0;
  std::int32_t unk_ = -1;
  bool byte_fallback_ = false;
};

}  // namespace tformer::text
