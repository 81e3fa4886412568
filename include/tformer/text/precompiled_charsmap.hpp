// SentencePiece's precompiled normalization map (the "precompiled_charsmap" of a Precompiled
// normalizer, base64 in tokenizer.json). The blob is
//   u32 trie_bytes (little endian) | a darts-clone double-array trie (trie_bytes / 4 u32 units)
//   | the normalized strings, each NUL-terminated, addressed by the trie's values.
// A unit packs: bit 8 has_leaf, bits 0-7 (and 31) the label, bits 10.. the offset to the
// children (shifted left by 8 when bit 9 is set); a leaf unit's low 31 bits are its value.
//
// Normalizing follows Hugging Face tokenizers (spm_precompiled): text is cut into extended
// grapheme clusters; a cluster shorter than 6 bytes that has a prefix in the trie becomes the
// string of its shortest such prefix, else each of its characters becomes the string of its own
// shortest prefix in the trie, or stays as it is.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <utf8proc.h>

#include "json_config.hpp"
#include "unicode.hpp"

namespace tformer::text {

/// @brief A decoded precompiled_charsmap (see the file comment).
class precompiled_charsmap {
 public:
  precompiled_charsmap() = default;

  /// @brief From the blob's bytes; throws value_error naming `where` when it is malformed.
  static precompiled_charsmap from_bytes(std::string_view blob, const std::string& where) {
    precompiled_charsmap m;
    if (blob.size() < 4) throw value_error(where + ": the precompiled charsmap is " + std::to_string(blob.size()) + " bytes, shorter than its 4-byte header");
    std::uint32_t n = 0;
    for (int k = 3; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(blob[static_cast<std::size_t>(k)]);
    if (n % 4 != 0 || n > blob.size() - 4)
      throw value_error(where + ": the precompiled charsmap's trie size " + std::to_string(n) + " does not fit its " +
                        std::to_string(blob.size()) + " bytes");
    m.units_.resize(n / 4);
    for (std::size_t i = 0; i < m.units_.size(); ++i) {
      std::uint32_t u = 0;
      for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>(blob[4 + 4 * i + static_cast<std::size_t>(k)]);
      m.units_[i] = u;
    }
    m.normalized_ = std::string(blob.substr(4 + n));
    return m;
  }

  /// @brief From the base64 string of a tokenizer.json.
  static precompiled_charsmap from_base64(const json_node& j) {
    const std::string s = j.str();
    std::string bytes;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : s) {
      int v;
      if (c >= 'A' && c <= 'Z') v = c - 'A';
      else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
      else if (c >= '0' && c <= '9') v = c - '0' + 52;
      else if (c == '+' || c == '-') v = 62;
      else if (c == '/' || c == '_') v = 63;
      else if (c == '=' || c == '\n' || c == '\r') continue;
      else j.fail("is not base64 (character '" + std::string(1, c) + "')");
      acc = (acc << 6) | static_cast<std::uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    return from_bytes(bytes, j.where());
  }

  bool empty() const noexcept { return units_.empty(); }

  /// @brief s (valid UTF-8) normalized (see the file comment).
  std::string normalize(std::string_view s) const {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
      // one extended grapheme cluster [i, e)
      std::size_t e = i;
      char32_t prev = next_code_point(s, e);
      utf8proc_int32_t state = 0;
      while (e < s.size()) {
        std::size_t k = e;
        const char32_t c = next_code_point(s, k);
        if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev), static_cast<utf8proc_int32_t>(c), &state)) break;
        prev = c;
        e = k;
      }
      const std::string_view cluster = s.substr(i, e - i);
      std::string_view norm;
      if (cluster.size() < 6 && transform(cluster, norm)) {
        out.append(norm);
      } else {
        for (std::size_t k = 0; k < cluster.size();) {
          const std::size_t b = k;
          next_code_point(cluster, k);
          const std::string_view part = cluster.substr(b, k - b);
          out.append(transform(part, norm) ? norm : part);
        }
      }
      i = e;
    }
    return sanitize_utf8(out);  // a malformed map may hold invalid strings
  }

 private:
  // The normalized string of the shortest prefix of chunk in the trie; false when none is.
  bool transform(std::string_view chunk, std::string_view& out) const {
    if (units_.empty()) return false;
    std::size_t pos = offset(units_[0]);
    for (const char ch : chunk) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) return false;
      pos ^= c;
      if (pos >= units_.size()) return false;
      const std::uint32_t u = units_[pos];
      if ((u & ((1u << 31) | 0xFFu)) != c) return false;
      pos ^= offset(u);
      if (pos >= units_.size()) return false;
      if ((u >> 8) & 1u) {
        const std::size_t v = units_[pos] & 0x7FFFFFFFu;
        if (v >= normalized_.size()) return false;
        const std::size_t end = normalized_.find('\0', v);
        out = std::string_view(normalized_).substr(v, (end == std::string::npos ? normalized_.size() : end) - v);
        return true;
      }
    }
    return false;
  }
  static std::size_t offset(std::uint32_t u) noexcept { return (u >> 10) << ((u & (1u << 9)) >> 6); }

  std::vector<std::uint32_t> units_;
  std::string normalized_;
};

}  // namespace tformer::text
