// Loading a model's parameters from safetensors files written by other tools, through a name map
// from tformer's parameter names to the checkpoint's; and saving under tformer's own names.
//
// A name map is a list of rules "tformer pattern -> checkpoint pattern", where {i} stands for a
// layer number, plus an optional transform: transpose a 2-D tensor (GPT-2's Conv1D stores
// [in, out]) and/or take chunk c of n equal parts along dimension 0 (fused QKV projections).
// Loading reports every missing, extra, mis-shaped and unreadable tensor by name in one io_error.
//
// Weights in a format (quant::matrix<F>) load the file's bytes as they are when the file holds
// that format (a safetensors dtype equal to F::file_dtype, or a packed format tformer wrote, named
// in the "tformer.formats" metadata entry) and the rule has no transform; otherwise the tensor is
// read as float (dequantized if packed), transformed, and quantized to F. Saving writes what each
// parameter stores: float formats under their dtype, packed formats as U8 [rows, row bytes] named
// in "tformer.formats" ({"tensor": {"format": "q8_0", "shape": [rows, cols]}, ...}).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/tensor.hpp"
#include "../quant/formats.hpp"
#include "../quant/matrix.hpp"
#include "safetensors.hpp"

namespace tformer::io {

/// @brief Where a parameter comes from in a checkpoint.
struct source {
  std::string name;        ///< the checkpoint's tensor name
  bool transpose = false;  ///< transpose the 2-D tensor first
  int chunk = 0;           ///< then take part `chunk` of `chunks` equal parts along dimension 0
  int chunks = 1;
};

/// @brief Rules mapping tformer parameter names to checkpoint tensor names.
class name_map {
 public:
  /// @brief Maps tformer names matching `from` to `to` ({i} matches a layer number on both sides).
  name_map& add(const std::string& from, const std::string& to, bool transpose = false, int chunk = 0, int chunks = 1) {
    if (chunks < 1 || chunk < 0 || chunk >= chunks)
      throw value_error("tformer::io::name_map: chunk " + std::to_string(chunk) + " of " + std::to_string(chunks) + " for '" +
                        from + "'");
    rules_.push_back({pattern(from), to, transpose, chunk, chunks});
    return *this;
  }
  /// @brief Checkpoint tensors matching pattern are known and deliberately not loaded.
  name_map& ignore(const std::string& checkpoint_pattern) {
    ignored_.push_back(pattern(checkpoint_pattern));
    return *this;
  }
  /// @brief The source of a tformer parameter, or nothing when no rule matches.
  std::optional<source> resolve(const std::string& name) const {
    for (const auto& r : rules_) {
      std::smatch m;
      if (std::regex_match(name, m, r.from)) {
        std::string to = r.to;
        if (m.size() > 1) {
          const auto at = to.find("{i}");
          if (at != std::string::npos) to.replace(at, 3, m[1].str());
        }
        return source{to, r.transpose, r.chunk, r.chunks};
      }
    }
    return std::nullopt;
  }
  bool ignored(const std::string& checkpoint_name) const {
    for (const auto& p : ignored_)
      if (std::regex_match(checkpoint_name, p)) return true;
    return false;
  }

 private:
  struct rule {
    std::regex from;
    std::string to;
    bool transpose;
    int chunk, chunks;
  };
  // "layers.{i}.attn.q.weight" -> layers\.([0-9]+)\.attn\.q\.weight: literal except {i} (a
  // number) and * (anything)
  static std::regex pattern(const std::string& p) {
    std::string re;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (p.compare(i, 3, "{i}") == 0) {
        re += "([0-9]+)";
        i += 2;
      } else if (p[i] == '*') {
        re += ".*";
      } else if (std::string("\\^$.|?+()[]{}").find(p[i]) != std::string::npos) {
        re += '\\';
        re += p[i];
      } else {
        re += p[i];
      }
    }
    return std::regex(re);
  }
  std::vector<rule> rules_;
  std::vector<std::regex> ignored_;
};

/// @brief The metadata key under which tformer names the packed formats of a file's tensors.
inline constexpr const char* formats_metadata_key = "tformer.formats";

namespace detail {

// A tensor stored in a packed format: its format name and logical [rows, cols].
struct packed_entry {
  std::string format;
  std::int64_t rows = 0, cols = 0;
};

// The packed tensors a file names in its "tformer.formats" metadata (io_error when malformed).
inline std::map<std::string, packed_entry> packed_entries(const safetensors_file& f) {
  std::map<std::string, packed_entry> out;
  const auto it = f.metadata().find(formats_metadata_key);
  if (it == f.metadata().end()) return out;
  try {
    const auto j = nlohmann::json::parse(it->second);
    for (const auto& [name, v] : j.items()) {
      out.emplace(name, packed_entry{v.at("format").get<std::string>(), v.at("shape").at(0).get<std::int64_t>(),
                                     v.at("shape").at(1).get<std::int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw io_error("tformer: '" + f.path() + "': metadata entry \"" + formats_metadata_key + "\" is malformed: " + e.what());
  }
  return out;
}

// The raw tensor as float: dequantized when it is packed.
inline tensor<float> read_float(const safetensors_file& f, const std::string& name,
                                const std::map<std::string, packed_entry>& packed) {
  const auto p = packed.find(name);
  if (p == packed.end()) return f.load<float>(name);
  if (!quant::is_known_format(p->second.format))
    throw io_error("tformer: '" + f.path() + "': tensor '" + name + "' is in format '" + p->second.format +
                   "', which this program cannot convert (load it into a parameter of that format)");
  tensor<float> t;
  quant::visit_format(p->second.format, [&](auto fmt) {
    using F = decltype(fmt);
    const auto& e = f.at(name);
    if (p->second.rows < 0 || p->second.cols < 0 || p->second.cols % F::block_size != 0 ||
        e.shape != std::vector<std::int64_t>{p->second.rows, quant::row_bytes<F>(p->second.cols)} || e.dtype_name != "U8")
      throw io_error("tformer: '" + f.path() + "': packed tensor '" + name + "' (" + F::name + ", [" +
                     std::to_string(p->second.rows) + ", " + std::to_string(p->second.cols) +
                     "]) must be stored as U8 [rows, row bytes]");
    quant::matrix<F> m(p->second.rows, p->second.cols);
    if (m.size_bytes() > 0) std::memcpy(m.data(), f.bytes(e).data(), m.size_bytes());
    t = m.to_float();
  });
  return t;
}

// The source tensor as float after its transform.
inline tensor<float> read_source(const safetensors_file& f, const source& s, const std::map<std::string, packed_entry>& packed) {
  tensor<float> t = read_float(f, s.name, packed);
  if (s.transpose) {
    if (t.rank() != 2)
      throw shape_error("checkpoint tensor '" + s.name + "' " + t.shape().to_string() + " cannot be transposed: it is not 2-D");
    tensor<float> tt(shape{t.dim(1), t.dim(0)});
    for (std::int64_t i = 0; i < t.dim(0); ++i)
      for (std::int64_t j = 0; j < t.dim(1); ++j) tt(j, i) = t(i, j);
    t = std::move(tt);
  }
  if (s.chunks > 1) {
    if (t.rank() < 1 || t.dim(0) % s.chunks != 0)
      throw shape_error("checkpoint tensor '" + s.name + "' " + t.shape().to_string() + " does not split into " +
                        std::to_string(s.chunks) + " equal parts along dimension 0");
    const std::int64_t part = t.dim(0) / s.chunks;
    t = tensor<float>::copy_of(t.view().slice(0, s.chunk * part, (s.chunk + 1) * part));
  }
  return t;
}

// True when f holds tensor `name` in F's own bytes (copied as they are when no transform applies).
template <quant::weight_format F>
bool holds_native(const safetensors_entry& e, const std::map<std::string, packed_entry>& packed) {
  const auto p = packed.find(e.name);
  if (p != packed.end()) return p->second.format == F::name;
  if constexpr (quant::file_dtype_format<F>)
    return e.dtype_name == F::file_dtype;
  else
    return false;
}

}  // namespace detail

/// @brief Loads every parameter of model m from f through map. Throws io_error listing every
/// parameter without a rule or tensor, every tensor of the wrong shape or that cannot be read or
/// transformed, and every checkpoint tensor neither used nor ignored. Returns the number of
/// parameters loaded.
template <class M>
std::int64_t load_safetensors(M& m, const safetensors_file& f, const name_map& map) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  std::int64_t loaded = 0;
  const auto packed = detail::packed_entries(f);
  m.visit(
      [&](const std::string& name, auto& param) {
        using P = std::remove_reference_t<decltype(param)>;
        const auto src = map.resolve(name);
        if (!src) {
          problems.push_back("parameter '" + name + "' has no rule in the name map");
          return;
        }
        const auto* entry = f.find(src->name);
        if (!entry) {
          problems.push_back("missing tensor '" + src->name + "' (for parameter '" + name + "')");
          return;
        }
        used.insert(src->name);
        try {
          if constexpr (quant::is_matrix<P>) {
            using F = typename P::format;
            const auto p = packed.find(src->name);
            const bool transformed = src->transpose || src->chunks > 1;
            if (!transformed && detail::holds_native<F>(*entry, packed)) {
              const shape stored = p != packed.end() ? shape{p->second.rows, p->second.cols}
                                   : entry->shape.size() == 2 ? shape{entry->shape[0], entry->shape[1]}
                                                              : shape{};
              if (!(stored == param.shape())) {
                problems.push_back("tensor '" + src->name + "' has shape " + stored.to_string() + " but parameter '" + name +
                                   "' needs " + param.shape().to_string());
                return;
              }
              const auto bytes = f.bytes(*entry);
              if (bytes.size() != param.size_bytes()) {
                problems.push_back("tensor '" + src->name + "' holds " + std::to_string(bytes.size()) + " bytes but " +
                                   F::name + " parameter '" + name + "' needs " + std::to_string(param.size_bytes()));
                return;
              }
              if (!bytes.empty()) std::memcpy(param.data(), bytes.data(), bytes.size());
              ++loaded;
              return;
            }
          }
          tensor<float> t = detail::read_source(f, *src, packed);
          if (!(t.shape() == param.shape())) {
            problems.push_back("tensor '" + src->name + "' has shape " + t.shape().to_string() + " but parameter '" + name +
                               "' needs " + param.shape().to_string());
            return;
          }
          if constexpr (quant::is_matrix<P>) {
            param.quantize_from(t);
          } else {
            using T = typename P::value_type;
            if constexpr (std::is_same_v<T, float>)
              std::copy_n(t.data(), t.numel(), param.data());
            else
              convert(t.data(), param.data(), static_cast<std::size_t>(t.numel()));
          }
          ++loaded;
        } catch (const error& e) {
          problems.push_back(std::string("tensor '") + src->name + "' (for parameter '" + name + "'): " + e.what());
        }
      },
      "");
  for (const auto& e : f.entries())
    if (!used.count(e.name) && !map.ignored(e.name)) problems.push_back("extra tensor '" + e.name + "' is not used");
  if (!problems.empty()) {
    std::string msg = "tformer: cannot load '" + f.path() + "': " + std::to_string(problems.size()) + " problem(s):";
    for (const auto& p : problems) msg += "\n  " + p;
    throw io_error(msg);
  }
  return loaded;
}

/// @brief The map that save_safetensors implies: every parameter of m under its own name.
template <class M>
name_map identity_map(M& m) {
  name_map map;
  m.visit([&](const std::string& name, auto&) { map.add(name, name); }, "");
  return map;
}

/// @brief Writes every parameter of m to path under tformer's names, each as it is stored: float
/// tensors and float formats under their dtype (F32, F16, BF16), packed formats as U8 bytes named
/// in the "tformer.formats" metadata (see the file comment).
template <class M>
void save_safetensors(M& m, const std::filesystem::path& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json formats = nlohmann::ordered_json::object();
  std::vector<std::pair<const std::byte*, std::size_t>> blobs;
  std::uint64_t offset = 0;
  auto add = [&](const std::string& name, const char* dtype, std::vector<std::int64_t> dims, const std::byte* data,
                 std::size_t bytes) {
    header[name] = {{"dtype", dtype}, {"shape", dims}, {"data_offsets", {offset, offset + bytes}}};
    blobs.emplace_back(data, bytes);
    offset += bytes;
  };
  m.visit(
      [&](const std::string& name, auto& t) {
        using P = std::remove_reference_t<decltype(t)>;
        if constexpr (quant::is_matrix<P>) {
          using F = typename P::format;
          if constexpr (quant::file_dtype_format<F>) {
            add(name, F::file_dtype, {t.rows(), t.cols()}, t.data(), t.size_bytes());
          } else {
            add(name, "U8", {t.rows(), t.row_bytes()}, t.data(), t.size_bytes());
            formats[name] = {{"format", F::name}, {"shape", {t.rows(), t.cols()}}};
          }
        } else {
          using T = typename P::value_type;
          static_assert(std::is_same_v<T, float> || std::is_same_v<T, bf16>, "save_safetensors: f32 or bf16 tensors");
          std::vector<std::int64_t> dims;
          for (int i = 0; i < t.rank(); ++i) dims.push_back(t.dim(i));
          add(name, std::is_same_v<T, float> ? "F32" : "BF16", dims, reinterpret_cast<const std::byte*>(t.data()),
              static_cast<std::size_t>(t.numel()) * sizeof(T));
        }
      },
      "");
  if (!formats.empty()) header["__metadata__"] = {{formats_metadata_key, formats.dump()}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw io_error("tformer: cannot write '" + path.string() + "'");
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << text;
  for (const auto& [p, size] : blobs) out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(size));
  if (!out) throw io_error("tformer: error while writing '" + path.string() + "'");
}

}  // namespace tformer::io
