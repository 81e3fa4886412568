// CTranslate2 model.bin reader: the binary file CTranslate2's converters write
// (ctranslate2/specs/model_spec.py, ModelSpec._serialize) and its C++ loader reads
// (src/models/model.cc). Layout, all little endian, no padding anywhere:
//
//   u32 version                                   1 to 6 (the writer of CTranslate2 4.x writes 6)
//   version >= 2: string spec_name, u32 revision  ("WhisperSpec", 3)
//   u32 variable_count
//   variable_count x { string name, u8 rank, u32 dims[rank],
//                      version >= 4: u8 dtype, u32 byte_count
//                      version <= 3: u8 item_size (4: float32, 2: int16, 1: int8), u32 element_count
//                      data[byte_count] }
//   version >= 3: u32 alias_count, alias_count x { string alias, string variable_name }
//
// where a string is a u16 length counting a terminating NUL, then the bytes and the NUL. dtype ids
// are CTranslate2's DataType: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
//
// Quantized weights: an int8 (or int16) variable "x/weight" comes with a float variable
// "x/weight_scale" of one scale per row (int16: one scalar); the weight is q / scale
// (CTranslate2's quantizer stores round(w * scale), scale = 127 / max |row|). A checkpoint source
// reads such a weight dequantized and does not list its scale as a tensor of its own.
//
// Opening a file checks every rule and throws io_error naming the file, the byte offset and the
// variable or alias: a truncated file (where the read fell off, and inside what), version 0 or
// above 6, a string whose length is 0 or whose last byte is not NUL, counts that the remaining
// bytes cannot hold, rank above 4 (tformer's maximum; CTranslate2 writes at most 3), unknown
// dtype ids or item sizes, a byte count other than elements x item size, duplicate variable
// names, an alias that names no variable or repeats a name, and bytes after the aliases.
// Nothing is allocated from a count before the bytes it claims are known to exist.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "byte_reader.hpp"
#include "checkpoint.hpp"
#include "mapped_file.hpp"

namespace tformer::io {

/// @brief CTranslate2's DataType ids (include/ctranslate2/types.h).
enum class ct2_dtype : std::uint8_t { f32 = 0, i8 = 1, i16 = 2, i32 = 3, f16 = 4, bf16 = 5 };

/// @brief "float32", ..., "bfloat16" (CTranslate2's names); "unknown" past 5.
constexpr std::string_view ct2_dtype_name(ct2_dtype t) noexcept {
  constexpr std::string_view names[] = {"float32", "int8", "int16", "int32", "float16", "bfloat16"};
  const auto i = static_cast<std::size_t>(t);
  return i < std::size(names) ? names[i] : std::string_view("unknown");
}

/// @brief Bytes of one element of dtype t.
constexpr std::uint64_t ct2_item_size(ct2_dtype t) noexcept {
  switch (t) {
    case ct2_dtype::i8: return 1;
    case ct2_dtype::i16: case ct2_dtype::f16: case ct2_dtype::bf16: return 2;
    case ct2_dtype::f32: case ct2_dtype::i32: return 4;
  }
  return 0;
}

/// @brief One variable of a model.bin file.
struct ct2_variable {
  std::string name;
  std::vector<std::int64_t> shape;  // outermost first, as CTranslate2 (row-major, last contiguous)
  ct2_dtype dtype = ct2_dtype::f32;
  std::uint64_t offset = 0;         // absolute file offset of the data
  std::uint64_t bytes = 0;          // size of the data
  std::uint64_t record = 0;         // file offset of the variable's record (its name)
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (const auto d : shape) n *= d;  // fits: checked when the file was read
    return n;
  }
};

namespace detail {

/// What a model.bin holds once validated (everything but the data bytes).
struct ct2_contents {
  std::uint32_t version = 0;
  std::string spec;
  std::uint32_t revision = 1;
  std::vector<ct2_variable> variables;
  std::vector<std::pair<std::string, std::string>> aliases;  // alias -> variable name
  std::map<std::string, std::size_t, std::less<>> index;    // variable name -> position
};

// The validating parser over the file's bytes; path names the file in messages.
class ct2_parser : byte_reader {
 public:
  static constexpr std::uint32_t newest_version = 6;

  ct2_parser(std::span<const std::byte> bytes, const std::string& path)
      : byte_reader(bytes, "ctranslate2 file '" + path + "'") {}

  ct2_contents parse() {
    ct2_contents c;
    c.version = static_cast<std::uint32_t>(read_le(4, "the binary version"));
    if (c.version == 0 || c.version > newest_version) {
      if (c.version != 0 && (c.version & 0xFFFF) == 0 && c.version >> 24 <= newest_version)
        fail(0, "binary version reads " + std::to_string(c.version) + ": a big-endian file? CTranslate2 files are little endian");
      fail(0, "unsupported binary version " + std::to_string(c.version) + " (tformer reads CTranslate2 versions 1 to " +
                  std::to_string(newest_version) + "; is this a model.bin?)");
    }
    if (c.version >= 2) {
      c.spec = string("the spec name");
      c.revision = static_cast<std::uint32_t>(read_le(4, "the spec revision"));
    }
    const std::uint64_t count_at = pos_;
    const std::uint64_t n = read_le(4, "the variable count");
    if (n > left() / kMinVariable)
      fail(count_at, "truncated or corrupt: variable count " + std::to_string(n) + " cannot fit in the " + std::to_string(left()) +
                         " remaining bytes (each variable takes at least " + std::to_string(kMinVariable) + ")");
    c.variables.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) read_variable(c, i);
    ctx_.clear();
    if (c.version >= 3) {
      const std::uint64_t alias_at = pos_;
      const std::uint64_t na = read_le(4, "the alias count");
      if (na > left() / kMinAlias)
        fail(alias_at, "truncated or corrupt: alias count " + std::to_string(na) + " cannot fit in the " + std::to_string(left()) +
                           " remaining bytes (each alias takes at least " + std::to_string(kMinAlias) + ")");
      std::map<std::string, std::size_t, std::less<>> seen;
      for (std::uint64_t i = 0; i < na; ++i) {
        const std::uint64_t at = pos_;
        ctx_ = " of alias " + std::to_string(i);
        std::string alias = string("an alias name");
        ctx_ = " of alias '" + alias + "'";
        std::string target = string("an alias target");
        if (c.index.count(alias) || seen.count(alias))
          fail(at, "alias '" + alias + "' repeats the name of a variable or of an earlier alias");
        if (!c.index.count(target))
          fail(at, "alias '" + alias + "' names variable '" + target + "', which the file does not hold");
        seen.emplace(alias, c.aliases.size());
        c.aliases.emplace_back(std::move(alias), std::move(target));
      }
      ctx_.clear();
    }
    if (left() != 0)
      fail(pos_, std::to_string(left()) + " bytes follow the " + std::string(c.version >= 3 ? "aliases" : "variables") +
                     ", where the file should end");
    return c;
  }

 private:
  // Smallest records: a variable (1-char name, rank 0, dtype, count) and an alias (two 1-char names).
  static constexpr std::uint64_t kMinVariable = 3 + 1 + 1 + 4;
  static constexpr std::uint64_t kMinAlias = 3 + 3;

  // u16 length (with the NUL), the bytes, the NUL.
  std::string string(const char* what) {
    const std::uint64_t at = pos_;
    const std::uint64_t len = read_le(2, what);
    if (len == 0) fail(at, std::string(what) + ctx_ + " has length 0: a string's length counts its terminating NUL");
    const auto* p = reinterpret_cast<const char*>(take(len, what));
    if (p[len - 1] != '\0')
      fail(at + 2 + len - 1, std::string(what) + ctx_ + " does not end with a NUL byte where its length (" +
                                 std::to_string(len) + ") says it should");
    return std::string(p, static_cast<std::size_t>(len - 1));
  }

  void read_variable(ct2_contents& c, std::uint64_t i) {
    ct2_variable v;
    v.record = pos_;
    ctx_ = " of variable " + std::to_string(i);
    v.name = string("a variable name");
    ctx_ = " of variable '" + v.name + "'";
    if (c.index.count(v.name)) fail(v.record, "duplicate variable name '" + v.name + "'");
    const std::uint64_t rank_at = pos_;
    const std::uint64_t rank = read_le(1, "a rank");
    if (rank > 4)
      fail(rank_at, "variable '" + v.name + "' has rank " + std::to_string(rank) + ", more than tformer's maximum of 4");
    const std::uint64_t dims_at = pos_;
    for (std::uint64_t d = 0; d < rank; ++d) v.shape.push_back(static_cast<std::int64_t>(read_le(4, "a dimension")));
    std::int64_t numel = 0;  // each extent < 2^32, at most 4 of them: check the product
    if (!tformer::detail::nonzero_extent_product(v.shape.data(), v.shape.data() + v.shape.size(), 1, numel))
      fail(dims_at, "variable '" + v.name + "': its element count overflows INT64_MAX");
    if (std::find(v.shape.begin(), v.shape.end(), 0) != v.shape.end()) numel = 0;
    const std::uint64_t type_at = pos_;
    std::uint64_t expect = 0;
    if (c.version >= 4) {
      const std::uint64_t id = read_le(1, "a dtype id");
      if (id > static_cast<std::uint64_t>(ct2_dtype::bf16))
        fail(type_at, "variable '" + v.name + "' has unknown dtype id " + std::to_string(id) +
                          " (CTranslate2 defines 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16)");
      v.dtype = static_cast<ct2_dtype>(id);
      const std::uint64_t bytes_at = pos_;
      v.bytes = read_le(4, "a byte count");
      expect = static_cast<std::uint64_t>(numel) * ct2_item_size(v.dtype);  // numel < 2^63 / 4 or the check fails
      if (numel > INT64_MAX / 4 || v.bytes != expect)
        fail(bytes_at, "variable '" + v.name + "' (" + std::string(ct2_dtype_name(v.dtype)) + ", shape " + shape_text(v.shape) +
                           ") declares " + std::to_string(v.bytes) + " bytes, but its shape needs " +
                           (numel > INT64_MAX / 4 ? std::string("more than 2^63") : std::to_string(expect)));
    } else {
      const std::uint64_t item = read_le(1, "an item size");
      if (item == 4) v.dtype = ct2_dtype::f32;
      else if (item == 2) v.dtype = ct2_dtype::i16;
      else if (item == 1) v.dtype = ct2_dtype::i8;
      else
        fail(type_at, "variable '" + v.name + "' has item size " + std::to_string(item) +
                          " (binary versions 1 to 3 know 4: float32, 2: int16, 1: int8)");
      const std::uint64_t count_at = pos_;
      const std::uint64_t count = read_le(4, "an element count");
      if (count != static_cast<std::uint64_t>(numel))
        fail(count_at, "variable '" + v.name + "' declares " + std::to_string(count) + " elements, but its shape " +
                           shape_text(v.shape) + " has " + std::to_string(numel));
      v.bytes = count * item;
    }
    v.offset = pos_;
    if (v.bytes > left())
      fail(pos_, "truncated: the file ends (at byte " + std::to_string(size()) + ") inside the data of variable '" + v.name +
                     "', which needs " + std::to_string(v.bytes) + " bytes but " + std::to_string(left()) + " remain");
    pos_ += v.bytes;
    c.index.emplace(v.name, c.variables.size());
    c.variables.push_back(std::move(v));
  }

  static std::string shape_text(const std::vector<std::int64_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }

};

/// @brief Validates the bytes of a model.bin (see the file comment); path names it in messages.
inline ct2_contents parse_ctranslate2(std::span<const std::byte> bytes, const std::string& path) {
  return ct2_parser(bytes, path).parse();
}

// n elements of dtype t at p (any alignment) as floats; integers as their values.
inline void ct2_to_float(ct2_dtype t, const std::byte* p, std::int64_t n, float* out) noexcept {
  for (std::int64_t i = 0; i < n; ++i) {
    switch (t) {
      case ct2_dtype::f32: { std::uint32_t u; std::memcpy(&u, p + 4 * i, 4); out[i] = std::bit_cast<float>(u); break; }
      case ct2_dtype::i8: out[i] = static_cast<float>(static_cast<std::int8_t>(p[i])); break;
      case ct2_dtype::i16: { std::int16_t v; std::memcpy(&v, p + 2 * i, 2); out[i] = static_cast<float>(v); break; }
      case ct2_dtype::i32: { std::int32_t v; std::memcpy(&v, p + 4 * i, 4); out[i] = static_cast<float>(v); break; }
      case ct2_dtype::f16: { tformer::f16 h; std::memcpy(&h, p + 2 * i, 2); convert(&h, out + i, 1); break; }
      case ct2_dtype::bf16: { tformer::bf16 h; std::memcpy(&h, p + 2 * i, 2); convert(&h, out + i, 1); break; }
    }
  }
}

}  // namespace detail

/// @brief A model.bin, validated and mapped. Variables are found by name or by alias.
class ctranslate2_file {
 public:
  /// @brief Maps and validates path; throws io_error naming the file, byte offset and variable.
  explicit ctranslate2_file(const std::filesystem::path& path) : file_(path) {
    c_ = detail::parse_ctranslate2(file_.bytes(), file_.path());
  }

  const std::string& path() const noexcept { return file_.path(); }
  std::uint32_t version() const noexcept { return c_.version; }
  /// @brief The spec's name ("WhisperSpec"; empty in version 1 files) and revision.
  const std::string& spec_name() const noexcept { return c_.spec; }
  std::uint32_t revision() const noexcept { return c_.revision; }
  const std::vector<ct2_variable>& variables() const noexcept { return c_.variables; }
  const std::vector<std::pair<std::string, std::string>>& aliases() const noexcept { return c_.aliases; }

  /// @brief The variable called name, or the one the alias name stands for; nullptr when neither.
  const ct2_variable* find(std::string_view name) const {
    if (const auto it = c_.index.find(name); it != c_.index.end()) return &c_.variables[it->second];
    for (const auto& [alias, target] : c_.aliases)
      if (alias == name) return &c_.variables[c_.index.find(target)->second];
    return nullptr;
  }
  const ct2_variable& at(std::string_view name) const {
    const auto* v = find(name);
    if (!v) throw io_error("tformer: ctranslate2 file '" + path() + "' has no variable '" + std::string(name) + "'");
    return *v;
  }
  std::span<const std::byte> bytes(const ct2_variable& v) const {
    return file_.bytes().subspan(static_cast<std::size_t>(v.offset), static_cast<std::size_t>(v.bytes));
  }

  /// @brief The scale variable of a quantized (int8 / int16) variable, or nullptr.
  const ct2_variable* scale_of(const ct2_variable& v) const {
    if (v.dtype != ct2_dtype::i8 && v.dtype != ct2_dtype::i16) return nullptr;
    return find(v.name + "_scale");
  }

  /// @brief Variable name as floats of its shape: float types converted, integers as values, and
  /// an int8 / int16 weight with a "_scale" variable divided by its scale (one per row of the
  /// weight's first dimension, or one scalar). Throws io_error / shape_error naming the file and
  /// the variable when the scale does not fit.
  tensor<float> load_float(std::string_view name) const {
    const auto& v = at(name);
    tensor<float> out(detail::to_shape(v.shape, path(), v.name));  // [shape...]
    detail::ct2_to_float(v.dtype, bytes(v).data(), v.numel(), out.data());
    if (const auto* s = scale_of(v)) {
      const std::int64_t rows = v.shape.empty() ? 1 : v.shape[0], n = s->numel();
      if (!(n == 1 || (s->shape.size() == 1 && n == rows)) || s->dtype == ct2_dtype::i8 || s->dtype == ct2_dtype::i16 ||
          s->dtype == ct2_dtype::i32)
        throw io_error("tformer: ctranslate2 file '" + path() + "': scale '" + s->name + "' (" +
                       std::string(ct2_dtype_name(s->dtype)) + ", " + std::to_string(n) + " values, at byte " +
                       std::to_string(s->record) + ") must be one float per row of '" + v.name + "' (" +
                       std::to_string(rows) + ") or one float");
      std::vector<float> scale(static_cast<std::size_t>(n));  // [rows] or [1]
      detail::ct2_to_float(s->dtype, bytes(*s).data(), n, scale.data());
      const std::int64_t per_row = rows > 0 ? v.numel() / rows : 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const float k = scale[static_cast<std::size_t>(n == 1 ? 0 : r)];
        for (std::int64_t j = 0; j < per_row; ++j) out.data()[r * per_row + j] /= k;
      }
    }
    return out;
  }

  /// @brief A scalar variable (rank 0, or one element) as an integer, e.g. "encoder/num_heads".
  std::int64_t scalar_int(std::string_view name) const {
    const auto& v = at(name);
    if (v.numel() != 1)
      throw io_error("tformer: ctranslate2 file '" + path() + "': variable '" + v.name + "' (at byte " +
                     std::to_string(v.record) + ") has " + std::to_string(v.numel()) + " elements, not one");
    float x = 0;
    std::int64_t i = 0;
    const auto* p = bytes(v).data();
    switch (v.dtype) {
      case ct2_dtype::i8: i = static_cast<std::int8_t>(p[0]); break;
      case ct2_dtype::i16: { std::int16_t s; std::memcpy(&s, p, 2); i = s; break; }
      case ct2_dtype::i32: { std::int32_t s; std::memcpy(&s, p, 4); i = s; break; }
      default:
        detail::ct2_to_float(v.dtype, p, 1, &x);
        if (!(std::fabs(x) < 0x1p62f) || x != std::trunc(x))
          throw io_error("tformer: ctranslate2 file '" + path() + "': variable '" + v.name + "' (at byte " +
                         std::to_string(v.record) + ") holds " + std::to_string(x) + ", not an integer");
        i = static_cast<std::int64_t>(x);
    }
    return i;
  }

 private:
  mapped_file file_;
  detail::ct2_contents c_;
};

/// @brief ctranslate2_file seen by load_checkpoint: float32 / float16 / bfloat16 variables are in
/// the formats f32 / f16 / bf16 (a parameter of that format takes their bytes as they are);
/// others (integers; int8 weights with their scale, read dequantized) are read as float. Scales
/// of quantized variables are part of those variables and not listed; aliases are listed.
class ctranslate2_source {
 public:
  explicit ctranslate2_source(const ctranslate2_file& f) : f_(&f) {}
  std::string path() const { return f_->path(); }
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> names;
    for (const auto& v : f_->variables()) {
      const auto n = v.name.size();
      if (n > 6 && v.name.compare(n - 6, 6, "_scale") == 0)
        if (const auto* q = f_->find(std::string_view(v.name).substr(0, n - 6)); q && f_->scale_of(*q)) continue;
      names.push_back(v.name);
    }
    for (const auto& a : f_->aliases()) names.push_back(a.first);
    return names;
  }
  std::optional<checkpoint_tensor> find_tensor(const std::string& name) const {
    const auto* v = f_->find(name);
    if (!v) return std::nullopt;
    checkpoint_tensor t{name, v->shape, {}, f_->bytes(*v)};
    if (v->dtype == ct2_dtype::f32) t.format = "f32";
    if (v->dtype == ct2_dtype::f16) t.format = "f16";
    if (v->dtype == ct2_dtype::bf16) t.format = "bf16";
    return t;
  }
  tensor<float> read_float(const std::string& name) const { return f_->load_float(name); }

 private:
  const ctranslate2_file* f_;
};

static_assert(checkpoint_source<ctranslate2_source>);

/// @brief load_checkpoint from a CTranslate2 model.bin.
template <class M>
std::int64_t load_ctranslate2(M& m, const ctranslate2_file& f, const name_map& map) {
  return load_checkpoint(m, ctranslate2_source(f), map);
}

}  // namespace tformer::io
