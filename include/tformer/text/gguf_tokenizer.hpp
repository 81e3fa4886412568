// A tokenizer from a GGUF file's vocabulary metadata, tokenizing as llama.cpp does:
//   tokenizer.ggml.model   "gpt2": byte-level BPE, pre-tokenized by the regexes llama.cpp uses for
//                          tokenizer.ggml.pre (smollm, llama-bpe, qwen2, gpt-2, ...);
//                          "bert": WordPiece (llama.cpp stores word starts as "▁word" and
//                          continuations without "##"; they are mapped back);
//                          "llama": SentencePiece (Llama 2, Mistral, ...) with tokenizer.ggml.scores,
//                          byte fallback tokens <0xXX>, "▁" for spaces and a space in front of
//                          every text segment when tokenizer.ggml.add_space_prefix (default true),
//                          tokenized and detokenized as llama.cpp does (text/llama_spm.hpp); BOS is
//                          added by default (token 1, EOS 2, unknown 0 unless the file says).
//   tokenizer.ggml.tokens / merges / scores / token_type / bos_token_id / eos_token_id /
//   add_bos_token / add_eos_token / add_space_prefix / unknown_token_id.
// CONTROL and USER_DEFINED tokens (token_type 3 and 4; for "llama" also UNKNOWN, 2) are matched in
// the text before pre-tokenization, as llama.cpp does with parse_special; CONTROL (and UNKNOWN)
// tokens are special (skipped by decode with skip_special_tokens).
// Pairs (encode_pair) get the templates Hugging Face's converters write: BERT's [CLS] A [SEP]
// B [SEP] (type ids 1 from B on), the others' BOS A EOS BOS B EOS (each where the file adds it).
//
// Decoding "llama" ids: decode(ids, false) is llama.cpp's llama_detokenize(ids, remove_special =
// false, unparse_special = true): special tokens written out, and only the first token, whatever
// it is, loses a leading space ("<s> Hi" for BOS, "▁Hi"). decode(ids) drops the special tokens,
// then detokenizes the rest the same way, so decode(encode("Hi")) is "Hi"; llama.cpp's
// llama_detokenize with unparse_special = false gives " Hi" there (its unprinted BOS is the
// first token).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../io/gguf.hpp"
#include "bpe.hpp"
#include "decoder.hpp"
#include "llama_spm.hpp"
#include "normalizer.hpp"
#include "post_processor.hpp"
#include "pre_tokenizer.hpp"
#include "tokenizer.hpp"
#include "wordpiece.hpp"

namespace tformer::text {

/// @brief The pre-tokenizer regexes llama.cpp applies (in order, each isolating its matches) for a
/// tokenizer.ggml.pre value; throws value_error naming an unknown one.
inline std::vector<std::string> gguf_pre_regexes(const std::string& pre, const std::string& where) {
  const std::string gpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
  const std::string llama3 =
      R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string qwen2 =
      R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  // llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT (also when a file has no tokenizer.ggml.pre)
  if (pre == "default") return {R"([\p{P}\$\+<=>\^~\|]+)", gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "pixtral" ||
      pre == "dbrx" || pre == "smaug-bpe")
    return {llama3};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" || pre == "exaone" ||
      pre == "minerva-7b")
    return {R"(\p{N})", gpt2};
  if (pre == "gpt-2" || pre == "mpt" || pre == "olmo" || pre == "jais" || pre == "roberta-bpe" || pre == "phi-2" || pre == "jina-es" ||
      pre == "jina-de" || pre == "exaone4")
    return {gpt2};
  if (pre == "qwen2" || pre == "stablelm2" || pre == "deepseek-r1-qwen") return {qwen2};
  if (pre == "chatglm-bpe" || pre == "glm4")
    return {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
  throw value_error(where + ": tokenizer.ggml.pre '" + pre +
                    "' is not supported (known: default, llama3, llama-bpe, smollm, starcoder, gpt-2, qwen2, stablelm2, ...)");
}

/// @brief The tokenizer of a GGUF file (see the file comment).
inline tokenizer tokenizer_from_gguf(const io::gguf_file& f) {
  const std::string where = f.path();
  const std::string kind = f.get_string("tokenizer.ggml.model");
  std::vector<std::string> tokens = f.get_strings("tokenizer.ggml.tokens");
  if (kind == "llama")  // llama.cpp renames empty tokens
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].empty()) tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
  std::vector<std::int64_t> types(tokens.size(), 1);
  if (f.find_metadata("tokenizer.ggml.token_type")) {
    types = f.get_ints("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      throw value_error(where + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                        std::to_string(tokens.size()) + " tokens");
  }
  const auto opt_int = [&](const char* key) -> std::int64_t { return f.find_metadata(key) ? f.get_int(key) : -1; };
  const auto opt_bool = [&](const char* key, bool def) { return f.find_metadata(key) ? f.get_bool(key) : def; };
  const auto check_id = [&](const char* key, std::int64_t id) {
    if (id >= static_cast<std::int64_t>(tokens.size()))
      throw value_error(where + ": " + key + " " + std::to_string(id) + " is past the " + std::to_string(tokens.size()) + " tokens");
  };

  // CONTROL and USER_DEFINED tokens are matched in the raw text (and, in SentencePiece
  // vocabularies, UNKNOWN ones: llama.cpp's special tokens cache holds all three)
  std::vector<added_token> added;
  const bool unknown_is_special = kind == "llama";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const bool special = types[i] == 3 || (unknown_is_special && types[i] == 2);
    if ((special || types[i] == 4) && !tokens[i].empty())
      added.push_back({tokens[i], static_cast<std::int32_t>(i), special, false, false, false, false});
  }

  std::vector<std::int32_t> before, after;  // the special tokens around a text
  std::unique_ptr<text::model> m;
  std::unique_ptr<normalizer> norm;
  std::unique_ptr<pre_tokenizer> pre;
  std::unique_ptr<decoder> dec;
  bool default_bos = false, default_eos = false;
  std::int64_t default_bos_id = -1, default_eos_id = -1;
  if (kind == "gpt2") {
    vocabulary v;
    for (std::size_t i = 0; i < tokens.size(); ++i) v.add(tokens[i], static_cast<std::int32_t>(i), where + ": tokenizer.ggml.tokens");
    std::vector<std::pair<std::string, std::string>> merges;
    for (const auto& s : f.get_strings("tokenizer.ggml.merges")) {
      const auto sp = s.find(' ', 1);
      if (sp == std::string::npos) throw value_error(where + ": tokenizer.ggml.merges entry '" + s + "' is not two tokens separated by a space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
    const std::string pre_name = f.find_metadata("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
    bpe::options o;
    o.ignore_merges = pre_name == "llama3" || pre_name == "llama-v3" || pre_name == "llama-bpe" || pre_name == "falcon3" || pre_name == "pixtral" || pre_name == "glm4";
    m = bpe::from_vocab(std::move(v), merges, o, where + ": tokenizer.ggml");
    auto seq = std::make_unique<sequence_pre_tokenizer>();
    for (const auto& r : gguf_pre_regexes(pre_name, where)) {
      auto s = std::make_unique<split_pre_tokenizer>();
      s->pattern = regex(r, where + ": tokenizer.ggml.pre");
      s->behavior = split_behavior::isolated;
      seq->steps.push_back(std::move(s));
    }
    auto bl = std::make_unique<byte_level_pre_tokenizer>();
    bl->use_regex = false;
    seq->steps.push_back(std::move(bl));
    pre = std::move(seq);
    dec = std::make_unique<byte_level_decoder>();
  } else if (kind == "bert") {
    const std::string word_start = "\xE2\x96\x81";
    vocabulary v;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string t = tokens[i];
      if (types[i] == 1) t = t.compare(0, word_start.size(), word_start) == 0 ? t.substr(word_start.size()) : "##" + t;
      v.add(std::move(t), static_cast<std::int32_t>(i), where + ": tokenizer.ggml.tokens");
    }
    std::int64_t unk = opt_int("tokenizer.ggml.unknown_token_id");
    if (unk < 0) unk = v.find("[UNK]");
    if (unk < 0) throw value_error(where + ": a bert vocabulary needs tokenizer.ggml.unknown_token_id or an [UNK] token");
    check_id("tokenizer.ggml.unknown_token_id", unk);
    m = wordpiece::from_vocab(std::move(v), static_cast<std::int32_t>(unk));
    auto bn = std::make_unique<bert_normalizer>();
    norm = std::move(bn);
    auto seq = std::make_unique<sequence_pre_tokenizer>();
    auto ws = std::make_unique<split_pre_tokenizer>();
    ws->predicate = [](char32_t c) { return is_whitespace(c); };
    ws->behavior = split_behavior::removed;
    auto punct = std::make_unique<split_pre_tokenizer>();
    punct->predicate = detail::is_bert_punctuation;
    punct->behavior = split_behavior::isolated;
    seq->steps.push_back(std::move(ws));
    seq->steps.push_back(std::move(punct));
    pre = std::move(seq);
    dec = std::make_unique<wordpiece_decoder>();
    default_bos = default_eos = true;  // [CLS] ... [SEP]
  } else if (kind == "llama") {
    std::vector<float> scores(tokens.size(), 0.0f);
    if (const auto* sv = f.find_metadata("tokenizer.ggml.scores")) {
      io::gguf_value probe;  // llama.cpp takes FLOAT32 or INT32 scores
      probe.type = sv->array() ? sv->array()->type : sv->type;
      scores.clear();
      if (probe.is_integer())
        for (const std::int64_t x : f.get_ints("tokenizer.ggml.scores")) scores.push_back(static_cast<float>(x));
      else
        for (const double x : f.get_floats("tokenizer.ggml.scores")) scores.push_back(static_cast<float>(x));
      if (scores.size() != tokens.size())
        throw value_error(where + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) + " entries for " +
                          std::to_string(tokens.size()) + " tokens");
    }
    const auto in_range = [&](std::int64_t id) { return id < static_cast<std::int64_t>(tokens.size()) ? id : std::int64_t{-1}; };
    std::int64_t unk = f.find_metadata("tokenizer.ggml.unknown_token_id") ? f.get_int("tokenizer.ggml.unknown_token_id") : in_range(0);
    check_id("tokenizer.ggml.unknown_token_id", unk);
    const bool space_prefix = opt_bool("tokenizer.ggml.add_space_prefix", true);
    m = std::make_unique<llama_spm>(tokens, std::move(scores), static_cast<std::int32_t>(unk), where + ": tokenizer.ggml.tokens");
    auto n = std::make_unique<llama_spm_normalizer>();
    n->add_space_prefix = space_prefix;
    norm = std::move(n);
    dec = llama_spm_decoder::from_vocab(tokens, types, space_prefix);
    default_bos = true;
    default_bos_id = in_range(1);
    default_eos_id = in_range(2);
  } else {
    throw value_error(where + ": tokenizer.ggml.model '" + kind + "' is not supported (gpt2, bert, llama)");
  }
  std::int64_t bos = opt_int("tokenizer.ggml.bos_token_id"), eos = opt_int("tokenizer.ggml.eos_token_id");
  if (bos < 0) bos = default_bos_id;
  if (eos < 0) eos = default_eos_id;
  std::int64_t sep = opt_int("tokenizer.ggml.seperator_token_id");
  if (sep < 0) sep = eos;
  check_id("tokenizer.ggml.bos_token_id", bos);
  check_id("tokenizer.ggml.eos_token_id", eos);
  check_id("tokenizer.ggml.seperator_token_id", sep);
  if (opt_bool("tokenizer.ggml.add_bos_token", default_bos) && bos >= 0) before.push_back(static_cast<std::int32_t>(bos));
  if (kind == "bert" && opt_bool("tokenizer.ggml.add_sep_token", default_eos) && sep >= 0) after.push_back(static_cast<std::int32_t>(sep));
  else if (opt_bool("tokenizer.ggml.add_eos_token", false) && eos >= 0) after.push_back(static_cast<std::int32_t>(eos));
  // pairs as Hugging Face's converters write them: BERT's [CLS] $A [SEP] $B:1 [SEP]:1, the others'
  // <s> $A </s> <s>:1 $B:1 </s>:1
  auto post = template_processor::around(before, after, kind != "bert");
  return tokenizer::from_parts(std::move(m), std::move(norm), std::move(pre), std::move(post), std::move(dec), std::move(added));
}

/// @brief The tokenizer of the GGUF file at path.
inline tokenizer tokenizer_from_gguf(const std::filesystem::path& path) { return tokenizer_from_gguf(io::gguf_file(path)); }

}  // namespace tformer::text
