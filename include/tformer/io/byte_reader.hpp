// The cursor of tformer's validating binary readers (io/gguf.hpp, io/ctranslate2.hpp): bytes in
// memory, a position, and errors that name the file, the byte offset and what was being read.
// Internal: a parser derives from it and reads its records with take / read_le.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "../core/error.hpp"

namespace tformer::io::detail {

class byte_reader {
 protected:
  /// @brief bytes of the file named in messages as `what_file` (e.g. "gguf file 'x.gguf'").
  byte_reader(std::span<const std::byte> bytes, std::string what_file) : data_(bytes), file_(std::move(what_file)) {}

  std::uint64_t size() const noexcept { return data_.size(); }
  std::uint64_t left() const noexcept { return size() - pos_; }

  /// @brief io_error "tformer: <file> at byte <at>: <what>".
  [[noreturn]] void fail(std::uint64_t at, const std::string& what) const {
    throw io_error("tformer: " + file_ + " at byte " + std::to_string(at) + ": " + what);
  }

  /// @brief The next n bytes; a file that ends first is reported where the read fell off, with
  /// what was being read and ctx_ (e.g. " of tensor 'x'").
  const std::byte* take(std::uint64_t n, const char* what) {
    if (n > left())
      fail(pos_, std::string("truncated: the file ends (at byte ") + std::to_string(size()) + ") inside " + what + ctx_ +
                     ", which needs " + std::to_string(n) + " bytes but " + std::to_string(left()) + " remain");
    const std::byte* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }

  /// @brief The next n (<= 8) bytes as a little-endian unsigned integer.
  std::uint64_t read_le(int n, const char* what) {
    const std::byte* p = take(static_cast<std::uint64_t>(n), what);
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
    return v;
  }

  std::span<const std::byte> data_;
  std::string file_;
  std::uint64_t pos_ = 0;
  std::string ctx_;  // what is being read, for messages: " of tensor 'x'", " of variable 'y'"
};

}  // namespace tformer::io::detail
