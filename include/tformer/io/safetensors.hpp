// safetensors reader. Layout: u64 little-endian header length N, N bytes of a UTF-8 JSON object
// (possibly space-padded) mapping names to {dtype, shape, data_offsets: [begin, end)} relative to
// the data buffer that follows, plus an optional "__metadata__" string map.
//
// Opening a file checks every rule of the format and throws io_error naming the file, the tensor
// and the byte offset: a file shorter than 8 bytes, N > 100,000,000, a header running past the end
// of the file, invalid JSON or a non-object header, duplicate names, unknown dtypes, malformed
// shapes or offsets, end < begin, an element or byte count past INT64_MAX (counting the nonzero
// extents, as tformer::shape does), a byte count that differs from end - begin, holes or
// overlaps between tensors, and a data buffer whose size is not the last tensor's end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/tensor.hpp"
#include "mapped_file.hpp"

namespace tformer::io {

/// @brief One tensor's entry in a safetensors header.
struct safetensors_entry {
  std::string name;
  std::string dtype_name;               // as written in the file: "F32", "BF16", ...
  std::optional<tformer::dtype> dtype;  // tformer's element type, when it has one
  std::size_t element_size = 0;         // bytes per element
  std::vector<std::int64_t> shape;      // any rank
  std::uint64_t begin = 0, end = 0;     // [begin, end) within the data buffer
};

namespace detail {

struct st_dtype {
  std::string_view name;
  std::size_t size;
  std::optional<dtype> type;
};
// Every dtype the format defines; those tformer can hold map to a dtype.
inline constexpr st_dtype st_dtypes[] = {
    {"BOOL", 1, std::nullopt},     {"U8", 1, dtype::u8},          {"I8", 1, dtype::i8},
    {"F8_E5M2", 1, std::nullopt},  {"F8_E4M3", 1, std::nullopt},  {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},      {"F16", 2, dtype::f16},        {"BF16", 2, dtype::bf16},
    {"I32", 4, dtype::i32},        {"U32", 4, std::nullopt},      {"F32", 4, dtype::f32},
    {"F64", 8, std::nullopt},      {"I64", 8, std::nullopt},      {"U64", 8, std::nullopt},
};

inline std::uint64_t read_u64_le(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

}  // namespace detail

/// @brief A validated safetensors file, memory-mapped; tensors are read by name.
class safetensors_file {
 public:
  /// @brief Largest header the format allows, in bytes.
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  /// @brief Maps and validates path; throws io_error on any violation of the format.
  explicit safetensors_file(const std::filesystem::path& path) : file_(path) { parse(); }

  const std::string& path() const noexcept { return file_.path(); }
  /// @brief Entries in file order of their data (ascending offsets).
  const std::vector<safetensors_entry>& entries() const noexcept { return entries_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  /// @brief File offset of the data buffer (8 + header length).
  std::uint64_t data_offset() const noexcept { return data_offset_; }

  /// @brief The entry called name, or nullptr.
  const safetensors_entry* find(std::string_view name) const noexcept {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  /// @brief The entry called name; throws io_error naming the file when it is absent.
  const safetensors_entry& at(std::string_view name) const {
    if (const auto* e = find(name)) return *e;
    throw io_error("tformer: safetensors file '" + path() + "' has no tensor '" + std::string(name) + "'");
  }
  /// @brief Raw bytes of a tensor.
  std::span<const std::byte> bytes(const safetensors_entry& e) const noexcept {
    return file_.bytes().subspan(static_cast<std::size_t>(data_offset_ + e.begin), static_cast<std::size_t>(e.end - e.begin));
  }

  /// @brief Reads tensor name into dst, whose shape must equal the stored one. F32, F16 and BF16
  /// data convert to float; other element types must match T exactly.
  template <element T>
  void read(std::string_view name, tensor_view<T> dst) const {
    const auto& e = at(name);
    check_shape(e, dst.shape());
    if (!dst.is_contiguous())
      throw shape_error("tformer: reading tensor '" + e.name + "' needs a contiguous destination");
    const auto src = bytes(e);
    const auto n = static_cast<std::size_t>(dst.numel());
    if (e.dtype == dtype_of<T>) {
      if (!src.empty()) std::memcpy(static_cast<void*>(dst.data()), src.data(), src.size());
      return;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (e.dtype == dtype::f16 || e.dtype == dtype::bf16) {
        convert_chunked(e, src.data(), dst.data(), n);
        return;
      }
    }
    throw dtype_error("tformer: safetensors file '" + path() + "': tensor '" + e.name + "' is " + e.dtype_name +
                      ", which cannot be read as " + std::string(tformer::name(dtype_of<T>)));
  }

  /// @brief Reads tensor name into a new tensor of its stored shape (rank <= 4).
  template <element T>
  tensor<T> load(std::string_view name) const {
    const auto& e = at(name);
    if (e.shape.size() > static_cast<std::size_t>(max_rank))
      throw shape_error("tformer: safetensors file '" + path() + "': tensor '" + e.name + "' has rank " +
                        std::to_string(e.shape.size()) + ", more than tformer's maximum of 4");
    tformer::shape s;
    switch (e.shape.size()) {
      case 0: break;
      case 1: s = {e.shape[0]}; break;
      case 2: s = {e.shape[0], e.shape[1]}; break;
      case 3: s = {e.shape[0], e.shape[1], e.shape[2]}; break;
      default: s = {e.shape[0], e.shape[1], e.shape[2], e.shape[3]}; break;
    }
    tensor<T> t(s);
    read<T>(name, t.view());
    return t;
  }

 private:
  [[noreturn]] void fail(const std::string& what, std::uint64_t offset) const {
    throw io_error("tformer: safetensors file '" + path() + "' at byte " + std::to_string(offset) + ": " + what);
  }
  [[noreturn]] void fail_tensor(const std::string& tensor, const std::string& what) const {
    throw io_error("tformer: safetensors file '" + path() + "': tensor '" + tensor + "' (header at byte 8): " + what);
  }

  static std::string shape_string(const std::vector<std::int64_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }

  void check_shape(const safetensors_entry& e, const tformer::shape& want) const {
    bool same = static_cast<std::size_t>(want.rank()) == e.shape.size();
    for (int i = 0; same && i < want.rank(); ++i) same = want[i] == e.shape[static_cast<std::size_t>(i)];
    if (!same)
      throw shape_error("tformer: safetensors file '" + path() + "': tensor '" + e.name + "' has shape " +
                        shape_string(e.shape) + ", expected " + want.to_string());
  }

  // f16/bf16 -> float through an aligned bounce buffer (the file's data may be unaligned).
  void convert_chunked(const safetensors_entry& e, const std::byte* src, float* dst, std::size_t n) const {
    constexpr std::size_t chunk = 4096;
    alignas(64) std::uint16_t tmp[chunk];
    for (std::size_t i = 0; i < n; i += chunk) {
      const std::size_t m = std::min(chunk, n - i);
      std::memcpy(tmp, src + 2 * i, 2 * m);
      if (e.dtype == dtype::f16)
        convert(reinterpret_cast<const f16*>(tmp), dst + i, m);
      else
        convert(reinterpret_cast<const bf16*>(tmp), dst + i, m);
    }
  }

  void parse() {
    const auto all = file_.bytes();
    if (all.size() < 8)
      fail("the file is " + std::to_string(all.size()) + " bytes, shorter than the 8-byte header length", 0);
    const std::uint64_t n = detail::read_u64_le(all.data());
    if (n > max_header_bytes)
      fail("header length " + std::to_string(n) + " exceeds the format's limit of 100,000,000 bytes", 0);
    if (8 + n > all.size())
      fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(all.size()) +
               " bytes)",
           0);
    data_offset_ = 8 + n;

    // Parse, noting duplicate names at the top level (the parser itself keeps the last one).
    const char* text = reinterpret_cast<const char*>(all.data() + 8);
    std::set<std::string> seen;
    std::string duplicate;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate.empty()) {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!seen.insert(key).second) duplicate = key;
      }
      return true;
    };
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + n, callback);
    } catch (const nlohmann::json::exception& ex) {
      std::uint64_t at = 8;
      if (const auto* pe = dynamic_cast<const nlohmann::json::parse_error*>(&ex); pe && pe->byte > 0) at += pe->byte - 1;
      fail(std::string("the header is not valid JSON: ") + ex.what(), at);
    }
    if (!duplicate.empty()) fail("tensor name '" + duplicate + "' appears twice in the header", 8);
    if (!header.is_object()) fail("the header is not a JSON object", 8);

    const std::uint64_t buffer = all.size() - data_offset_;
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        if (!value.is_object()) fail("__metadata__ is not an object of strings", 8);
        for (const auto& [mk, mv] : value.items()) {
          if (!mv.is_string()) fail("__metadata__ entry '" + mk + "' is not a string", 8);
          metadata_[mk] = mv.get<std::string>();
        }
        continue;
      }
      entries_.push_back(parse_entry(key, value));
    }

    // Data must tile the buffer exactly: sorted by offset, each tensor starts where the last ended.
    std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expect = 0;
    for (const auto& e : entries_) {
      if (e.begin != expect)
        fail_tensor(e.name, (e.begin > expect ? "a hole: data starts at " : "overlaps the previous tensor: data starts at ") +
                                std::to_string(e.begin) + " (file byte " + std::to_string(data_offset_ + e.begin) +
                                ") but the previous tensor ends at " + std::to_string(expect));
      expect = e.end;
    }
    if (expect != buffer)
      fail("the data buffer is " + std::to_string(buffer) + " bytes but the tensors cover " + std::to_string(expect) +
               (expect < buffer ? " (trailing bytes)" : " (the file is truncated)"),
           data_offset_ + std::min(expect, buffer));
    for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].name, i);
  }

  safetensors_entry parse_entry(const std::string& key, const nlohmann::json& value) const {
    if (!value.is_object()) fail_tensor(key, "entry is not an object");
    safetensors_entry e;
    e.name = key;
    const auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) fail_tensor(key, "missing or non-string \"dtype\"");
    e.dtype_name = dt->get<std::string>();
    const auto known = std::find_if(std::begin(detail::st_dtypes), std::end(detail::st_dtypes),
                                    [&](const auto& d) { return d.name == e.dtype_name; });
    if (known == std::end(detail::st_dtypes)) fail_tensor(key, "unknown dtype \"" + e.dtype_name + "\"");
    e.dtype = known->type;
    e.element_size = known->size;

    const auto sh = value.find("shape");
    if (sh == value.end() || !sh->is_array()) fail_tensor(key, "missing or non-array \"shape\"");
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) fail_tensor(key, "shape entries must be non-negative integers, got " + d.dump());
      const auto extent = d.get<std::uint64_t>();
      if (extent > static_cast<std::uint64_t>(INT64_MAX)) fail_tensor(key, "extent " + d.dump() + " is too large");
      e.shape.push_back(static_cast<std::int64_t>(extent));
    }
    // Elements and bytes are counted over the nonzero extents, in int64_t: [3, 2^62, 0] holds no
    // bytes, but no tformer::shape (nor any view of its other dimensions) can count it.
    const std::int64_t* first = e.shape.data();
    const std::int64_t* last = first + e.shape.size();
    std::int64_t count = 0, span = 0;
    const bool count_fits = tformer::detail::nonzero_extent_product(first, last, 1, count);
    const bool bytes_fit =
        count_fits && tformer::detail::nonzero_extent_product(first, last, static_cast<std::int64_t>(e.element_size), span);
    // The bytes actually stored: span, or 0 with a zero extent.
    const bool has_zero = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
    const std::uint64_t nbytes = has_zero ? 0 : static_cast<std::uint64_t>(span);

    const auto off = value.find("data_offsets");
    if (off == value.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail_tensor(key, "\"data_offsets\" must be two non-negative integers [begin, end)");
    e.begin = (*off)[0].get<std::uint64_t>();
    e.end = (*off)[1].get<std::uint64_t>();
    if (e.end < e.begin)
      fail_tensor(key, "data_offsets end " + std::to_string(e.end) + " is before begin " + std::to_string(e.begin));
    if (!count_fits)
      fail_tensor(key, "shape " + shape_string(e.shape) +
                           " has too many elements: the product of its nonzero extents overflows INT64_MAX");
    if (!bytes_fit)
      fail_tensor(key, "shape " + shape_string(e.shape) + " of " + e.dtype_name +
                           " overflows INT64_MAX bytes (the product of its nonzero extents times " +
                           std::to_string(e.element_size) + ")");
    if (nbytes != e.end - e.begin)
      fail_tensor(key, "shape " + shape_string(e.shape) + " of " + e.dtype_name + " needs " + std::to_string(nbytes) +
                           " bytes but data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                           ") hold " + std::to_string(e.end - e.begin));
    return e;
  }

  mapped_file file_;
  std::vector<safetensors_entry> entries_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::uint64_t data_offset_ = 0;
};

}  // namespace tformer::io
