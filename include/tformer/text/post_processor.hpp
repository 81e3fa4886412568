// Post-processors: the special tokens and type ids put around an encoded text or pair of texts
// (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel (nothing to add for ids),
// Sequence), as Hugging Face tokenizers 0.23 applies them:
//
//   post_process(first, pair)  type ids 0 for the first text, 1 for the second; the processor
//                              turns the list [first, pair] into a list of parts; the parts are
//                              joined. Without a processor (or ByteLevel) the texts are joined.
//   TemplateProcessing         the single or pair template, part by part ($A, $B with their type
//                              ids, special tokens with theirs; the latter only when adding special
//                              tokens). A file's template without "pair" gets "$A $B:1".
//   Bert / RobertaProcessing   [CLS] A [SEP] and B [SEP] (type ids 1) / <s> A </s> and </s> B </s>
//                              (all type ids 0, also without special tokens); no special tokens
//                              when not adding them.
//   Sequence                   the processors in turn on the list of parts.
//
// added_tokens(pair) is the number of special tokens a processor adds (truncation leaves room
// for them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "encoding.hpp"
#include "json_config.hpp"

namespace tformer::text {

/// @brief Adds special tokens and type ids around encoded texts.
struct post_processor {
  virtual ~post_processor() = default;
  /// @brief The number of special tokens added to one text (pair false) or a pair.
  virtual std::size_t added_tokens(bool pair) const = 0;
  /// @brief Rewrites the parts (at first [text] or [first, second], type ids 0 and 1) into the
  /// parts that are joined (Hugging Face's process_encodings).
  virtual void process(std::vector<encoding>& parts, bool add_special_tokens) const = 0;
};

/// @brief One part of a template: a text ($A, $B) or special tokens, with a type id.
struct template_piece {
  int sequence = -1;                // 0: $A, 1: $B, -1: the special tokens in ids
  std::vector<std::int32_t> ids;    // the special tokens' ids
  std::int32_t type_id = 0;
  friend bool operator==(const template_piece&, const template_piece&) = default;
};

/// @brief TemplateProcessing: a template for one text and one for a pair.
struct template_processor final : post_processor {
  std::vector<template_piece> single, pair;

  /// @brief before $A after for one text; before $A after [before]:1 $B:1 after:1 for a pair
  /// (before repeated when before_b: Llama's "<s> $A <s>:1 $B:1", not BERT's "[CLS] $A [SEP] $B:1 [SEP]:1").
  static std::unique_ptr<template_processor> around(const std::vector<std::int32_t>& before, const std::vector<std::int32_t>& after,
                                                    bool before_b) {
    auto p = std::make_unique<template_processor>();
    const auto add = [](std::vector<template_piece>& t, const std::vector<std::int32_t>& ids, std::int32_t type_id) {
      if (!ids.empty()) t.push_back({-1, ids, type_id});
    };
    add(p->single, before, 0);
    p->single.push_back({0, {}, 0});
    add(p->single, after, 0);
    p->pair = p->single;
    if (before_b) add(p->pair, before, 1);
    p->pair.push_back({1, {}, 1});
    add(p->pair, after, 1);
    return p;
  }

  std::size_t added_tokens(bool is_pair) const override {
    std::size_t n = 0;
    for (const auto& piece : is_pair ? pair : single) n += piece.ids.size();
    return n;
  }
  void process(std::vector<encoding>& parts, bool add_special_tokens) const override {
    if (parts.empty() || parts.size() > 2)
      throw value_error("tformer::text: a TemplateProcessing post-processor takes one or two texts, not " + std::to_string(parts.size()) +
                        " parts (a processor before it in a Sequence split them)");
    std::vector<encoding> out;
    for (const auto& piece : parts.size() == 2 ? pair : single) {
      if (piece.sequence >= 0) {
        if (static_cast<std::size_t>(piece.sequence) >= parts.size())
          throw value_error("tformer::text: a TemplateProcessing template for one text holds $B");
        encoding& e = parts[static_cast<std::size_t>(piece.sequence)];
        e.type_ids.assign(e.size(), piece.type_id);
        out.push_back(e);
      } else if (add_special_tokens) {
        out.push_back(encoding::special(piece.ids, piece.type_id));
      }
    }
    parts = std::move(out);
  }
};

/// @brief BertProcessing ([CLS] A [SEP] B [SEP]) and RobertaProcessing (<s> A </s> </s> B </s>).
struct bert_processor final : post_processor {
  std::int32_t cls = 0, sep = 0;
  bool roberta = false;

  std::size_t added_tokens(bool is_pair) const override { return is_pair ? (roberta ? 4 : 3) : 2; }
  void process(std::vector<encoding>& parts, bool add_special_tokens) const override {
    if (roberta)  // RoBERTa's type ids are all 0, with special tokens or without
      for (auto& e : parts) e.type_ids.assign(e.size(), 0);
    if (!add_special_tokens) return;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const encoding& e = parts[i];
      encoding out;
      if (i == 0) {  // [CLS] first [SEP]; RoBERTa's all type 0
        out = encoding::special({cls}, 0);
        out.append(encoding::from_ids(e.ids));
        out.append(encoding::special({sep}, 0));
        if (!roberta) std::copy(e.type_ids.begin(), e.type_ids.end(), out.type_ids.begin() + 1);
      } else if (roberta) {  // </s> second </s>, all type 0
        out = encoding::special({sep}, 0);
        out.append(encoding::from_ids(e.ids));
        out.append(encoding::special({sep}, 0));
      } else {  // second [SEP]:1
        out = encoding::from_ids(e.ids);
        out.append(encoding::special({sep}, 1));
        std::copy(e.type_ids.begin(), e.type_ids.end(), out.type_ids.begin());
      }
      parts[i] = std::move(out);
    }
  }
};

/// @brief Post-processors applied in order.
struct sequence_processor final : post_processor {
  std::vector<std::unique_ptr<post_processor>> steps;
  std::size_t added_tokens(bool is_pair) const override {
    std::size_t n = 0;
    for (const auto& s : steps) n += s->added_tokens(is_pair);
    return n;
  }
  void process(std::vector<encoding>& parts, bool add_special_tokens) const override {
    for (const auto& s : steps) s->process(parts, add_special_tokens);
  }
};

/// @brief The encoding of first (and pair) after the post-processor p (may be null), as Hugging
/// Face's PostProcessor::process: type ids 0 and 1, p's parts, joined.
inline encoding post_process(const post_processor* p, encoding first, std::optional<encoding> pair, bool add_special_tokens) {
  std::vector<encoding> parts;
  parts.push_back(std::move(first));
  if (pair) parts.push_back(std::move(*pair));
  for (std::size_t i = 0; i < parts.size(); ++i) parts[i].type_ids.assign(parts[i].size(), static_cast<std::int32_t>(i));
  if (p) p->process(parts, add_special_tokens);
  if (parts.size() == 1) return std::move(parts[0]);
  encoding out;
  for (const auto& e : parts) out.append(e);
  return out;
}

namespace detail {
// A TemplateProcessing template ("single" or "pair"): [{"Sequence": {"id": "A", "type_id": 0}},
// {"SpecialToken": {"id": "[CLS]", "type_id": 0}}, ...].
inline std::vector<template_piece> read_template(const json_node& t, const json_node& specials, bool is_pair) {
  t.require_array();
  std::vector<template_piece> out;
  const auto type_id = [](const json_node& j) {
    if (!j.has("type_id")) return std::int32_t{0};
    const auto v = j.at("type_id");
    const std::int64_t x = v.integer();
    if (x < 0 || x > INT32_MAX) v.fail("must be a type id in [0, 2^31), not " + std::to_string(x));
    return static_cast<std::int32_t>(x);
  };
  for (std::size_t i = 0; i < t.value.size(); ++i) {
    const auto item = t[i];
    item.require_object();
    if (item.has("Sequence")) {
      const auto seq = item.at("Sequence");
      seq.require_object();
      const auto id = seq.at("id");
      const std::string name = id.str();
      if (name != "A" && name != "B") id.fail("'" + name + "' is not a sequence (A, B)");
      if (name == "B" && !is_pair) id.fail("is B: the single template can hold only $A");
      out.push_back({name == "A" ? 0 : 1, {}, type_id(seq)});
    } else if (item.has("SpecialToken")) {
      const auto tok = item.at("SpecialToken");
      tok.require_object();
      const std::string name = tok.at("id").str();
      if (!specials.value.contains(name)) item.fail("names the special token '" + name + "', which special_tokens does not define");
      const auto spec = specials.at(name).at("ids");
      spec.require_array();
      template_piece piece{-1, {}, type_id(tok)};
      for (std::size_t k = 0; k < spec.value.size(); ++k) piece.ids.push_back(spec[k].id());
      out.push_back(std::move(piece));
    } else {
      item.fail("must be a {\"Sequence\": ...} or a {\"SpecialToken\": ...}");
    }
  }
  return out;
}
}  // namespace detail

/// @brief The post-processor a tokenizer.json "post_processor" object describes (nullptr for
/// null or one that adds nothing).
inline std::unique_ptr<post_processor> make_post_processor(const json_node& j) {
  if (j.value.is_null()) return nullptr;
  j.require_object();
  const std::string type = j.type();
  if (type == "ByteLevel") return nullptr;
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto p = std::make_unique<bert_processor>();
    const auto cls = j.at("cls"), sep = j.at("sep");  // [token, id]
    if (!cls.value.is_array() || cls.value.size() != 2) cls.fail("must be a pair [token, id]");
    if (!sep.value.is_array() || sep.value.size() != 2) sep.fail("must be a pair [token, id]");
    p->cls = cls[1].id();
    p->sep = sep[1].id();
    p->roberta = type == "RobertaProcessing";
    return p;
  }
  if (type == "TemplateProcessing") {
    auto p = std::make_unique<template_processor>();
    const auto specials = j.at("special_tokens");
    specials.require_object();
    p->single = detail::read_template(j.at("single"), specials, false);
    if (j.has("pair")) p->pair = detail::read_template(j.at("pair"), specials, true);
    else p->pair = {{0, {}, 0}, {1, {}, 1}};  // the default of Hugging Face's TemplateProcessing builder
    return p;
  }
  if (type == "Sequence") {
    auto p = std::make_unique<sequence_processor>();
    const auto list = j.at("processors");
    list.require_array();
    for (std::size_t i = 0; i < list.value.size(); ++i)
      if (auto step = make_post_processor(list[i])) p->steps.push_back(std::move(step));
    return p;
  }
  j.unsupported_type("post-processors: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
}

}  // namespace tformer::text
