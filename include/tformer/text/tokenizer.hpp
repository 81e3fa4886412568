// A tokenizer as Hugging Face tokenizers runs it, loaded from a tokenizer.json:
//
//   text -> invalid UTF-8 replaced by U+FFFD (see unicode.hpp)
//        -> added tokens that are matched on the raw text split out (normalized: false)
//        -> each remaining segment normalized, then added tokens matched on normalized text split out
//        -> each remaining segment pre-tokenized into pieces -> each piece encoded by the model
//        -> the post-processor's special tokens around the ids (when asked for)
//
// Added tokens match leftmost-longest; single_word tokens only between non-word characters;
// lstrip / rstrip tokens also take the whitespace before / after them. decode maps ids to token
// strings (unknown ids are skipped; special tokens too when asked), runs the decoder and joins
// the result (with spaces when there is no decoder).
//
// Two ways to encode:
//   encode(text)                  the ids, with the post-processor's special tokens (when asked),
//                                 never truncated or padded (what models and examples feed on);
//   encode_single(text) / encode_pair(a, b) / encode_batch / encode_pair_batch
//                                 an encoding (ids, type ids, attention mask, special tokens mask)
//                                 as Hugging Face's Tokenizer.encode / encode_batch make it: each
//                                 text encoded, the truncation applied (its max_length less the
//                                 special tokens the post-processor adds, when it adds them), the
//                                 post-processor's single or pair template, then the padding (one
//                                 encoding alone, then the batch together).
// The truncation and padding are the file's "truncation" and "padding" sections, or what
// enable_truncation / enable_padding set (no_truncation / no_padding turn them off). As in
// Hugging Face, a max_length below the number of special tokens added truncates nothing (its
// unsigned subtraction wraps around); stride only shapes overflowing tokens, which are not made.
//
// Any component type or option that would change the ids and is not implemented throws
// value_error naming the file and the JSON path; a file that is not JSON throws io_error naming
// the file and the byte offset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "bpe.hpp"
#include "decoder.hpp"
#include "encoding.hpp"
#include "json_config.hpp"
#include "model.hpp"
#include "normalizer.hpp"
#include "post_processor.hpp"
#include "pre_tokenizer.hpp"
#include "regex.hpp"
#include "unicode.hpp"
#include "unigram.hpp"
#include "wordpiece.hpp"

namespace tformer::text {

/// @brief A token added to the model's vocabulary (special tokens and user tokens).
struct added_token {
  std::string content;
  std::int32_t id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false;
  bool normalized = true;
};

/// @brief Text <-> token ids (see the file comment).
class tokenizer {
 public:
  tokenizer() = default;
  tokenizer(tokenizer&&) = default;
  tokenizer& operator=(tokenizer&&) = default;

  /// @brief From a tokenizer.json file.
  static tokenizer from_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("tformer::text::tokenizer: cannot open '" + path.string() + "'");
    std::ostringstream text;
    text << in.rdbuf();
    return from_json(text.str(), path.string());
  }

  /// @brief From the text of a tokenizer.json; `name` stands for the file in errors.
  static tokenizer from_json(std::string_view json_text, const std::string& name = "tokenizer.json") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(json_text.begin(), json_text.end());
    } catch (const nlohmann::json::parse_error& e) {
      throw io_error(name + ": not valid JSON at byte " + std::to_string(e.byte) + " (" + e.what() + ")");
    } catch (const nlohmann::json::exception& e) {  // a number too large for a double, ...
      throw io_error(name + ": not valid JSON (" + e.what() + ")");
    }
    try {
      return from_json_value(j, name);
    } catch (const nlohmann::json::exception& e) {  // a value of an unexpected type deep inside
      throw value_error(name + ": " + e.what());
    }
  }

  /// @brief From a parsed tokenizer.json.
  static tokenizer from_json_value(const nlohmann::json& j, const std::string& name = "tokenizer.json") {
    const json_node root{j, name, ""};
    root.require_object();
    tokenizer t;
    t.normalizer_ = root.has("normalizer") ? make_normalizer(root.at("normalizer")) : nullptr;
    t.pre_tokenizer_ = root.has("pre_tokenizer") ? make_pre_tokenizer(root.at("pre_tokenizer")) : nullptr;
    t.post_processor_ = root.has("post_processor") ? make_post_processor(root.at("post_processor")) : nullptr;
    t.decoder_ = root.has("decoder") ? make_decoder(root.at("decoder")) : nullptr;
    t.truncation_ = root.has("truncation") ? read_truncation(root.at("truncation")) : std::nullopt;
    t.padding_ = root.has("padding") ? read_padding(root.at("padding")) : std::nullopt;
    const auto m = root.at("model");
    m.require_object();
    const std::string type = m.has("type") ? m.type() : guess_model_type(m);
    if (type == "WordPiece") t.model_ = wordpiece::from_json(m);
    else if (type == "BPE") t.model_ = bpe::from_json(m);
    else if (type == "Unigram") t.model_ = unigram::from_json(m);
    else m.unsupported_type("models: WordPiece, BPE, Unigram");
    std::vector<added_token> added;
    if (root.has("added_tokens")) {
      const auto list = root.at("added_tokens");
      list.require_array();
      for (std::size_t i = 0; i < list.value.size(); ++i) {
        const auto a = list[i];
        added_token tok;
        tok.content = a.at("content").str();
        tok.id = a.at("id").id();
        tok.special = a.bool_or("special", false);
        tok.lstrip = a.bool_or("lstrip", false);
        tok.rstrip = a.bool_or("rstrip", false);
        tok.single_word = a.bool_or("single_word", false);
        tok.normalized = a.bool_or("normalized", !tok.special);
        if (tok.content.empty()) a.at("content").fail("must not be empty");
        added.push_back(std::move(tok));
      }
    }
    t.set_added_tokens(std::move(added));
    return t;
  }

  /// @brief Assembles a tokenizer from its parts (GGUF files); any part but the model may be null.
  static tokenizer from_parts(std::unique_ptr<text::model> m, std::unique_ptr<normalizer> n, std::unique_ptr<pre_tokenizer> p,
                              std::unique_ptr<post_processor> pp, std::unique_ptr<decoder> d, std::vector<added_token> added) {
    if (!m) throw value_error("tformer::text::tokenizer::from_parts: a tokenizer needs a model");
    tokenizer t;
    t.model_ = std::move(m);
    t.normalizer_ = std::move(n);
    t.pre_tokenizer_ = std::move(p);
    t.post_processor_ = std::move(pp);
    t.decoder_ = std::move(d);
    t.set_added_tokens(std::move(added));
    return t;
  }

  /// @brief The ids of text (any bytes: invalid UTF-8 is read as U+FFFD), with the
  /// post-processor's special tokens when add_special_tokens; never truncated or padded (see
  /// encode_single for that).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const {
    std::vector<std::int32_t> ids = encode_text(text);
    if (!add_special_tokens || !post_processor_) return ids;
    return post_process(post_processor_.get(), encoding::from_ids(std::move(ids)), std::nullopt, true).ids;
  }

  /// @brief The encoding of text, as Hugging Face's encode(text): truncated and padded as
  /// truncation() and padding() say. Throws value_error where the truncation cannot be met
  /// (strategy only_second, or only_first with too few tokens).
  encoding encode_single(std::string_view text, bool add_special_tokens = true) const {
    encoding e = finish(encoding::from_ids(encode_text(text)), std::nullopt, add_special_tokens);
    if (padding_) pad_one(e);
    return e;
  }
  /// @brief The encoding of the pair (first, second), as Hugging Face's encode(first, second):
  /// truncated, put into the post-processor's pair template (type ids 0 and 1 when it has no
  /// other), and padded.
  encoding encode_pair(std::string_view first, std::string_view second, bool add_special_tokens = true) const {
    encoding e = finish(encoding::from_ids(encode_text(first)), encoding::from_ids(encode_text(second), 1), add_special_tokens);
    if (padding_) pad_one(e);
    return e;
  }
  /// @brief encode_single of each text, padded together (to the batch's longest, or the fixed length).
  std::vector<encoding> encode_batch(const std::vector<std::string>& texts, bool add_special_tokens = true) const {
    std::vector<encoding> out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(encode_single(t, add_special_tokens));
    if (padding_) pad_encodings(out, *padding_);
    return out;
  }
  /// @brief encode_pair of each pair, padded together.
  std::vector<encoding> encode_pair_batch(const std::vector<std::pair<std::string, std::string>>& pairs,
                                          bool add_special_tokens = true) const {
    std::vector<encoding> out;
    out.reserve(pairs.size());
    for (const auto& [a, b] : pairs) out.push_back(encode_pair(a, b, add_special_tokens));
    if (padding_) pad_encodings(out, *padding_);
    return out;
  }

  /// @brief Truncation for encode_single / encode_pair / the batches (Hugging Face's
  /// enable_truncation). Throws value_error, as Hugging Face does, when stride is above max_length
  /// less the special tokens added to one text.
  void enable_truncation(const truncation_params& p) {
    const std::size_t added = num_special_tokens_to_add(false);
    if (p.max_length >= added && p.max_length - added < p.stride)
      throw value_error("tformer::text::tokenizer::enable_truncation: stride " + std::to_string(p.stride) +
                        " is above the effective max length " + std::to_string(p.max_length - added) + " (max_length " +
                        std::to_string(p.max_length) + " less " + std::to_string(added) + " special tokens)");
    truncation_ = p;
  }
  void no_truncation() noexcept { truncation_.reset(); }
  /// @brief The truncation in force (from the file's "truncation" or enable_truncation), if any.
  const std::optional<truncation_params>& truncation() const noexcept { return truncation_; }
  /// @brief Padding for encode_single / encode_pair / the batches (Hugging Face's enable_padding).
  void enable_padding(const padding_params& p = {}) { padding_ = p; }
  void no_padding() noexcept { padding_.reset(); }
  /// @brief The padding in force (from the file's "padding" or enable_padding), if any.
  const std::optional<padding_params>& padding() const noexcept { return padding_; }
  /// @brief The number of special tokens the post-processor adds to one text or a pair.
  std::size_t num_special_tokens_to_add(bool pair) const { return post_processor_ ? post_processor_->added_tokens(pair) : 0; }

  /// @brief The text of ids: unknown ids are skipped, and special tokens when skip_special_tokens.
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = true) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const std::int32_t id : ids) {
      const auto it = added_by_id_.find(id);
      if (it != added_by_id_.end()) {
        if (skip_special_tokens && it->second.special) continue;
        tokens.push_back(it->second.content);
      } else if (const std::string* t = loaded().vocab().token(id)) {
        if (skip_special_tokens && special_contents_.count(*t)) continue;
        tokens.push_back(*t);
      }
    }
    if (decoder_) {
      decoder_->decode(tokens);
      std::string out;
      for (const auto& t : tokens) out += t;
      return out;
    }
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }

  /// @brief The id of a token string (added tokens first, then the model's), or -1.
  std::int32_t token_to_id(std::string_view token) const {
    const auto it = added_by_content_.find(std::string(token));
    if (it != added_by_content_.end()) return it->second;
    return loaded().vocab().find(token);
  }
  /// @brief The string of an id, or nullopt.
  std::optional<std::string> id_to_token(std::int32_t id) const {
    const auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) return it->second.content;
    if (const std::string* t = loaded().vocab().token(id)) return *t;
    return std::nullopt;
  }
  /// @brief One more than the largest id of the model or the added tokens.
  std::int64_t vocab_size() const noexcept {
    std::int64_t n = model_ ? model_->vocab().size() : 0;
    for (const auto& [id, tok] : added_by_id_) n = std::max<std::int64_t>(n, std::int64_t{id} + 1);
    return n;
  }
  const std::vector<added_token>& added_tokens() const noexcept { return added_; }
  /// @brief True when id is an added token marked special.
  bool is_special(std::int32_t id) const {
    const auto it = added_by_id_.find(id);
    return it != added_by_id_.end() && it->second.special;
  }
  const text::model& model() const { return *model_; }

 private:
  // The model's ids of text: added tokens, normalizer, pre-tokenizer, model; no special tokens.
  std::vector<std::int32_t> encode_text(std::string_view text) const {
    std::vector<std::int32_t> ids;
    const std::string s = sanitize_utf8(text);
    for (const auto& seg : split_added(s, raw_trie_, 0)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      const std::string_view raw = std::string_view(s).substr(seg.b, seg.e - seg.b);
      const std::string norm = normalizer_ ? normalizer_->normalize(raw) : std::string(raw);
      for (const auto& sub : split_added(norm, normalized_trie_, 0)) {
        if (sub.id >= 0) {
          ids.push_back(sub.id);
          continue;
        }
        std::vector<piece> pieces{{norm.substr(sub.b, sub.e - sub.b), seg.b == 0 && sub.b == 0}};
        if (pre_tokenizer_) pre_tokenizer_->split(pieces);
        for (const auto& p : pieces) loaded().encode(p.text, ids);
      }
    }
    return ids;
  }
  // Hugging Face's post_process before the padding: truncation (room left for the special
  // tokens), then the post-processor.
  encoding finish(encoding first, std::optional<encoding> pair, bool add_special_tokens) const {
    if (truncation_) {
      truncation_params p = *truncation_;
      const std::size_t added = num_special_tokens_to_add(pair.has_value());
      // Hugging Face subtracts without a check: below the special tokens, its max_length wraps
      // around to a huge number, and nothing is truncated
      const bool wraps = add_special_tokens && added > p.max_length;
      if (add_special_tokens) p.max_length -= std::min(added, p.max_length);
      if (!wraps) truncate_encodings(first, pair ? &*pair : nullptr, p);
    }
    return post_process(post_processor_.get(), std::move(first), std::move(pair), add_special_tokens);
  }
  // Hugging Face pads each encoding on its own too (to its own length rounded up, or the fixed one).
  void pad_one(encoding& e) const {
    std::vector<encoding> one;
    one.push_back(std::move(e));
    pad_encodings(one, *padding_);
    e = std::move(one[0]);
  }

  // The model; a tokenizer made by its default constructor (or moved from) has none.
  const text::model& loaded() const {
    if (!model_) throw value_error("tformer::text::tokenizer: this tokenizer holds no model (default-constructed or moved from)");
    return *model_;
  }
  struct trie {
    struct node {
      std::map<unsigned char, std::uint32_t> next;
      std::int32_t token = -1;  // index into added_
    };
    std::vector<node> nodes = std::vector<node>(1);
    void insert(std::string_view s, std::int32_t token) {
      std::uint32_t t = 0;
      for (const char c : s) {
        const auto it = nodes[t].next.find(static_cast<unsigned char>(c));
        if (it != nodes[t].next.end()) {
          t = it->second;
        } else {
          nodes.emplace_back();
          nodes[t].next.emplace(static_cast<unsigned char>(c), static_cast<std::uint32_t>(nodes.size() - 1));
          t = static_cast<std::uint32_t>(nodes.size() - 1);
        }
      }
      if (nodes[t].token < 0) nodes[t].token = token;
    }
    bool empty() const noexcept { return nodes.size() == 1; }
  };
  struct segment {
    std::size_t b, e;
    std::int32_t id;  // -1: text to tokenize
  };

  static std::string guess_model_type(const json_node& m) {
    if (m.has("merges")) return "BPE";
    if (m.has("vocab") && m.at("vocab").value.is_array()) return "Unigram";
    if (m.has("vocab")) return "WordPiece";
    m.fail("has no type and no vocab");
  }

  void set_added_tokens(std::vector<added_token> added) {
    added_ = std::move(added);
    for (std::size_t i = 0; i < added_.size(); ++i) {
      const auto& a = added_[i];
      added_by_id_.insert_or_assign(a.id, a);
      added_by_content_.insert_or_assign(a.content, a.id);
      if (a.special) special_contents_.insert(a.content);
      if (a.normalized) {
        const std::string n = normalizer_ ? normalizer_->normalize(a.content) : a.content;
        if (!n.empty()) normalized_trie_.insert(n, static_cast<std::int32_t>(i));
      } else {
        raw_trie_.insert(a.content, static_cast<std::int32_t>(i));
      }
    }
  }

  static bool is_word_char(char32_t c) {
    static const regex word("\\w");
    return !word.find_all(utf8(c)).empty();
  }

  // s cut at the added tokens of trie t (leftmost-longest matches)
  std::vector<segment> split_added(std::string_view s, const trie& t, std::size_t) const {
    std::vector<segment> out;
    if (t.empty() || s.empty()) {
      out.push_back({0, s.size(), -1});
      return out;
    }
    std::size_t last = 0;  // end of the previous token (with its stripped whitespace)
    for (std::size_t i = 0; i < s.size();) {
      // longest token starting at i
      std::uint32_t n = 0;
      std::int32_t found = -1;
      std::size_t found_end = 0;
      for (std::size_t k = i; k < s.size(); ++k) {
        const auto it = t.nodes[n].next.find(static_cast<unsigned char>(s[k]));
        if (it == t.nodes[n].next.end()) break;
        n = it->second;
        if (t.nodes[n].token >= 0) found = t.nodes[n].token, found_end = k + 1;
      }
      if (found < 0 || (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) {
        ++i;
        continue;
      }
      const added_token& a = added_[static_cast<std::size_t>(found)];
      std::size_t b = i, e = found_end;
      if (a.single_word) {
        bool word_before = false, word_after = false;
        if (b > 0) {
          std::size_t k = b - 1;
          while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
          word_before = is_word_char(next_code_point(s, k));
        }
        if (e < s.size()) {
          std::size_t k = e;
          word_after = is_word_char(next_code_point(s, k));
        }
        if (word_before || word_after) {
          ++i;
          continue;
        }
      }
      if (a.lstrip) {
        while (b > last) {
          std::size_t k = b - 1;
          while (k > last && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
          std::size_t j = k;
          if (!is_whitespace(next_code_point(s, j))) break;
          b = k;
        }
      }
      if (a.rstrip) {
        while (e < s.size()) {
          std::size_t j = e;
          if (!is_whitespace(next_code_point(s, j))) break;
          e = j;
        }
      }
      if (b > last) out.push_back({last, b, -1});
      out.push_back({b, e, a.id});
      last = i = e;
    }
    if (last < s.size()) out.push_back({last, s.size(), -1});
    return out;
  }

  std::unique_ptr<normalizer> normalizer_;
  std::unique_ptr<pre_tokenizer> pre_tokenizer_;
  std::unique_ptr<text::model> model_;
  std::unique_ptr<post_processor> post_processor_;
  std::unique_ptr<decoder> decoder_;
  std::optional<truncation_params> truncation_;
  std::optional<padding_params> padding_;
  std::vector<added_token> added_;
  std::unordered_map<std::int32_t, added_token> added_by_id_;
  std::unordered_map<std::string, std::int32_t> added_by_content_;
  std::unordered_set<std::string> special_contents_;
  trie raw_trie_, normalized_trie_;
};

/// @brief Streaming decoding: feed ids one at a time; text comes out only when it ends in a
/// complete character (never half of one). finish() returns what is held back, with U+FFFD for
/// bytes that never formed a character.
class decode_stream {
 public:
  explicit decode_stream(const tokenizer& t, bool skip_special_tokens = true) : tok_(&t), skip_(skip_special_tokens) {}

  /// @brief Adds id; returns the new text, or an empty string when none is complete yet.
  std::string step(std::int32_t id) {
    ids_.push_back(id);
    const std::string s = tok_->decode(ids_, skip_);
    if (s.compare(0, prefix_.size(), prefix_) != 0) return restart();  // the context decodes differently now
    if (s.size() <= prefix_.size() || ends_with_replacement(s)) return {};
    std::string fresh = s.substr(prefix_.size());
    // keep the last emitted ids as context (decoders look at neighbours: spaces, prefixes)
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_index_ = ids_.size();
    prefix_ = tok_->decode(ids_, skip_);
    return fresh;
  }
  /// @brief The text held back (incomplete or invalid UTF-8 as U+FFFD); the stream restarts.
  std::string finish() {
    const std::string s = tok_->decode(ids_, skip_);
    std::string rest = s.compare(0, prefix_.size(), prefix_) == 0
                           ? s.substr(prefix_.size())
                           : tok_->decode(std::vector<std::int32_t>(ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_), ids_.end()), skip_);
    ids_.clear();
    prefix_.clear();
    prefix_index_ = 0;
    return rest;
  }

 private:
  // Drops the context when decoding it with the new ids changes the text already emitted (byte
  // runs that turn invalid): the new ids are decoded on their own.
  std::string restart() {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_index_ = 0;
    prefix_.clear();
    const std::string s = tok_->decode(ids_, skip_);
    if (s.empty() || ends_with_replacement(s)) return {};
    prefix_index_ = ids_.size();
    prefix_ = s;
    return s;
  }
  static bool ends_with_replacement(const std::string& s) {
    return s.size() >= 3 && std::string_view(s).substr(s.size() - 3) == replacement_utf8;
  }
  const tokenizer* tok_;
  bool skip_;
  std::vector<std::int32_t> ids_;
  std::string prefix_;
  std::size_t prefix_index_ = 0;
};

}  // namespace tformer::text
