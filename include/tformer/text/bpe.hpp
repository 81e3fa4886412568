// Byte-pair encoding (GPT-2, Llama-3, Qwen2, Whisper, SentencePiece-BPE models): a piece starts
// as its characters (each a vocabulary entry; unknown ones become byte tokens "<0xAB>" with
// byte_fallback, or the unknown token), then the adjacent pair with the lowest merge rank is
// merged, leftmost first, until no pair has a rank. With ignore_merges a piece that is itself a
// vocabulary entry is that entry. Results are cached per piece.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "json_config.hpp"
#include "model.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief The BPE model.
class bpe final : public model {
 public:
  /// @brief Options of the model besides vocabulary and merges.
  struct options {
    std::string unk_token;  // empty: unknown characters are dropped
    std::string continuing_subword_prefix, end_of_word_suffix;
    bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  };

  /// @brief From a vocabulary and merges (pairs of token strings, by rank); `where` names the
  /// source in errors.
  static std::unique_ptr<bpe> from_vocab(vocabulary v, const std::vector<std::pair<std::string, std::string>>& merges, options o,
                                         const std::string& where) {
    auto m = std::make_unique<bpe>();
    m->vocab_ = std::move(v);
    m->opt_ = std::move(o);
    if (!m->opt_.unk_token.empty()) {
      m->unk_ = m->vocab_.find(m->opt_.unk_token);
      if (m->unk_ < 0) throw value_error(where + ": the unknown token '" + m->opt_.unk_token + "' is not in the vocabulary");
    }
    const std::string& prefix = m->opt_.continuing_subword_prefix;
    for (std::size_t r = 0; r < merges.size(); ++r) {
      const auto& [a, b] = merges[r];
      const std::int32_t ia = m->vocab_.find(a), ib = m->vocab_.find(b);
      const std::string joined = a + (b.compare(0, prefix.size(), prefix) == 0 ? b.substr(prefix.size()) : b);
      const std::int32_t ij = m->vocab_.find(joined);
      if (ia < 0 || ib < 0 || ij < 0)
        throw value_error(where + ": merge " + std::to_string(r) + " ('" + a + "' '" + b + "') uses a token that is not in the vocabulary ('" +
                          (ia < 0 ? a : ib < 0 ? b : joined) + "')");
      m->merges_[key(ia, ib)] = {static_cast<std::uint32_t>(r), ij};
    }
    return m;
  }

  /// @brief From a tokenizer.json "model" object of type BPE.
  static std::unique_ptr<bpe> from_json(const json_node& j) {
    if (j.has("dropout") && j.at("dropout").number() != 0.0)
      j.at("dropout").fail("is not supported (BPE dropout samples its merges at random; set it to null)");
    vocabulary v;
    const auto vocab = j.at("vocab");
    vocab.require_object();
    for (const auto& [token, id] : vocab.value.items()) v.add(token, json_node{id, j.file, vocab.path + "." + token}.id(), vocab.where());
    std::vector<std::pair<std::string, std::string>> merges;
    if (j.has("merges")) {
      const auto list = j.at("merges");
      list.require_array();
      merges.reserve(list.value.size());
      for (std::size_t i = 0; i < list.value.size(); ++i) {
        const auto item = list[i];
        if (item.value.is_string()) {  // "a b"
          const std::string s = item.str();
          const auto sp = s.find(' ', 1);
          if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) item.fail("must be two tokens separated by one space");
          merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        } else if (item.value.is_array() && item.value.size() == 2) {  // ["a", "b"]
          merges.emplace_back(item[0].str(), item[1].str());
        } else {
          item.fail("must be a string \"a b\" or an array [\"a\", \"b\"]");
        }
      }
    }
    options o;
    o.unk_token = j.str_or("unk_token", "");
    o.continuing_subword_prefix = j.str_or("continuing_subword_prefix", "");
    o.end_of_word_suffix = j.str_or("end_of_word_suffix", "");
    o.fuse_unk = j.bool_or("fuse_unk", false);
    o.byte_fallback = j.bool_or("byte_fallback", false);
    o.ignore_merges = j.bool_or("ignore_merges", false);
    return from_vocab(std::move(v), merges, std::move(o), j.where());
  }

  void encode(std::string_view word, std::vector<std::int32_t>& out) const override {
    if (word.empty()) return;
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto it = cache_.find(std::string(word));
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<std::int32_t> ids = merge_word(word);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= max_cache) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
  const vocabulary& vocab() const noexcept override { return vocab_; }
  const options& settings() const noexcept { return opt_; }

  static constexpr std::size_t max_cache = 1 << 16;

  bpe() = default;
  bpe(const bpe&) = delete;
  bpe& operator=(const bpe&) = delete;

 private:
  static std::uint64_t key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  std::vector<std::int32_t> merge_word(std::string_view w) const {
    std::vector<std::int32_t> ids;
    if (opt_.ignore_merges) {
      const std::int32_t id = vocab_.find(w);
      if (id >= 0) return {id};
    }
    // the characters, with prefix and suffix, unknown ones as bytes or the unknown token
    std::int32_t pending_unk = -1;  // a (fused) unknown token not yet added
    std::string s;
    for (std::size_t i = 0; i < w.size();) {
      const std::size_t b = i;
      i += std::min(utf8_char_length(static_cast<unsigned char>(w[i])), w.size() - i);
      s.assign(b > 0 ? opt_.continuing_subword_prefix : std::string());
      s.append(w.substr(b, i - b));
      if (i == w.size()) s += opt_.end_of_word_suffix;
      const std::int32_t id = vocab_.find(s);
      if (id >= 0) {
        if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
        ids.push_back(id);
        continue;
      }
      if (opt_.byte_fallback && vocab_.append_byte_tokens(s, ids)) continue;
      if (unk_ >= 0) {
        if (pending_unk >= 0 && !opt_.fuse_unk) ids.push_back(pending_unk);
        pending_unk = unk_;
      }
    }
    if (pending_unk >= 0) ids.push_back(pending_unk);
    // merge the lowest-ranked adjacent pair, leftmost first, until none is left: a heap of
    // candidate pairs ordered by (rank, position) over a linked list of symbols, O(n log n) (a
    // piece can be a long run of letters); a popped pair whose symbols changed is stale
    const std::size_t n = ids.size();
    if (n < 2) return ids;
    std::vector<std::ptrdiff_t> prev(n), next(n);  // [n]: neighbours in the list (-1 / n: none)
    for (std::size_t k = 0; k < n; ++k) prev[k] = static_cast<std::ptrdiff_t>(k) - 1, next[k] = static_cast<std::ptrdiff_t>(k) + 1;
    struct pair_at {
      std::uint32_t rank;
      std::size_t left;
      std::int32_t a, b, merged;
      bool operator>(const pair_at& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<pair_at, std::vector<pair_at>, std::greater<pair_at>> heap;
    auto push = [&](std::size_t left) {
      const auto right = next[left];
      if (right >= static_cast<std::ptrdiff_t>(n)) return;
      const auto it = merges_.find(key(ids[left], ids[static_cast<std::size_t>(right)]));
      if (it != merges_.end())
        heap.push({it->second.first, left, ids[left], ids[static_cast<std::size_t>(right)], it->second.second});
    };
    std::vector<bool> alive(n, true);  // [n]
    for (std::size_t k = 0; k + 1 < n; ++k) push(k);
    while (!heap.empty()) {
      const pair_at p = heap.top();
      heap.pop();
      const auto right = next[p.left];
      if (!alive[p.left] || right >= static_cast<std::ptrdiff_t>(n) || ids[p.left] != p.a ||
          ids[static_cast<std::size_t>(right)] != p.b)
        continue;
      ids[p.left] = p.merged;
      alive[static_cast<std::size_t>(right)] = false;
      next[p.left] = next[static_cast<std::size_t>(right)];
      if (next[p.left] < static_cast<std::ptrdiff_t>(n)) prev[static_cast<std::size_t>(next[p.left])] = static_cast<std::ptrdiff_t>(p.left);
      if (prev[p.left] >= 0) push(static_cast<std::size_t>(prev[p.left]));
      push(p.left);
    }
    std::vector<std::int32_t> out;
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(n); k = next[static_cast<std::size_t>(k)]) out.push_back(ids[static_cast<std::size_t>(k)]);
    ids = std::move(out);
    return ids;
  }

  vocabulary vocab_;
  options opt_;
  std::int32_t unk_ = -1;
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::int32_t>> merges_;  // (a, b) -> (rank, merged id)
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

}  // namespace tformer::text
