// UTF-8 and Unicode helpers for the tokenizers: decoding and encoding code points, replacing
// invalid UTF-8 with U+FFFD, character properties and normalization forms (from utf8proc; no
// Unicode tables are kept here).
//
// Invalid UTF-8 is replaced the way Python's bytes.decode('utf-8', 'replace') and Rust's
// String::from_utf8_lossy do it ("substitution of maximal subparts", Unicode 15 section 3.9):
// a lead byte followed by a valid but incomplete continuation is one U+FFFD, every other
// invalid byte is one U+FFFD. Every tokenizer runs on the text sanitize_utf8 returns, so its
// behaviour on any byte string is defined: that of the tokenizer on the decoded-and-replaced text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <utf8proc.h>

#include "../core/error.hpp"

namespace tformer::text {

/// @brief The replacement character U+FFFD in UTF-8.
inline constexpr std::string_view replacement_utf8 = "\xEF\xBF\xBD";

/// @brief Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one
/// (overlong forms, surrogates, code points past U+10FFFF and truncated sequences are invalid).
inline std::size_t utf8_valid_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + 1 >= s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (i + k >= s.size() || (b(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

/// @brief Number of bytes one U+FFFD replaces at an invalid position i: the lead byte and the
/// valid continuation bytes that follow it (the maximal subpart), at least 1.
inline std::size_t utf8_invalid_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 1;
  std::size_t k = 1;
  if (i + 1 < s.size() && b(i + 1) >= lo && b(i + 1) <= hi) {
    k = 2;
    while (k < n && i + k < s.size() && (b(i + k) & 0xC0) == 0x80) ++k;
  }
  return k;
}

/// @brief True when s is valid UTF-8.
inline bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_valid_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

/// @brief s with every invalid UTF-8 subpart replaced by U+FFFD (see the file comment).
inline std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_valid_length(s, i);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(replacement_utf8);
      i += utf8_invalid_length(s, i);
    }
  }
  return out;
}

/// @brief The code point at s[i] of valid UTF-8 text, and advances i past it.
inline char32_t next_code_point(std::string_view s, std::size_t& i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return ++i, c;
  const std::size_t n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  char32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

/// @brief Byte length of the UTF-8 character whose lead byte is c (1 for stray bytes).
inline std::size_t utf8_char_length(unsigned char c) noexcept {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/// @brief Appends the UTF-8 encoding of cp to out.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// @brief The UTF-8 encoding of cp.
inline std::string utf8(char32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

/// @brief The general category of cp (utf8proc's UTF8PROC_CATEGORY_* value).
inline int category(char32_t cp) noexcept { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

/// @brief Unicode White_Space (Rust's char::is_whitespace).
inline bool is_whitespace(char32_t c) noexcept {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// @brief A Unicode punctuation character (general category P*).
inline bool is_punctuation(char32_t c) noexcept {
  const int k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/// @brief A mark (general category M*: Mn, Mc, Me).
inline bool is_mark(char32_t c) noexcept {
  const int k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

/// @brief Appends the full lowercase mapping of c (Rust's char::to_lowercase: the simple mapping
/// except U+0130, the one unconditional multi-character lowercase mapping).
inline void append_lowercase(std::string& out, char32_t c) {
  if (c == 0x130) {
    out += "i\xCC\x87";
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

/// @brief Lowercases valid UTF-8 text character by character (no context-dependent mappings).
inline std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) append_lowercase(out, next_code_point(s, i));
  return out;
}

/// @brief Unicode normalization forms.
enum class normal_form { nfc, nfd, nfkc, nfkd };

/// @brief s (valid UTF-8) in normalization form f.
inline std::string normalize(std::string_view s, normal_form f) {
  if (s.empty()) return {};
  int options = UTF8PROC_STABLE;
  switch (f) {
    case normal_form::nfc: options |= UTF8PROC_COMPOSE; break;
    case normal_form::nfd: options |= UTF8PROC_DECOMPOSE; break;
    case normal_form::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case normal_form::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                              &out, static_cast<utf8proc_option_t>(options));
  if (n < 0) throw value_error(std::string("tformer::text::normalize: ") + utf8proc_errmsg(n));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

/// @brief Number of code points of valid UTF-8 text.
inline std::size_t count_chars(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace tformer::text
