// GGUF (versions 2 and 3) reader and writer: llama.cpp's single-file format of typed metadata and
// ggml tensors. Layout, all little endian:
//
//   "GGUF"  u32 version  u64 tensor_count  u64 kv_count              (v2 and v3: 64-bit counts)
//   kv_count x   { string key, u32 value_type, value }                (string = u64 length + bytes)
//   tensor_count x { string name, u32 n_dims <= 4, i64 ne[n_dims], u32 ggml_type, u64 offset }
//   zero padding to `alignment` (the u32 `general.alignment`, default 32, a power of two)
//   data: tensor i at data start + offset_i; offset_i is the sum of the sizes of the tensors
//   before it, each padded to the alignment (llama.cpp's and gguf-py's layout).
//
// ne[0] is the contiguous dimension: a tensor is rows of ne[0] weights, in blocks of the type's
// block size. tformer shows shapes outermost first (shape = reversed ne), so a [rows, cols] matrix
// is stored with ne = {cols, rows}.
//
// Opening a file checks every rule and throws io_error naming the file, the byte offset and the
// key or tensor: a truncated file (the offset where the read fell off), a bad magic, a version
// other than 2 or 3 (1 and > 3 named; a byte-swapped version called big endian), negative counts
// or counts the remaining bytes cannot hold, a string running past the end of the file,
// duplicate keys, unknown value types, a BOOL byte other than 0 or 1, arrays whose length cannot
// fit in the remaining bytes or nested deeper than max_array_depth, a `general.alignment` that is
// not a UINT32 power of two, duplicate tensor names, n_dims > 4, negative extents, element or
// byte counts past INT64_MAX (counting the nonzero extents, as tformer::shape does), unknown or
// removed ggml type ids, ne[0] not a multiple of the type's block size, offsets other than the
// running padded sum, and tensor data running past the end of the file. Nothing is allocated
// from a count before the bytes it claims are known to exist. Bytes after the last tensor (its
// padding, or anything else) are neither required nor rejected, as in llama.cpp.
//
// Metadata keys and tensor names are not checked for UTF-8, and names are not limited to
// llama.cpp's 63 bytes (GGML_MAX_NAME): gguf-py reads such files, and so does tformer.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/memory.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../quant/formats.hpp"
#include "../quant/matrix.hpp"
#include "byte_reader.hpp"
#include "mapped_file.hpp"

namespace tformer::io {

// ---------------------------------------------------------------------------------------------
// ggml tensor types

/// @brief One ggml tensor type: its name (as gguf-py spells it), weights per block, bytes per block.
struct ggml_type_traits {
  std::string_view name;
  std::int64_t block_size = 0;
  std::int64_t block_bytes = 0;  // 0: an id ggml has removed
};

/// @brief Every ggml type id up to the newest gguf-py (0.19) knows, indexed by id. Removed ids
/// keep their old name and a block_bytes of 0: files that use them are rejected.
inline constexpr ggml_type_traits ggml_types[] = {
    {"F32", 1, 4},        {"F16", 1, 2},         {"Q4_0", 32, 18},      {"Q4_1", 32, 20},
    {"Q4_2", 32, 0},      {"Q4_3", 32, 0},       {"Q5_0", 32, 22},      {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 40},      {"Q2_K", 256, 84},     {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},    {"Q6_K", 256, 210},    {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74},   {"IQ3_XXS", 256, 98},  {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110},   {"IQ2_S", 256, 82},    {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},         {"I32", 1, 4},         {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},    {"BF16", 1, 2},        {"Q4_0_4_4", 32, 0},
    {"Q4_0_4_8", 32, 0},  {"Q4_0_8_8", 32, 0},   {"TQ1_0", 256, 54},    {"TQ2_0", 256, 66},
    {"IQ4_NL_4_4", 32, 0}, {"IQ4_NL_4_8", 32, 0}, {"IQ4_NL_8_8", 32, 0}, {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},
};

/// @brief The traits of ggml type id, or nullptr when id is unknown or removed.
inline const ggml_type_traits* find_ggml_type(std::uint32_t id) noexcept {
  if (id >= std::size(ggml_types) || ggml_types[id].block_bytes == 0) return nullptr;
  return &ggml_types[id];
}

// ---------------------------------------------------------------------------------------------
// metadata values

/// @brief GGUF metadata value types; the numbers are the file's.
enum class gguf_type : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

/// @brief "UINT8", ..., "FLOAT64" (the specification's names); "unknown" past FLOAT64.
constexpr std::string_view gguf_type_name(gguf_type t) noexcept {
  constexpr std::string_view names[] = {"UINT8",  "INT8",   "UINT16", "INT16", "UINT32", "INT32",  "FLOAT32",
                                        "BOOL",   "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < std::size(names) ? names[i] : std::string_view("unknown");
}

struct gguf_value;

/// @brief An array value: the type of its elements and the elements (arrays may nest).
struct gguf_array {
  gguf_type type = gguf_type::u8;
  std::vector<gguf_value> items;
  friend bool operator==(const gguf_array&, const gguf_array&) = default;
};

namespace detail {
template <class T>
inline constexpr bool is_vector = false;
template <class U, class A>
inline constexpr bool is_vector<std::vector<U, A>> = true;
template <class T>
inline constexpr bool always_false = false;
template <class T>
inline constexpr bool is_value_vector = false;  // std::vector<gguf_value>

// The GGUF type a C++ value is written as (see gguf_value::from).
template <class T>
constexpr gguf_type gguf_type_for() {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    return gguf_type::boolean;
  } else if constexpr (std::is_integral_v<U>) {
    static_assert(sizeof(U) <= 8, "GGUF integers have at most 64 bits");
    constexpr bool s = std::is_signed_v<U>;
    if constexpr (sizeof(U) == 1) return s ? gguf_type::i8 : gguf_type::u8;
    if constexpr (sizeof(U) == 2) return s ? gguf_type::i16 : gguf_type::u16;
    if constexpr (sizeof(U) == 4) return s ? gguf_type::i32 : gguf_type::u32;
    if constexpr (sizeof(U) == 8) return s ? gguf_type::i64 : gguf_type::u64;
  } else if constexpr (std::is_same_v<U, float>) {
    return gguf_type::f32;
  } else if constexpr (std::is_same_v<U, double>) {
    return gguf_type::f64;
  } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
    return gguf_type::string;
  } else if constexpr (is_vector<U>) {
    return gguf_type::array;
  } else {
    static_assert(always_false<U>, "no GGUF value type for this C++ type");
  }
}
}  // namespace detail

/// @brief A typed metadata value. Unsigned integers (UINT8..UINT64) hold a std::uint64_t, signed
/// ones a std::int64_t, FLOAT32 and FLOAT64 a double (exact for both), BOOL a bool, STRING a
/// std::string, ARRAY a gguf_array.
struct gguf_value {
  gguf_type type = gguf_type::u8;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, gguf_array> data = std::uint64_t{0};

  /// @brief The value of a C++ value, typed by its C++ type: bool -> BOOL, integers by size and
  /// sign (int -> INT32, std::uint64_t -> UINT64, ...), float -> FLOAT32, double -> FLOAT64,
  /// strings -> STRING, std::vector<T> -> ARRAY of T's type (nested vectors nest; an empty vector
  /// keeps its element type; a std::vector<gguf_value> takes its first item's type and must not
  /// be empty or mixed). A gguf_value is returned as it is.
  template <class T>
  static gguf_value from(const T& v) {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, gguf_value>) {
      return v;
    } else if constexpr (detail::is_value_vector<U>) {
      if (v.empty()) throw value_error("tformer: gguf_value::from: an empty vector of gguf_value has no element type");
      return make_array(v.front().type, v);
    } else {
      constexpr gguf_type t = detail::gguf_type_for<U>();
      gguf_value out;
      out.type = t;
      if constexpr (t == gguf_type::boolean)
        out.data = static_cast<bool>(v);
      else if constexpr (t == gguf_type::f32 || t == gguf_type::f64)
        out.data = static_cast<double>(v);
      else if constexpr (t == gguf_type::string)
        out.data = std::string(std::string_view(v));
      else if constexpr (t == gguf_type::array) {
        gguf_array a;
        a.type = detail::gguf_type_for<typename U::value_type>();
        a.items.reserve(v.size());
        for (const auto& x : v) a.items.push_back(from(static_cast<typename U::value_type>(x)));
        out.data = std::move(a);
      } else if constexpr (std::is_signed_v<U>)
        out.data = static_cast<std::int64_t>(v);
      else
        out.data = static_cast<std::uint64_t>(v);
      return out;
    }
  }
  /// @brief An ARRAY of element type `element`; throws value_error when an item has another type.
  static gguf_value make_array(gguf_type element, std::vector<gguf_value> items) {
    for (const auto& x : items)
      if (x.type != element)
        throw value_error("tformer: gguf array of " + std::string(gguf_type_name(element)) + " given an item of type " +
                          std::string(gguf_type_name(x.type)));
    gguf_value out;
    out.type = gguf_type::array;
    out.data = gguf_array{element, std::move(items)};
    return out;
  }

  bool is_integer() const noexcept {
    return type == gguf_type::u8 || type == gguf_type::i8 || type == gguf_type::u16 || type == gguf_type::i16 ||
           type == gguf_type::u32 || type == gguf_type::i32 || type == gguf_type::u64 || type == gguf_type::i64;
  }
  bool is_float() const noexcept { return type == gguf_type::f32 || type == gguf_type::f64; }
  /// @brief The array, or nullptr when this is not an ARRAY.
  const gguf_array* array() const noexcept { return std::get_if<gguf_array>(&data); }
  /// @brief "UINT32", "ARRAY of STRING", "ARRAY of ARRAY", ... (for messages).
  std::string type_string() const {
    std::string s(gguf_type_name(type));
    if (const auto* a = array()) s += " of " + std::string(gguf_type_name(a->type));
    return s;
  }

  friend bool operator==(const gguf_value&, const gguf_value&) = default;
};

namespace detail {
template <class A>
inline constexpr bool is_value_vector<std::vector<gguf_value, A>> = true;
}  // namespace detail

/// @brief One metadata entry.
struct gguf_kv {
  std::string key;
  gguf_value value;
};

/// @brief One tensor's entry in a GGUF file.
struct gguf_tensor {
  std::string name;
  std::vector<std::int64_t> shape;  // outermost first (reversed ne); shape.back() = ne[0] is contiguous
  std::uint32_t ggml_type = 0;
  std::string type_name;            // "F32", "Q8_0", ...
  std::uint64_t offset = 0;         // absolute file offset of the data
  std::uint64_t bytes = 0;          // size of the data

  /// @brief ne[0], the contiguous extent (1 for a rank-0 tensor).
  std::int64_t cols() const noexcept { return shape.empty() ? 1 : shape.back(); }
  /// @brief The product of the outer extents (1 for rank 0 or 1; 0 when one of them is 0).
  std::int64_t rows() const noexcept {
    std::int64_t r = 1;
    for (std::size_t i = 0; i + 1 < shape.size(); ++i) {
      if (shape[i] == 0) return 0;
      r *= shape[i];  // a sub-product of the nonzero extents: fits (checked when the file was read)
    }
    return r;
  }
};

namespace detail {

/// Deepest nesting of arrays a file may hold (arrays of arrays of ...): bounds the reader's recursion.
inline constexpr int gguf_max_array_depth = 16;

/// A metadata value as an int64 (any integer type in range), or nothing.
inline std::optional<std::int64_t> gguf_as_int(const gguf_value& v) noexcept {
  if (const auto* s = std::get_if<std::int64_t>(&v.data)) return *s;
  if (const auto* u = std::get_if<std::uint64_t>(&v.data))
    if (*u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(*u);
  return std::nullopt;
}
inline std::optional<double> gguf_as_float(const gguf_value& v) noexcept {
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  return std::nullopt;
}

inline std::uint64_t load_le(const std::byte* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}
inline void put_le(std::string& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline std::uint64_t pad_to(std::uint64_t x, std::uint64_t alignment) noexcept {
  return (x + alignment - 1) / alignment * alignment;
}
inline std::string shape_string(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Bytes of a tensor of ne (innermost first) in type t, through nonzero extents (see core/shape.hpp):
// false when the byte count passes INT64_MAX. ne[0] must be a multiple of the block size.
inline bool gguf_tensor_bytes(const std::int64_t* ne, std::size_t n, const ggml_type_traits& t, std::uint64_t& out) {
  std::int64_t blocks[4] = {1, 1, 1, 1};
  bool zero = false;
  for (std::size_t j = 0; j < n; ++j) {
    blocks[j] = j == 0 ? ne[0] / t.block_size : ne[j];
    zero = zero || ne[j] == 0;
  }
  std::int64_t bytes = 0;
  if (!tformer::detail::nonzero_extent_product(blocks, blocks + n, t.block_bytes, bytes)) return false;
  out = zero ? 0 : static_cast<std::uint64_t>(bytes);
  return true;
}

/// What a GGUF file holds once validated (everything but the data bytes).
struct gguf_contents {
  std::uint32_t version = 0;
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;  // file offset of the data section
  std::vector<gguf_kv> metadata;
  std::vector<std::uint64_t> kv_offsets;  // file offset of each key
  std::vector<gguf_tensor> tensors;
  std::map<std::string, std::size_t, std::less<>> kv_index, tensor_index;
};

// The validating parser over the file's bytes; path names the file in messages.
class gguf_parser : byte_reader {
 public:
  gguf_parser(std::span<const std::byte> bytes, const std::string& path) : byte_reader(bytes, "gguf file '" + path + "'") {}

  gguf_contents parse() {
    gguf_contents c;
    const std::byte* magic = take(4, "the magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) {
      std::string got;
      for (int i = 0; i < 4; ++i) {
        const auto b = static_cast<unsigned>(magic[i]);
        if (i) got += ' ';
        got += hex(b, 2);  // (not " " + hex(...): g++ 12 reports a false -Wstringop-overflow on it)
      }
      fail(0, "bad magic: expected \"GGUF\" (47 47 55 46), found " + got);
    }
    c.version = static_cast<std::uint32_t>(read_le(4, "the version"));
    if (c.version == 1) fail(4, "GGUF version 1 is not supported (tformer reads versions 2 and 3)");
    if (c.version != 2 && c.version != 3) {
      if (c.version != 0 && (c.version & 0xFFFF) == 0)
        fail(4, "version reads " + hex(c.version, 8) + ": a big-endian file? tformer reads little-endian GGUF only");
      fail(4, "unsupported GGUF version " + std::to_string(c.version) + " (tformer reads versions 2 and 3)");
    }
    const auto n_tensors_raw = static_cast<std::int64_t>(read_le(8, "the tensor count"));
    const auto n_kv_raw = static_cast<std::int64_t>(read_le(8, "the metadata count"));
    const std::uint64_t n_tensors = count(n_tensors_raw, 8, kMinTensorInfo, "tensor");
    const std::uint64_t n_kv = count(n_kv_raw, 16, kMinKv, "metadata");

    for (std::uint64_t i = 0; i < n_kv; ++i) read_kv(c, i);
    find_alignment(c);
    for (std::uint64_t i = 0; i < n_tensors; ++i) read_tensor_info(c, i);
    ctx_.clear();

    // Data: each tensor's offset is the padded sum of those before it, and its bytes are in the file.
    c.data_offset = pad_to(pos_, c.alignment);
    std::uint64_t expect = 0;
    for (std::size_t i = 0; i < c.tensors.size(); ++i) {
      auto& t = c.tensors[i];
      const std::uint64_t rel = t.offset;
      if (rel != expect)
        fail(offset_fields_[i], "tensor '" + t.name + "': data offset " + std::to_string(rel) + " should be " +
                                    std::to_string(expect) + (i == 0 ? " (the first tensor's data starts the data section)"
                                                                     : ", the end of the previous tensor's data padded to the "
                                                                       "alignment " + std::to_string(c.alignment)));
      t.offset = c.data_offset + rel;
      if (t.offset > size() || t.bytes > size() - t.offset)
        fail(std::min<std::uint64_t>(t.offset, size()),
             "tensor '" + t.name + "': its " + std::to_string(t.bytes) + " bytes of data at [" + std::to_string(t.offset) + ", " +
                 std::to_string(t.offset + t.bytes) + ") run past the end of the file (" + std::to_string(size()) + " bytes)");
      expect = rel + pad_to(t.bytes, c.alignment);
    }
    return c;
  }

 private:
  // Smallest encodings: a kv (empty key, type, one byte) and a tensor info (empty name, n_dims 0).
  static constexpr std::uint64_t kMinKv = 8 + 4 + 1;
  static constexpr std::uint64_t kMinTensorInfo = 8 + 4 + 4 + 8;

  static std::string hex(std::uint64_t v, int digits) {
    static constexpr char d[] = "0123456789ABCDEF";
    std::string s(static_cast<std::size_t>(digits), '0');
    for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = d[v & 0xF];
    return digits > 2 ? "0x" + s : s;
  }

  std::string string(const char* what) {
    const std::uint64_t at = pos_;
    const std::uint64_t len = read_le(8, what);
    if (len > left())
      fail(at, std::string(what) + ctx_ + ": a string of " + std::to_string(len) +
                   " bytes runs past the end of the file (" + std::to_string(left()) + " bytes remain)");
    const auto* p = reinterpret_cast<const char*>(take(len, what));
    return std::string(p, static_cast<std::size_t>(len));
  }

  // A count of header records (read as i64 at byte at): non-negative, and no more records than
  // the bytes after the header can hold.
  std::uint64_t count(std::int64_t n, std::uint64_t at, std::uint64_t min_bytes, const char* what) const {
    if (n < 0) fail(at, std::string(what) + " count " + std::to_string(n) + " is negative");
    const std::uint64_t rest = left();  // both counts are read: the rest holds every record
    if (static_cast<std::uint64_t>(n) > rest / min_bytes)
      fail(at, std::string(what) + " count " + std::to_string(n) + " cannot fit in the " + std::to_string(rest) +
                   " bytes after the header (each record takes at least " + std::to_string(min_bytes) + ")");
    return static_cast<std::uint64_t>(n);
  }

  static std::uint64_t min_value_bytes(gguf_type t) noexcept {
    switch (t) {
      case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean: return 1;
      case gguf_type::u16: case gguf_type::i16: return 2;
      case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
      case gguf_type::string: case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: return 8;
      case gguf_type::array: return 12;
    }
    return 1;
  }

  gguf_type value_type(const char* what) {
    const std::uint64_t at = pos_;
    const auto raw = static_cast<std::uint32_t>(read_le(4, what));
    if (raw > static_cast<std::uint32_t>(gguf_type::f64))
      fail(at, std::string("unknown value type ") + std::to_string(raw) + ctx_ + " (GGUF defines 0 to 12)");
    return static_cast<gguf_type>(raw);
  }

  gguf_value value(gguf_type t, int depth) {
    gguf_value v;
    v.type = t;
    switch (t) {
      case gguf_type::u8: v.data = read_le(1, "a UINT8 value"); break;
      case gguf_type::u16: v.data = read_le(2, "a UINT16 value"); break;
      case gguf_type::u32: v.data = read_le(4, "a UINT32 value"); break;
      case gguf_type::u64: v.data = read_le(8, "a UINT64 value"); break;
      case gguf_type::i8: v.data = static_cast<std::int64_t>(static_cast<std::int8_t>(read_le(1, "an INT8 value"))); break;
      case gguf_type::i16: v.data = static_cast<std::int64_t>(static_cast<std::int16_t>(read_le(2, "an INT16 value"))); break;
      case gguf_type::i32: v.data = static_cast<std::int64_t>(static_cast<std::int32_t>(read_le(4, "an INT32 value"))); break;
      case gguf_type::i64: v.data = static_cast<std::int64_t>(read_le(8, "an INT64 value")); break;
      case gguf_type::f32:
        v.data = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(read_le(4, "a FLOAT32 value"))));
        break;
      case gguf_type::f64: v.data = std::bit_cast<double>(read_le(8, "a FLOAT64 value")); break;
      case gguf_type::boolean: {
        const std::uint64_t at = pos_;
        const std::uint64_t b = read_le(1, "a BOOL value");
        if (b > 1) fail(at, "BOOL value " + std::to_string(b) + ctx_ + " is neither 0 nor 1");
        v.data = b == 1;
        break;
      }
      case gguf_type::string: v.data = string("a STRING value"); break;
      case gguf_type::array: {
        const std::uint64_t type_at = pos_;
        gguf_array a;
        a.type = value_type("an array's element type");
        if (a.type == gguf_type::array && depth + 1 >= gguf_max_array_depth)
          fail(type_at, "arrays" + ctx_ + " nest deeper than " + std::to_string(gguf_max_array_depth) + " levels");
        const std::uint64_t count_at = pos_;
        const std::uint64_t n = read_le(8, "an array's length");
        const std::uint64_t each = min_value_bytes(a.type);
        if (n > left() / each)
          fail(count_at, "an array" + ctx_ + " of " + std::to_string(n) + " " + std::string(gguf_type_name(a.type)) +
                             " cannot fit in the " + std::to_string(left()) + " remaining bytes (each takes at least " +
                             std::to_string(each) + ")");
        a.items.reserve(static_cast<std::size_t>(n));  // at most left() / each: backed by the file's bytes
        for (std::uint64_t i = 0; i < n; ++i) a.items.push_back(value(a.type, depth + 1));
        v.data = std::move(a);
        break;
      }
    }
    return v;
  }

  void read_kv(gguf_contents& c, std::uint64_t i) {
    const std::uint64_t at = pos_;
    ctx_ = " of metadata entry " + std::to_string(i);
    std::string key = string("a metadata key");
    ctx_ = " of key '" + key + "'";
    if (const auto it = c.kv_index.find(key); it != c.kv_index.end())
      fail(at, "duplicate key '" + key + "' (first at byte " + std::to_string(c.kv_offsets[it->second]) + ")");
    const gguf_type t = value_type("a value type");
    gguf_value v = value(t, 0);
    c.kv_index.emplace(key, c.metadata.size());
    c.kv_offsets.push_back(at);
    c.metadata.push_back({std::move(key), std::move(v)});
  }

  void find_alignment(gguf_contents& c) {
    const auto it = c.kv_index.find("general.alignment");
    if (it == c.kv_index.end()) return;
    const auto& v = c.metadata[it->second].value;
    const std::uint64_t at = c.kv_offsets[it->second];
    if (v.type != gguf_type::u32)
      fail(at, "key 'general.alignment' must be a UINT32, found " + v.type_string());
    const std::uint64_t a = std::get<std::uint64_t>(v.data);
    if (a == 0 || (a & (a - 1)) != 0)
      fail(at, "key 'general.alignment': alignment " + std::to_string(a) + " is not a power of two");
    c.alignment = a;
  }

  void read_tensor_info(gguf_contents& c, std::uint64_t i) {
    const std::uint64_t at = pos_;
    ctx_ = " of tensor info " + std::to_string(i);
    gguf_tensor t;
    t.name = string("a tensor name");
    ctx_ = " of tensor '" + t.name + "'";
    const std::string who = "tensor '" + t.name + "': ";
    if (const auto it = c.tensor_index.find(t.name); it != c.tensor_index.end())
      fail(at, "duplicate tensor name '" + t.name + "' (first at byte " + std::to_string(info_offsets_[it->second]) + ")");

    const std::uint64_t dims_at = pos_;
    const auto n_dims = static_cast<std::uint32_t>(read_le(4, "a tensor's dimension count"));
    if (n_dims > 4)
      fail(dims_at, who + "n_dims " + std::to_string(n_dims) + " exceeds GGML_MAX_DIMS (4)");
    const std::uint64_t ne_at = pos_;
    std::int64_t ne[4] = {1, 1, 1, 1};
    for (std::uint32_t j = 0; j < n_dims; ++j) {
      ne[j] = static_cast<std::int64_t>(read_le(8, "a tensor's extent"));
      if (ne[j] < 0) fail(ne_at + 8 * j, who + "extent ne[" + std::to_string(j) + "] = " + std::to_string(ne[j]) + " is negative");
    }
    for (std::uint32_t j = 0; j < n_dims; ++j) t.shape.push_back(ne[n_dims - 1 - j]);
    std::int64_t elements = 0;
    if (!tformer::detail::nonzero_extent_product(ne, ne + n_dims, 1, elements))
      fail(ne_at, who + "shape " + shape_string(t.shape) +
                      " has too many elements: the product of its nonzero extents overflows INT64_MAX");

    const std::uint64_t type_at = pos_;
    t.ggml_type = static_cast<std::uint32_t>(read_le(4, "a tensor's type"));
    const ggml_type_traits* traits = find_ggml_type(t.ggml_type);
    if (!traits) {
      if (t.ggml_type < std::size(ggml_types))
        fail(type_at, who + "ggml type " + std::to_string(t.ggml_type) + " (" + std::string(ggml_types[t.ggml_type].name) +
                          ") has been removed from ggml");
      fail(type_at, who + "unknown ggml type " + std::to_string(t.ggml_type));
    }
    t.type_name = std::string(traits->name);
    if (ne[0] % traits->block_size != 0)
      fail(ne_at, who + "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of " + t.type_name + "'s block size " +
                      std::to_string(traits->block_size));
    if (!gguf_tensor_bytes(ne, n_dims, *traits, t.bytes))
      fail(ne_at, who + "shape " + shape_string(t.shape) + " of " + t.type_name +
                      " overflows INT64_MAX bytes (the product of its nonzero extents in blocks of " +
                      std::to_string(traits->block_bytes) + " bytes)");
    offset_fields_.push_back(pos_);
    t.offset = read_le(8, "a tensor's data offset");  // relative until parse() checks it

    c.tensor_index.emplace(t.name, c.tensors.size());
    info_offsets_.push_back(at);
    c.tensors.push_back(std::move(t));
  }

  std::vector<std::uint64_t> info_offsets_, offset_fields_;  // per tensor: its info, its offset field
};

/// @brief Validates the GGUF bytes (named path in messages) and returns what they hold.
inline gguf_contents parse_gguf(std::span<const std::byte> bytes, const std::string& path) {
  return gguf_parser(bytes, path).parse();
}

/// @brief rows() x cols() floats of t, whose data starts at src, into out; false (writing
/// nothing) when no known format stores t's ggml type.
inline bool dequantize_gguf(const gguf_tensor& t, const std::byte* src, float* out) {
  return quant::visit_ggml_type(t.ggml_type, [&](auto fmt) {
    using F = decltype(fmt);
    const std::int64_t rows = t.rows(), cols = t.cols(), rb = quant::row_bytes<F>(cols);
    if (rows == 0 || cols == 0) return;  // [2^60, 0] holds nothing: no loop over its rows
    // Formats of plain elements read them as such: bounce a row whose start is misaligned for its
    // element (a file with general.alignment 1). Block formats read unaligned bytes by design.
    aligned_buffer<std::byte> bounce;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::byte* row = src + r * rb;
      if constexpr (quant::element_format<F>) {
        if (reinterpret_cast<std::uintptr_t>(row) % alignof(typename F::element) != 0) {
          if (!bounce) bounce = allocate_aligned<std::byte>(static_cast<std::size_t>(rb));
          std::memcpy(bounce.get(), row, static_cast<std::size_t>(rb));
          row = bounce.get();
        }
      }
      F::dequantize_row(row, out + r * cols, cols);
    }
  });
}

// The ggml type of a plain element type, or -1.
template <class T>
constexpr long long ggml_type_of_element() {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, float>) return 0;
  else if constexpr (std::is_same_v<U, f16>) return 1;
  else if constexpr (std::is_same_v<U, std::int8_t>) return 24;
  else if constexpr (std::is_same_v<U, std::int32_t>) return 26;
  else if constexpr (std::is_same_v<U, bf16>) return 30;
  else return -1;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// reader

/// @brief A validated GGUF file (v2 or v3), memory-mapped; metadata by key, tensors by name.
class gguf_file {
 public:
  /// @brief Maps and validates path; throws io_error on any violation of the format.
  explicit gguf_file(const std::filesystem::path& path) : file_(path), c_(detail::parse_gguf(file_.bytes(), file_.path())) {}

  const std::string& path() const noexcept { return file_.path(); }
  /// @brief 2 or 3.
  std::uint32_t version() const noexcept { return c_.version; }
  /// @brief general.alignment, or 32.
  std::uint64_t alignment() const noexcept { return c_.alignment; }
  /// @brief File offset of the data section.
  std::uint64_t data_offset() const noexcept { return c_.data_offset; }

  /// @brief Metadata in file order.
  const std::vector<gguf_kv>& metadata() const noexcept { return c_.metadata; }
  /// @brief The value of key, or nullptr.
  const gguf_value* find_metadata(std::string_view key) const noexcept {
    const auto it = c_.kv_index.find(key);
    return it == c_.kv_index.end() ? nullptr : &c_.metadata[it->second].value;
  }
  /// @brief The STRING value of key (io_error naming the file and key when missing or not a STRING).
  const std::string& get_string(std::string_view key) const {
    const auto& v = need(key, gguf_type::string, "a STRING");
    return std::get<std::string>(v.data);
  }
  /// @brief The value of key, of any integer type, as int64 (io_error when missing, not an
  /// integer, or a UINT64 past INT64_MAX).
  std::int64_t get_int(std::string_view key) const {
    const auto& v = need(key, std::nullopt, "an integer");
    if (!v.is_integer()) wrong(key, v, "an integer");
    const auto i = detail::gguf_as_int(v);
    if (!i) fail_key(key, "value " + std::to_string(std::get<std::uint64_t>(v.data)) + " does not fit in int64");
    return *i;
  }
  /// @brief The FLOAT32 or FLOAT64 value of key.
  double get_float(std::string_view key) const {
    const auto& v = need(key, std::nullopt, "a FLOAT32 or FLOAT64");
    if (!v.is_float()) wrong(key, v, "a FLOAT32 or FLOAT64");
    return std::get<double>(v.data);
  }
  bool get_bool(std::string_view key) const { return std::get<bool>(need(key, gguf_type::boolean, "a BOOL").data); }
  /// @brief An ARRAY of STRING.
  std::vector<std::string> get_strings(std::string_view key) const {
    std::vector<std::string> out;
    const auto& a = need_array(key, "an ARRAY of STRING", [](const gguf_value& x) { return x.type == gguf_type::string; });
    out.reserve(a.items.size());
    for (const auto& x : a.items) out.push_back(std::get<std::string>(x.data));
    return out;
  }
  /// @brief An ARRAY of any integer type, as int64 (every element must fit).
  std::vector<std::int64_t> get_ints(std::string_view key) const {
    std::vector<std::int64_t> out;
    const auto& a = need_array(key, "an ARRAY of integers", [](const gguf_value& x) { return x.is_integer(); });
    out.reserve(a.items.size());
    for (std::size_t i = 0; i < a.items.size(); ++i) {
      const auto v = detail::gguf_as_int(a.items[i]);
      if (!v)
        fail_key(key, "element " + std::to_string(i) + " = " + std::to_string(std::get<std::uint64_t>(a.items[i].data)) +
                          " does not fit in int64");
      out.push_back(*v);
    }
    return out;
  }
  /// @brief An ARRAY of FLOAT32 or FLOAT64.
  std::vector<double> get_floats(std::string_view key) const {
    std::vector<double> out;
    const auto& a = need_array(key, "an ARRAY of FLOAT32 or FLOAT64", [](const gguf_value& x) { return x.is_float(); });
    out.reserve(a.items.size());
    for (const auto& x : a.items) out.push_back(std::get<double>(x.data));
    return out;
  }

  /// @brief Tensors in file order (ascending offsets).
  const std::vector<gguf_tensor>& tensors() const noexcept { return c_.tensors; }
  /// @brief The tensor called name, or nullptr.
  const gguf_tensor* find(std::string_view name) const noexcept {
    const auto it = c_.tensor_index.find(name);
    return it == c_.tensor_index.end() ? nullptr : &c_.tensors[it->second];
  }
  /// @brief The tensor called name; io_error naming the file when it is absent.
  const gguf_tensor& at(std::string_view name) const {
    if (const auto* t = find(name)) return *t;
    throw io_error("tformer: gguf file '" + path() + "' has no tensor '" + std::string(name) + "'");
  }
  /// @brief The data of t, a tensor of this file, as stored.
  std::span<const std::byte> bytes(const gguf_tensor& t) const noexcept {
    return file_.bytes().subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.bytes));
  }

  /// @brief Tensor name as floats of its shape, dequantized through the known format of its ggml
  /// type; dtype_error "unsupported type Q5_K for tensor '...'" when tformer has none.
  tensor<float> load_float(std::string_view name) const {
    const auto& t = at(name);
    tensor<float> out;
    const bool ok = quant::visit_ggml_type(t.ggml_type, [&](auto) {
      out = tensor<float>(shape_of(t));
      detail::dequantize_gguf(t, bytes(t).data(), out.data());
    });
    if (!ok) unsupported(t);
    return out;
  }

  /// @brief Tensor name into m as a [rows, cols] matrix (rows = the product of the outer extents,
  /// cols = ne[0]): its bytes as they are when F's ggml type for rows of cols (ggml_type_for) is
  /// the tensor's type, otherwise
  /// dequantized and quantized to F row by row. A default-constructed m takes the tensor's shape;
  /// any other must have it (shape_error otherwise).
  template <quant::weight_format F>
  void read(std::string_view name, quant::matrix<F>& m) const {
    const auto& t = at(name);
    const std::int64_t rows = t.rows(), cols = t.cols();
    if (m.rank() == 0) {
      m = quant::matrix<F>(rows, cols);
    } else if (m.rows() != rows || m.cols() != cols) {
      throw shape_error("tformer: gguf file '" + path() + "': tensor '" + t.name + "' " + detail::shape_string(t.shape) +
                        " is a [" + std::to_string(rows) + ", " + std::to_string(cols) + "] matrix, but the " + F::name +
                        " matrix to read it into is " + m.shape().to_string());
    }
    const std::byte* src = bytes(t).data();
    if (quant::ggml_type_for<F>(cols) == static_cast<long long>(t.ggml_type)) {
      if (t.bytes > 0) std::memcpy(m.data(), src, static_cast<std::size_t>(t.bytes));
      return;
    }
    const bool ok = quant::visit_ggml_type(t.ggml_type, [&](auto fmt) {
      using G = decltype(fmt);
      if (rows == 0 || cols == 0) return;  // nothing to convert (and no loop over 2^60 empty rows)
      const std::int64_t rb = quant::row_bytes<G>(cols);
      tensor<float> row(tformer::shape{1, cols});
      gguf_tensor one = t;  // one row at a time
      one.shape = {cols};
      for (std::int64_t r = 0; r < rows; ++r) {
        detail::dequantize_gguf(one, src + r * rb, row.data());
        F::quantize_row(row.data(), m.row(r), cols);
      }
    });
    if (!ok) unsupported(t);
  }

 private:
  static tformer::shape shape_of(const gguf_tensor& t) {
    const auto& s = t.shape;
    switch (s.size()) {
      case 0: return {};
      case 1: return {s[0]};
      case 2: return {s[0], s[1]};
      case 3: return {s[0], s[1], s[2]};
      default: return {s[0], s[1], s[2], s[3]};
    }
  }
  [[noreturn]] void unsupported(const gguf_tensor& t) const {
    throw dtype_error("tformer: gguf file '" + path() + "': unsupported type " + t.type_name + " for tensor '" + t.name +
                      "' (no tformer format has ggml type " + std::to_string(t.ggml_type) + ")");
  }
  std::string key_where(std::string_view key) const {
    const auto it = c_.kv_index.find(key);
    return it == c_.kv_index.end() ? "" : " (at byte " + std::to_string(c_.kv_offsets[it->second]) + ")";
  }
  [[noreturn]] void fail_key(std::string_view key, const std::string& what) const {
    throw io_error("tformer: gguf file '" + path() + "': key '" + std::string(key) + "'" + key_where(key) + ": " + what);
  }
  [[noreturn]] void wrong(std::string_view key, const gguf_value& v, const char* expected) const {
    fail_key(key, "is " + v.type_string() + ", expected " + expected);
  }
  const gguf_value& need(std::string_view key, std::optional<gguf_type> type, const char* expected) const {
    const auto* v = find_metadata(key);
    if (!v) throw io_error("tformer: gguf file '" + path() + "' has no key '" + std::string(key) + "' (expected " + expected + ")");
    if (type && v->type != *type) wrong(key, *v, expected);
    return *v;
  }
  template <class Pred>
  const gguf_array& need_array(std::string_view key, const char* expected, Pred ok) const {
    const auto& v = need(key, gguf_type::array, expected);
    const auto& a = *v.array();
    gguf_value probe;
    probe.type = a.type;  // the element type decides, even for an empty array
    if (!ok(probe)) wrong(key, v, expected);
    return a;
  }

  mapped_file file_;
  detail::gguf_contents c_;
};

// ---------------------------------------------------------------------------------------------
// writer

/// @brief Builds a GGUF v3 file: metadata in the order added, then tensors in the order added,
/// each one's data aligned to 32 bytes (or the UINT32 general.alignment, when added) as llama.cpp
/// lays them out. Tensors are not copied: what add_tensor is given must outlive write().
class gguf_writer {
 public:
  /// @brief Adds metadata key = value, typed as gguf_value::from types it (or a gguf_value as it
  /// is). value_error for a duplicate key, a value out of its type's range, a general.alignment
  /// that is not a UINT32 power of two, or arrays nested deeper than a reader accepts.
  template <class T>
  gguf_writer& add(std::string key, const T& value) {
    gguf_value v = gguf_value::from(value);
    check_value(key, v, 0);
    if (keys_.count(key)) throw value_error("tformer::io::gguf_writer: duplicate key '" + key + "'");
    if (key == "general.alignment") {
      const auto* a = std::get_if<std::uint64_t>(&v.data);
      if (v.type != gguf_type::u32 || *a == 0 || (*a & (*a - 1)) != 0)
        throw value_error("tformer::io::gguf_writer: general.alignment must be a UINT32 power of two (add it as a "
                          "std::uint32_t), got " + v.type_string());
      alignment_ = *a;
    }
    keys_.insert(key);
    kvs_.push_back({std::move(key), std::move(v)});
    return *this;
  }

  /// @brief Adds m, a [rows, cols] matrix in a ggml format, as ne = {cols, rows} of its ggml type
  /// (for rows of cols: quant::ggml_type_for).
  template <quant::gguf_storable F>
  gguf_writer& add_tensor(std::string name, const quant::matrix<F>& m) {
    return add_raw(std::move(name), static_cast<std::uint32_t>(quant::ggml_type_for<F>(m.cols())), {m.rows(), m.cols()},
                   {m.data(), m.size_bytes()});
  }
  template <quant::gguf_storable F>
  gguf_writer& add_tensor(std::string name, const quant::matrix<F>&& m) = delete;  // would dangle

  /// @brief Adds a contiguous tensor of float (F32), f16 (F16), bf16 (BF16), int8 (I8) or int32 (I32).
  template <class T>
    requires element<std::remove_const_t<T>>
  gguf_writer& add_tensor(std::string name, tensor_view<T> t) {
    constexpr long long type = detail::ggml_type_of_element<T>();
    static_assert(type >= 0, "GGUF has no ggml type for uint8 tensors");
    if (!t.is_contiguous())
      throw shape_error("tformer::io::gguf_writer: tensor '" + name + "' must be contiguous");
    std::vector<std::int64_t> shape;
    for (int i = 0; i < t.rank(); ++i) shape.push_back(t.dim(i));
    return add_raw(std::move(name), static_cast<std::uint32_t>(type), std::move(shape),
                   {reinterpret_cast<const std::byte*>(t.data()), static_cast<std::size_t>(t.numel()) * sizeof(T)});
  }
  template <element T>
  gguf_writer& add_tensor(std::string name, const tensor<T>& t) {
    return add_tensor(std::move(name), t.view());
  }
  template <element T>
  gguf_writer& add_tensor(std::string name, const tensor<T>&& t) = delete;  // would dangle

  /// @brief Adds the stored bytes of a tensor of any ggml type (a tensor copied from another
  /// GGUF file, say): shape outermost first; value_error when the type is unknown, ne[0] is not
  /// a multiple of its block size, or data is not the size the shape needs.
  gguf_writer& add_raw(std::string name, std::uint32_t ggml_type, std::vector<std::int64_t> shape,
                       std::span<const std::byte> data) {
    const auto bad = [&](const std::string& what) {
      throw value_error("tformer::io::gguf_writer: tensor '" + name + "': " + what);
    };
    if (names_.count(name)) bad("duplicate tensor name");
    const ggml_type_traits* traits = find_ggml_type(ggml_type);
    if (!traits) bad("unknown or removed ggml type " + std::to_string(ggml_type));
    if (shape.size() > 4) bad("rank " + std::to_string(shape.size()) + " exceeds GGML_MAX_DIMS (4)");
    std::vector<std::int64_t> ne(shape.rbegin(), shape.rend());
    for (auto e : ne)
      if (e < 0) bad("negative extent in " + detail::shape_string(shape));
    std::int64_t elements = 0;
    if (!tformer::detail::nonzero_extent_product(ne.data(), ne.data() + ne.size(), 1, elements))
      bad("too many elements in " + detail::shape_string(shape));
    if ((ne.empty() ? 1 : ne[0]) % traits->block_size != 0)
      bad("the innermost extent is not a multiple of " + std::string(traits->name) + "'s block size " +
          std::to_string(traits->block_size));
    std::uint64_t bytes = 0;
    if (!detail::gguf_tensor_bytes(ne.data(), ne.size(), *traits, bytes) || bytes != data.size())
      bad(detail::shape_string(shape) + " of " + std::string(traits->name) + " needs " + std::to_string(bytes) +
          " bytes, given " + std::to_string(data.size()));
    names_.insert(name);
    tensors_.push_back({std::move(name), std::move(ne), ggml_type, data});
    return *this;
  }

  /// @brief The file's bytes to out.
  void write(std::ostream& out) const {
    std::string head = "GGUF";
    detail::put_le(head, 3, 4);
    detail::put_le(head, tensors_.size(), 8);
    detail::put_le(head, kvs_.size(), 8);
    for (const auto& kv : kvs_) {
      put_string(head, kv.key);
      detail::put_le(head, static_cast<std::uint32_t>(kv.value.type), 4);
      put_value(head, kv.value);
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_string(head, t.name);
      detail::put_le(head, t.ne.size(), 4);
      for (auto e : t.ne) detail::put_le(head, static_cast<std::uint64_t>(e), 8);
      detail::put_le(head, t.type, 4);
      detail::put_le(head, offset, 8);
      offset += detail::pad_to(t.data.size(), alignment_);
    }
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    put_padding(out, detail::pad_to(head.size(), alignment_) - head.size());
    for (const auto& t : tensors_) {
      out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
      put_padding(out, detail::pad_to(t.data.size(), alignment_) - t.data.size());
    }
  }
  /// @brief Writes the file to path; io_error when it cannot be written.
  void write(const std::filesystem::path& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw io_error("tformer: cannot write gguf file '" + path.string() + "'");
    write(out);
    out.flush();
    if (!out) throw io_error("tformer: error while writing gguf file '" + path.string() + "'");
  }

 private:
  struct pending {
    std::string name;
    std::vector<std::int64_t> ne;  // innermost first
    std::uint32_t type;
    std::span<const std::byte> data;
  };

  // n zero bytes (an alignment may be as large as 2^31: no buffer of that size)
  static void put_padding(std::ostream& out, std::uint64_t n) {
    static constexpr char zeros[4096] = {};
    for (; n > 0; n -= std::min<std::uint64_t>(n, sizeof zeros))
      out.write(zeros, static_cast<std::streamsize>(std::min<std::uint64_t>(n, sizeof zeros)));
  }
  static void put_string(std::string& out, const std::string& s) {
    detail::put_le(out, s.size(), 8);
    out += s;
  }
  static void put_value(std::string& out, const gguf_value& v) {
    switch (v.type) {
      case gguf_type::u8: detail::put_le(out, std::get<std::uint64_t>(v.data), 1); break;
      case gguf_type::u16: detail::put_le(out, std::get<std::uint64_t>(v.data), 2); break;
      case gguf_type::u32: detail::put_le(out, std::get<std::uint64_t>(v.data), 4); break;
      case gguf_type::u64: detail::put_le(out, std::get<std::uint64_t>(v.data), 8); break;
      case gguf_type::i8: detail::put_le(out, static_cast<std::uint64_t>(std::get<std::int64_t>(v.data)), 1); break;
      case gguf_type::i16: detail::put_le(out, static_cast<std::uint64_t>(std::get<std::int64_t>(v.data)), 2); break;
      case gguf_type::i32: detail::put_le(out, static_cast<std::uint64_t>(std::get<std::int64_t>(v.data)), 4); break;
      case gguf_type::i64: detail::put_le(out, static_cast<std::uint64_t>(std::get<std::int64_t>(v.data)), 8); break;
      case gguf_type::f32:
        detail::put_le(out, std::bit_cast<std::uint32_t>(static_cast<float>(std::get<double>(v.data))), 4);
        break;
      case gguf_type::f64: detail::put_le(out, std::bit_cast<std::uint64_t>(std::get<double>(v.data)), 8); break;
      case gguf_type::boolean: out.push_back(std::get<bool>(v.data) ? '\1' : '\0'); break;
      case gguf_type::string: put_string(out, std::get<std::string>(v.data)); break;
      case gguf_type::array: {
        const auto& a = std::get<gguf_array>(v.data);
        detail::put_le(out, static_cast<std::uint32_t>(a.type), 4);
        detail::put_le(out, a.items.size(), 8);
        for (const auto& x : a.items) put_value(out, x);
        break;
      }
    }
  }

  // v holds what its type says, within range, nested no deeper than a reader accepts.
  static void check_value(const std::string& key, const gguf_value& v, int depth) {
    const auto bad = [&](const std::string& what) {
      throw value_error("tformer::io::gguf_writer: key '" + key + "': " + what);
    };
    const auto t = v.type;
    const auto in_u = [&](std::uint64_t max) {
      const auto* x = std::get_if<std::uint64_t>(&v.data);
      if (!x || *x > max) bad(std::string(gguf_type_name(t)) + " value missing or out of range");
    };
    const auto in_i = [&](std::int64_t lo, std::int64_t hi) {
      const auto* x = std::get_if<std::int64_t>(&v.data);
      if (!x || *x < lo || *x > hi) bad(std::string(gguf_type_name(t)) + " value missing or out of range");
    };
    switch (t) {
      case gguf_type::u8: in_u(0xFF); break;
      case gguf_type::u16: in_u(0xFFFF); break;
      case gguf_type::u32: in_u(0xFFFFFFFF); break;
      case gguf_type::u64: in_u(UINT64_MAX); break;
      case gguf_type::i8: in_i(INT8_MIN, INT8_MAX); break;
      case gguf_type::i16: in_i(INT16_MIN, INT16_MAX); break;
      case gguf_type::i32: in_i(INT32_MIN, INT32_MAX); break;
      case gguf_type::i64: in_i(INT64_MIN, INT64_MAX); break;
      case gguf_type::f32:
      case gguf_type::f64:
        if (!std::holds_alternative<double>(v.data)) bad("a float value must hold a double");
        break;
      case gguf_type::boolean:
        if (!std::holds_alternative<bool>(v.data)) bad("a BOOL value must hold a bool");
        break;
      case gguf_type::string:
        if (!std::holds_alternative<std::string>(v.data)) bad("a STRING value must hold a std::string");
        break;
      case gguf_type::array: {
        const auto* a = v.array();
        if (!a) bad("an ARRAY value must hold a gguf_array");
        if (static_cast<std::uint32_t>(a->type) > static_cast<std::uint32_t>(gguf_type::f64))
          bad("unknown array element type " + std::to_string(static_cast<std::uint32_t>(a->type)));
        if (a->type == gguf_type::array && depth + 1 >= detail::gguf_max_array_depth)
          bad("arrays nest deeper than " + std::to_string(detail::gguf_max_array_depth) + " levels");
        for (const auto& x : a->items) {
          if (x.type != a->type)
            bad("an ARRAY of " + std::string(gguf_type_name(a->type)) + " holds a " + std::string(gguf_type_name(x.type)));
          check_value(key, x, depth + 1);
        }
        break;
      }
      default: bad("unknown value type " + std::to_string(static_cast<std::uint32_t>(t)));
    }
  }

  std::vector<gguf_kv> kvs_;
  std::set<std::string, std::less<>> keys_, names_;
  std::vector<pending> tensors_;
  std::uint64_t alignment_ = 32;
};

/// @brief Writes every parameter of model m to path as GGUF v3 under tformer's names, after the
/// given metadata: matrices in a ggml format (f32, f16, bf16, q8_0, ...) and float, f16, bf16,
/// int8 and int32 tensors as they are stored. dtype_error naming every parameter that has no ggml
/// type, before anything is written.
template <class M>
void save_gguf(M& m, const std::filesystem::path& path, const std::vector<gguf_kv>& metadata = {}) {
  gguf_writer w;
  for (const auto& kv : metadata) w.add(kv.key, kv.value);
  std::vector<std::string> problems;
  m.visit(
      [&](const std::string& name, auto& p) {
        using P = std::remove_cvref_t<decltype(p)>;
        if constexpr (quant::is_matrix<P>) {
          using F = typename P::format;
          if constexpr (quant::gguf_storable<F>)
            w.add_tensor(name, p);
          else
            problems.push_back("parameter '" + name + "' is in format " + F::name + ", which has no ggml type");
        } else {
          using T = typename P::value_type;
          if constexpr (detail::ggml_type_of_element<T>() >= 0)
            w.add_tensor(name, p.view());
          else
            problems.push_back("parameter '" + name + "' holds " + std::string(tformer::name(dtype_of<T>)) +
                               ", which has no ggml type");
        }
      },
      "");
  if (!problems.empty()) {
    std::string msg = "tformer: cannot save gguf file '" + path.string() + "':";
    for (const auto& p : problems) msg += "\n  " + p;
    throw dtype_error(msg);
  }
  w.write(path);
}

}  // namespace tformer::io
