// A model's hyperparameters in a GGUF file's metadata, as llama.cpp's converters write them:
// general.architecture names the architecture ARCH, and its sizes are under ARCH.* keys
// (ARCH.block_count, ARCH.embedding_length, ARCH.attention.head_count, ...). The family presets
// (models/llama.hpp, gpt2.hpp, bert.hpp) read their configs through it; every accessor throws
// io_error naming the file and the full key.
//
//   const io::gguf_hparams h(f, {"llama", "qwen2"});   // io_error for any other architecture
//   const std::int64_t layers = h.integer_at_least("block_count", 1);   // key "qwen2.block_count"
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "gguf.hpp"

namespace tformer::io {

/// @brief Typed access to the ARCH.* keys of a GGUF file (ARCH = general.architecture).
class gguf_hparams {
 public:
  /// @brief Reads general.architecture; io_error unless it is one of `accepted`.
  gguf_hparams(const gguf_file& f, std::initializer_list<std::string_view> accepted) : f_(&f), arch_(f.get_string("general.architecture")) {
    std::string names;
    for (auto a : accepted) {
      if (a == arch_) return;
      names += (names.empty() ? "'" : " or '") + std::string(a) + "'";
    }
    fail("general.architecture is '" + arch_ + "', not " + names);
  }

  const gguf_file& file() const noexcept { return *f_; }
  /// @brief general.architecture.
  const std::string& arch() const noexcept { return arch_; }
  /// @brief The full key of ARCH.name.
  std::string key(std::string_view name) const { return arch_ + "." + std::string(name); }
  bool has(std::string_view name) const { return f_->find_metadata(key(name)) != nullptr; }

  std::int64_t integer(std::string_view name) const { return f_->get_int(key(name)); }
  std::int64_t integer_or(std::string_view name, std::int64_t fallback) const { return has(name) ? integer(name) : fallback; }
  /// @brief An integer key that must be >= minimum (sizes: 1).
  std::int64_t integer_at_least(std::string_view name, std::int64_t minimum) const {
    const std::int64_t v = integer(name);
    if (v < minimum) fail_key(name, "is " + std::to_string(v) + ", expected at least " + std::to_string(minimum));
    return v;
  }
  std::int64_t integer_at_least_or(std::string_view name, std::int64_t minimum, std::int64_t fallback) const {
    return has(name) ? integer_at_least(name, minimum) : fallback;
  }
  /// @brief A FLOAT32 / FLOAT64 key.
  double number(std::string_view name) const { return f_->get_float(key(name)); }
  double number_or(std::string_view name, double fallback) const { return has(name) ? number(name) : fallback; }
  /// @brief A FLOAT32 / FLOAT64 key that must be > 0 (epsilons).
  double positive(std::string_view name) const {
    const double v = number(name);
    if (!(v > 0)) fail_key(name, "is " + std::to_string(v) + ", expected > 0");
    return v;
  }
  bool boolean_or(std::string_view name, bool fallback) const { return has(name) ? f_->get_bool(key(name)) : fallback; }

  /// @brief The rows (outermost extent) of a 2-D tensor; io_error when it is absent or not 2-D.
  std::int64_t rows(std::string_view tensor) const {
    const auto* t = f_->find(tensor);
    if (!t) fail("there is no tensor '" + std::string(tensor) + "'");
    if (t->shape.size() != 2) fail("tensor '" + std::string(tensor) + "' has " + std::to_string(t->shape.size()) + " dimensions, expected 2");
    return t->shape[0];
  }
  /// @brief The vocabulary size: the rows of token_embd.weight (llama.cpp's token table), which
  /// ARCH.vocab_size must equal when present.
  std::int64_t vocab() const {
    const std::int64_t n = rows("token_embd.weight");
    if (has("vocab_size") && integer("vocab_size") != n)
      fail_key("vocab_size", "is " + std::to_string(integer("vocab_size")) + " but token_embd.weight has " + std::to_string(n) + " rows");
    return n;
  }
  /// @brief The learned position table's size: ARCH.context_length, which must equal the rows of
  /// position_embd.weight.
  std::int64_t positions() const {
    const std::int64_t n = integer_at_least("context_length", 1);
    if (rows("position_embd.weight") != n)
      fail_key("context_length", "is " + std::to_string(n) + " but position_embd.weight has " +
                                     std::to_string(rows("position_embd.weight")) + " rows");
    return n;
  }
  /// @brief io_error naming both keys unless heads (>= 1) divides d.
  void check_divides(std::string_view d_name, std::int64_t d, std::string_view heads_name, std::int64_t heads) const {
    if (heads < 1 || d % heads != 0)
      fail("key '" + key(heads_name) + "' (" + std::to_string(heads) + ") does not divide key '" + key(d_name) + "' (" +
           std::to_string(d) + ")");
  }

  /// @brief io_error "tformer: gguf file 'PATH': why".
  [[noreturn]] void fail(const std::string& why) const { throw io_error("tformer: gguf file '" + f_->path() + "': " + why); }
  /// @brief io_error "tformer: gguf file 'PATH': key 'ARCH.name' why".
  [[noreturn]] void fail_key(std::string_view name, const std::string& why) const { fail("key '" + key(name) + "' " + why); }

 private:
  const gguf_file* f_;
  std::string arch_;
};

}  // namespace tformer::io
