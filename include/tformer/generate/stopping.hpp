// Stop criteria for text generation: a criterion looks at a sequence (prompt included) after each
// new token and says whether the sequence ends there; the token that ended it is kept, as with an
// end token.
//
//   stop_strings   the text of the sequence's tail holds one of the strings, and that occurrence
//                  reaches into the last token (Hugging Face StopStringCriteria)
//
// Text comes from a detokenizer, a callable that turns token ids into text (a tokenizer's decode);
// tformer's generation needs nothing else from a tokenizer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace tformer::generate {

/// @brief Token ids -> text, as a tokenizer's decode (std::string is UTF-8 or bytes).
using detokenizer = std::function<std::string(std::span<const std::int32_t>)>;

/// @brief Ends a sequence once its text holds a stop string that overlaps its last token (HF
/// StopStringCriteria): with P the offset in the text where the last token's text begins, an
/// occurrence [s, s + length) matches when s <= P < s + length. So "stop" ends ["st", "op"],
/// ["stop"], ["st", "opera"], ["las", "topper"], but not ["stop", "at"] (the string lies wholly
/// before the last token) nor ["xstopy"] (it starts inside the last token, as HF's token-table
/// matching also requires). The prompt counts: a stop string may start in it.
///
/// The text is the detokenized tail of the sequence (the last longest-string-length + 1 tokens,
/// one more than HF's window so that a tokenizer that drops a leading space at the start of a
/// decode does not touch the part that can match); P is the length of the text of the tail
/// without its last token (or of the common prefix of the two texts when a token changes the text
/// before it, e.g. by completing a UTF-8 character). HF matches on cleaned vocabulary strings; the
/// two agree when decoding a run of tokens gives the concatenation of their strings.
class stop_strings {
 public:
  /// @brief strings: each non-empty; decode: token ids -> text. Throws value_error otherwise.
  stop_strings(std::vector<std::string> strings, detokenizer decode) : strings_(std::move(strings)), decode_(std::move(decode)) {
    if (!decode_) throw value_error("tformer::generate::stop_strings: the detokenizer is empty");
    for (std::size_t i = 0; i < strings_.size(); ++i) {
      if (strings_[i].empty()) throw value_error("tformer::generate::stop_strings: string " + std::to_string(i) + " is empty");
      longest_ = std::max(longest_, strings_[i].size());
    }
  }
  const std::vector<std::string>& strings() const noexcept { return strings_; }

  /// @brief True when the sequence tokens ends with a stop string (see the class comment).
  bool operator()(std::span<const std::int32_t> tokens) const {
    if (tokens.empty() || strings_.empty()) return false;
    const std::size_t window = std::min(tokens.size(), longest_ + 1);
    const auto tail = tokens.subspan(tokens.size() - window);
    const std::string text = decode_(tail);
    const std::string before = decode_(tail.first(window - 1));
    // P: where the last token's text starts
    const std::size_t p = static_cast<std::size_t>(
        std::mismatch(before.begin(), before.end(), text.begin(), text.end()).first - before.begin());
    for (const std::string& s : strings_) {
      const std::size_t n = s.size();
      if (text.size() < n) continue;
      // occurrences starting at or before p and ending after it
      const std::size_t first = p + 1 >= n ? p + 1 - n : 0, last = std::min(p, text.size() - n);
      for (std::size_t at = first; at <= last; ++at)
        if (text.compare(at, n, s) == 0) return true;
    }
    return false;
  }

 private:
  std::vector<std::string> strings_;
  detokenizer decode_;
  std::size_t longest_ = 0;
};

}  // namespace tformer::generate
