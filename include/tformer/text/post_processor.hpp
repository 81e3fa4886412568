// Post-processors: the special tokens added around an encoded text (TemplateProcessing,
// BertProcessing, RobertaProcessing, ByteLevel (nothing to add for ids), Sequence). Only the
// single-sequence templates are used: tformer encodes one text at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "json_config.hpp"

namespace tformer::text {

/// @brief Adds special tokens around the ids of one encoded text.
struct post_processor {
  virtual ~post_processor() = default;
  virtual void process(std::vector<std::int32_t>& ids) const = 0;
};

/// @brief A template of special tokens (their ids) and the sequence's place ($A).
struct template_processor final : post_processor {
  std::vector<std::int32_t> before, after;
  void process(std::vector<std::int32_t>& ids) const override {
    ids.insert(ids.begin(), before.begin(), before.end());
    ids.insert(ids.end(), after.begin(), after.end());
  }
};

/// @brief Post-processors applied in order.
struct sequence_processor final : post_processor {
  std::vector<std::unique_ptr<post_processor>> steps;
  void process(std::vector<std::int32_t>& ids) const override {
    for (const auto& s : steps) s->process(ids);
  }
};

/// @brief The post-processor a tokenizer.json "post_processor" object describes (nullptr for
/// null or one that adds nothing).
inline std::unique_ptr<post_processor> make_post_processor(const json_node& j) {
  if (j.value.is_null()) return nullptr;
  j.require_object();
  const std::string type = j.type();
  if (type == "ByteLevel") return nullptr;
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto p = std::make_unique<template_processor>();
    const auto cls = j.at("cls"), sep = j.at("sep");  // [token, id]
    if (!cls.value.is_array() || cls.value.size() != 2) cls.fail("must be a pair [token, id]");
    if (!sep.value.is_array() || sep.value.size() != 2) sep.fail("must be a pair [token, id]");
    p->before = {cls[1].id()};
    p->after = {sep[1].id()};
    return p;
  }
  if (type == "TemplateProcessing") {
    auto p = std::make_unique<template_processor>();
    const auto specials = j.at("special_tokens");
    specials.require_object();
    const auto single = j.at("single");
    single.require_array();
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.value.size(); ++i) {
      const auto item = single[i];
      item.require_object();
      if (item.has("Sequence")) {
        if (seen_sequence) item.fail("repeats the sequence: a single template holds $A once");
        seen_sequence = true;
      } else if (item.has("SpecialToken")) {
        const std::string name = item.at("SpecialToken").at("id").str();
        if (!specials.value.contains(name)) item.fail("names the special token '" + name + "', which special_tokens does not define");
        const auto spec = specials.at(name).at("ids");
        spec.require_array();
        auto& dst = seen_sequence ? p->after : p->before;
        for (std::size_t k = 0; k < spec.value.size(); ++k) dst.push_back(spec[k].id());
      } else {
        item.fail("must be a {\"Sequence\": ...} or a {\"SpecialToken\": ...}");
      }
    }
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
