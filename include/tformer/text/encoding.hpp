// Encodings with their side arrays, and the truncation and padding of Hugging Face tokenizers:
//
//   encoding        ids, type ids (segment ids), attention mask and special tokens mask
//   truncation      max_length, strategy longest_first / only_first / only_second, direction
//   padding         to the batch's longest or a fixed length, pad_to_multiple_of, direction,
//                   pad_id, pad_type_id, pad_token
//
// and the readers of a tokenizer.json's "truncation" and "padding" sections. The semantics are
// those of tokenizers 0.23 (tokenizers/src/utils/{truncation,padding}.rs): truncation cuts the
// sequences before the post-processor adds its special tokens (tokenizer.hpp takes the number it
// adds off max_length), padding runs after it.
//
// Not done: overflowing tokens. stride is read, kept and checked as Hugging Face checks it, but it
// only shapes the overflowing parts, which are not made, so the ids never depend on it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "json_config.hpp"

namespace tformer::text {

/// @brief The ids of an encoded text (or pair of texts) and the arrays that go with them, all of
/// the same length.
struct encoding {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> type_ids;             ///< segment ids: 0 and 1 for the two texts of a pair (as the post-processor says)
  std::vector<std::int32_t> attention_mask;       ///< 1 for tokens, 0 for padding
  std::vector<std::int32_t> special_tokens_mask;  ///< 1 for the post-processor's special tokens and padding, 0 for the text's tokens

  std::size_t size() const noexcept { return ids.size(); }
  bool empty() const noexcept { return ids.empty(); }

  /// @brief The tokens of one text: ids with type_id, attention 1, special 0.
  static encoding from_ids(std::vector<std::int32_t> ids, std::int32_t type_id = 0) {
    encoding e;
    const std::size_t n = ids.size();
    e.ids = std::move(ids);
    e.type_ids.assign(n, type_id);
    e.attention_mask.assign(n, 1);
    e.special_tokens_mask.assign(n, 0);
    return e;
  }
  /// @brief Special tokens: ids with type_id, attention 1, special 1.
  static encoding special(const std::vector<std::int32_t>& ids, std::int32_t type_id) {
    encoding e = from_ids(ids, type_id);
    e.special_tokens_mask.assign(ids.size(), 1);
    return e;
  }
  /// @brief Appends other's tokens.
  void append(const encoding& other) {
    ids.insert(ids.end(), other.ids.begin(), other.ids.end());
    type_ids.insert(type_ids.end(), other.type_ids.begin(), other.type_ids.end());
    attention_mask.insert(attention_mask.end(), other.attention_mask.begin(), other.attention_mask.end());
    special_tokens_mask.insert(special_tokens_mask.end(), other.special_tokens_mask.begin(), other.special_tokens_mask.end());
  }
  friend bool operator==(const encoding&, const encoding&) = default;
};

/// @brief Left or right: where truncation cuts and padding adds.
enum class side { left, right };

/// @brief Which text of a pair truncation shortens.
enum class truncation_strategy {
  longest_first,  ///< the longer one first, down to an even split of max_length
  only_first,     ///< only the first (an error when it cannot give up enough tokens)
  only_second     ///< only the second (an error for a single text, or when it cannot give up enough)
};

/// @brief Truncation (Hugging Face's TruncationParams).
struct truncation_params {
  std::size_t max_length = 512;  ///< the most tokens, the post-processor's special tokens included
  truncation_strategy strategy = truncation_strategy::longest_first;
  side direction = side::right;  ///< right: keep the start; left: keep the end
  std::size_t stride = 0;        ///< kept for Hugging Face's check only (overflowing tokens are not made)
  friend bool operator==(const truncation_params&, const truncation_params&) = default;
};

/// @brief Padding (Hugging Face's PaddingParams).
struct padding_params {
  std::optional<std::size_t> length;  ///< a fixed length (strategy Fixed); nullopt: the batch's longest (BatchLongest)
  side direction = side::right;
  std::size_t pad_to_multiple_of = 0;  ///< round the padded length up to a multiple of this (0: no rounding)
  std::int32_t pad_id = 0;
  std::int32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";  ///< the padding token's text (informational: encodings hold ids)
  friend bool operator==(const padding_params&, const padding_params&) = default;
};

/// @brief Keeps max_len tokens of e: the first ones (side::right) or the last ones (side::left).
inline void truncate(encoding& e, std::size_t max_len, side direction) {
  if (max_len >= e.size()) return;
  const auto cut = [&](std::vector<std::int32_t>& v) {
    if (direction == side::right) v.resize(max_len);
    else v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(max_len));
  };
  cut(e.ids);
  cut(e.type_ids);
  cut(e.attention_mask);
  cut(e.special_tokens_mask);
}

/// @brief Truncates a text (pair == nullptr) or a pair of texts to p.max_length tokens in all, as
/// Hugging Face's truncate_encodings does. Throws value_error where Hugging Face fails: only_second
/// without a second text, or only_first / only_second when that text is too short to give up enough.
inline void truncate_encodings(encoding& first, encoding* pair, const truncation_params& p) {
  if (p.max_length == 0) {
    truncate(first, 0, p.direction);
    if (pair) truncate(*pair, 0, p.direction);
    return;
  }
  const std::size_t total = first.size() + (pair ? pair->size() : 0);
  if (total <= p.max_length) return;
  const std::size_t to_remove = total - p.max_length;
  if (p.strategy == truncation_strategy::longest_first) {
    if (!pair) {
      truncate(first, p.max_length, p.direction);
      return;
    }
    // n1 <= n2: keep the shorter whole when the longer can give up enough, else split max_length
    // evenly, the odd token to the longer (to the second when they are as long)
    std::size_t n1 = first.size(), n2 = pair->size();
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    n2 = n1 > p.max_length ? n1 : std::max(n1, p.max_length - n1);
    if (n1 + n2 > p.max_length) {
      n1 = p.max_length / 2;
      n2 = n1 + p.max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    truncate(first, n1, p.direction);
    truncate(*pair, n2, p.direction);
    return;
  }
  encoding* target = p.strategy == truncation_strategy::only_first ? &first : pair;
  if (!target) throw value_error("tformer::text: Truncation error: Second sequence not provided (strategy only_second needs a pair)");
  if (target->size() <= to_remove)
    throw value_error("tformer::text: Truncation error: Sequence to truncate too short to respect the provided max_length (" +
                      std::to_string(p.max_length) + ")");
  truncate(*target, target->size() - to_remove, p.direction);
}

/// @brief Pads e to length tokens (nothing when it holds that many already).
inline void pad(encoding& e, std::size_t length, const padding_params& p) {
  if (e.size() >= length) return;
  const std::size_t n = length - e.size();
  const auto add = [&](std::vector<std::int32_t>& v, std::int32_t x) {
    if (p.direction == side::right) v.insert(v.end(), n, x);
    else v.insert(v.begin(), n, x);
  };
  add(e.ids, p.pad_id);
  add(e.type_ids, p.pad_type_id);
  add(e.attention_mask, 0);
  add(e.special_tokens_mask, 1);
}

/// @brief Pads the encodings of a batch together, as Hugging Face's pad_encodings does: to the
/// fixed length or the longest, rounded up to pad_to_multiple_of; longer ones stay as they are.
inline void pad_encodings(std::vector<encoding>& batch, const padding_params& p) {
  if (batch.empty()) return;
  std::size_t length = 0;
  if (p.length) length = *p.length;
  else
    for (const auto& e : batch) length = std::max(length, e.size());
  if (p.pad_to_multiple_of > 0 && length % p.pad_to_multiple_of > 0) length += p.pad_to_multiple_of - length % p.pad_to_multiple_of;
  for (auto& e : batch) pad(e, length, p);
}

namespace detail {
inline std::size_t json_size(const json_node& j) {
  const std::int64_t v = j.integer();
  if (v < 0) j.fail("must not be negative, not " + std::to_string(v));
  return static_cast<std::size_t>(v);
}
inline side json_side(const json_node& j) {
  const std::string s = j.str();
  if (s == "Right") return side::right;
  if (s == "Left") return side::left;
  j.fail("'" + s + "' is not a direction (Left, Right)");
}
}  // namespace detail

/// @brief The truncation a tokenizer.json's "truncation" object describes ({"max_length",
/// "strategy": LongestFirst | OnlyFirst | OnlySecond, "direction": Left | Right (default Right),
/// "stride" (default 0)}); nullopt for null.
inline std::optional<truncation_params> read_truncation(const json_node& j) {
  if (j.value.is_null()) return std::nullopt;
  j.require_object();
  truncation_params p;
  p.max_length = detail::json_size(j.at("max_length"));
  const auto s = j.at("strategy");
  const std::string strategy = s.str();
  if (strategy == "LongestFirst") p.strategy = truncation_strategy::longest_first;
  else if (strategy == "OnlyFirst") p.strategy = truncation_strategy::only_first;
  else if (strategy == "OnlySecond") p.strategy = truncation_strategy::only_second;
  else s.fail("'" + strategy + "' is not a truncation strategy (LongestFirst, OnlyFirst, OnlySecond)");
  if (j.has("direction")) p.direction = detail::json_side(j.at("direction"));
  if (j.has("stride")) p.stride = detail::json_size(j.at("stride"));
  return p;
}

/// @brief The padding a tokenizer.json's "padding" object describes ({"strategy": "BatchLongest" |
/// {"Fixed": n}, "direction": Left | Right, "pad_to_multiple_of": n | null, "pad_id", "pad_type_id",
/// "pad_token"}; all but strategy default as in Hugging Face's PaddingParams); nullopt for null.
inline std::optional<padding_params> read_padding(const json_node& j) {
  if (j.value.is_null()) return std::nullopt;
  j.require_object();
  padding_params p;
  const auto s = j.at("strategy");
  if (s.value.is_string()) {
    if (s.str() != "BatchLongest") s.fail("'" + s.str() + "' is not a padding strategy (\"BatchLongest\" or {\"Fixed\": length})");
  } else if (s.value.is_object() && s.value.size() == 1 && s.value.contains("Fixed")) {
    p.length = detail::json_size(s.at("Fixed"));
  } else {
    s.fail("must be \"BatchLongest\" or {\"Fixed\": length}, not " + s.value.dump());
  }
  if (j.has("direction")) p.direction = detail::json_side(j.at("direction"));
  if (j.has("pad_to_multiple_of")) p.pad_to_multiple_of = detail::json_size(j.at("pad_to_multiple_of"));
  if (j.has("pad_id")) p.pad_id = j.at("pad_id").id();
  if (j.has("pad_type_id")) {
    const auto t = j.at("pad_type_id");
    const std::int64_t v = t.integer();
    if (v < 0 || v > INT32_MAX) t.fail("must be a type id in [0, 2^31), not " + std::to_string(v));
    p.pad_type_id = static_cast<std::int32_t>(v);
  }
  if (j.has("pad_token")) p.pad_token = j.at("pad_token").str();
  return p;
}

}  // namespace tformer::text
