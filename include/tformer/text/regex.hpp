// Unicode regular expressions for the pre-tokenizers, on PCRE2 (UTF + UCP mode, JIT when the
// library has it). Hugging Face tokenizers runs its patterns on Oniguruma, whose \s, \w and \d
// are Unicode properties: before compiling, regex rewrites them to the same properties in PCRE2
// syntax (\s: White_Space; \w: Alphabetic, marks, decimal digits, connector punctuation and the
// two joiners; \d: Nd), so the patterns of tokenizer.json files match what they match there.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pcre2.h>

#include "../core/error.hpp"

namespace tformer::text {

namespace detail {
inline constexpr std::string_view word_props = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}";
inline constexpr std::string_view space_props = "\\p{White_Space}";

/// The Oniguruma-flavoured pattern p in PCRE2 syntax (see the file comment).
inline std::string translate_pattern(std::string_view p) {
  std::string out;
  bool in_class = false;
  std::size_t class_start = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      const auto props = e == 's' || e == 'S' ? space_props : e == 'w' || e == 'W' ? word_props : std::string_view();
      if (!props.empty() && (e == 's' || e == 'w')) {
        out += in_class ? std::string(props) : "[" + std::string(props) + "]";
      } else if (!props.empty() && !in_class) {
        out += "[^" + std::string(props) + "]";
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = out.size() + 1;
    } else if (in_class && c == ']') {
      const bool first = out.size() == class_start || (out.size() == class_start + 1 && out[class_start] == '^');
      if (!first) in_class = false;
    }
    out += c;
  }
  return out;
}
}  // namespace detail

/// @brief A compiled Unicode regular expression; find_all lists its non-overlapping matches.
class regex {
 public:
  regex() = default;
  /// @brief Compiles pattern (Oniguruma flavour, see the file comment); `where` names it in errors.
  explicit regex(std::string_view pattern, const std::string& where = "regex") : source_(pattern) {
    const std::string translated = detail::translate_pattern(pattern);
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
    if (!re) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(code, buffer, sizeof buffer);
      throw value_error(where + ": the regular expression '" + std::string(pattern) + "' does not compile (" +
                        reinterpret_cast<const char*>(buffer) + ", at character " + std::to_string(offset) + ")");
    }
    code_.reset(re, &pcre2_code_free);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // optional: without JIT the interpreter runs
  }

  const std::string& source() const noexcept { return source_; }

  /// @brief [begin, end) byte ranges of the successive matches in s (an empty match advances
  /// one character past itself, as Oniguruma's and Rust's iterators do).
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view s) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    if (!code_) return out;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), &pcre2_match_data_free);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    std::size_t start = 0;
    while (start <= s.size()) {
      const int rc = pcre2_match(code_.get(), subject, s.size(), start, 0, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(rc, buffer, sizeof buffer);
        throw value_error("tformer::text::regex: matching '" + source_ + "' failed: " + reinterpret_cast<const char*>(buffer));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      const std::size_t b = ov[0], e = ov[1];
      out.emplace_back(b, e);
      if (e > b) {
        start = e;
      } else {
        if (e >= s.size()) break;
        start = e + 1;
        while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
      }
    }
    return out;
  }

 private:
  std::string source_;
  std::shared_ptr<pcre2_code> code_;
};

}  // namespace tformer::text
