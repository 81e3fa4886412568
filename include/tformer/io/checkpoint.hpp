// Loading a model's parameters from safetensors files written by other tools, through a name map
// from tformer's parameter names to the checkpoint's; and saving under tformer's own names.
//
// A name map is a list of rules "tformer pattern -> checkpoint pattern", where {i} stands for a
// layer number, plus an optional transform: transpose a 2-D tensor (GPT-2's Conv1D stores
// [in, out]) and/or take chunk c of n equal parts along dimension 0 (fused QKV projections).
// Loading reports every missing, extra, mis-shaped and unreadable tensor by name in one io_error.
//
// Weights in a format (quant::matrix<F>) load the file's bytes as they are when the file holds
// that format (a safetensors dtype equal to F::file_dtype, a GGUF type, or a packed format tformer
// wrote, named in the "tformer.formats" metadata entry) and the rule does not transpose (a chunk
// of a 2-D tensor's rows is a slice of its bytes); otherwise the tensor is read as float
// (dequantized if packed), transformed, and quantized to F. Saving writes what each
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
#include <span>
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

/// @brief One tensor of a checkpoint as a loader sees it: its logical shape (outermost first), the
/// tformer weight format its bytes are in (empty when they are in none, e.g. I64), and the bytes.
struct checkpoint_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string format;
  std::span<const std::byte> bytes;
};

/// @brief A file a model can be loaded from: its tensors by name, as bytes and as floats.
template <class S>
concept checkpoint_source = requires(const S& s, const std::string& name) {
  { s.path() } -> std::convertible_to<std::string>;
  { s.tensor_names() } -> std::same_as<std::vector<std::string>>;
  { s.find_tensor(name) } -> std::same_as<std::optional<checkpoint_tensor>>;
  { s.read_float(name) } -> std::same_as<tensor<float>>;
};

namespace detail {

// fn(F{}) for every format of the list.
template <class Fn, class... F>
void each_format(quant::format_list<F...>, Fn&& fn) {
  (fn(F{}), ...);
}

// A tensor's shape as a tformer shape (rank <= 4).
inline shape to_shape(const std::vector<std::int64_t>& d, const std::string& file, const std::string& name) {
  switch (d.size()) {
    case 0: return {};
    case 1: return {d[0]};
    case 2: return {d[0], d[1]};
    case 3: return {d[0], d[1], d[2]};
    case 4: return {d[0], d[1], d[2], d[3]};
    default:
      throw shape_error("tformer: '" + file + "': tensor '" + name + "' has rank " + std::to_string(d.size()) +
                        ", more than tformer's maximum of 4");
  }
}

// Packed bytes of a tensor in the format called `format`, logical [outer..., cols], as floats.
inline tensor<float> dequantize_bytes(const std::string& file, const checkpoint_tensor& t) {
  if (!quant::is_known_format(t.format))
    throw io_error("tformer: '" + file + "': tensor '" + t.name + "' is in format '" + t.format +
                   "', which this program cannot convert (load it into a parameter of that format)");
  tensor<float> out;
  quant::visit_format(t.format, [&](auto fmt) {
    using F = decltype(fmt);
    std::int64_t rows = 1;
    for (std::size_t i = 0; i + 1 < t.shape.size(); ++i) rows *= t.shape[i];
    const std::int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (cols % F::block_size != 0 || static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(quant::row_bytes<F>(cols)) !=
                                         t.bytes.size())
      throw io_error("tformer: '" + file + "': tensor '" + t.name + "' (" + F::name + ") holds " +
                     std::to_string(t.bytes.size()) + " bytes, which do not fit its shape");
    quant::matrix<F> m(rows, cols);
    if (m.size_bytes() > 0) std::memcpy(m.data(), t.bytes.data(), m.size_bytes());
    out = m.to_float();
    out.reshape(to_shape(t.shape, file, t.name));
  });
  return out;
}

// The source tensor as float after its transform.
template <checkpoint_source Src>
tensor<float> read_source(const Src& f, const source& s) {
  tensor<float> t = f.read_float(s.name);
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

}  // namespace detail

/// @brief A safetensors file as a checkpoint source: F32 / F16 / BF16 tensors are in the formats
/// of those names, and tensors named in the "tformer.formats" metadata are packed formats.
class safetensors_source {
 public:
  explicit safetensors_source(const safetensors_file& f) : f_(&f) {
    const auto it = f.metadata().find(formats_metadata_key);
    if (it == f.metadata().end()) return;
    try {
      const auto j = nlohmann::json::parse(it->second);
      for (const auto& [name, v] : j.items())
        packed_.emplace(name, packed{v.at("format").get<std::string>(), v.at("shape").at(0).get<std::int64_t>(),
                                     v.at("shape").at(1).get<std::int64_t>()});
    } catch (const nlohmann::json::exception& e) {
      throw io_error("tformer: '" + f.path() + "': metadata entry \"" + formats_metadata_key + "\" is malformed: " + e.what());
    }
  }
  std::string path() const { return f_->path(); }
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> names;
    for (const auto& e : f_->entries()) names.push_back(e.name);
    return names;
  }
  std::optional<checkpoint_tensor> find_tensor(const std::string& name) const {
    const auto* e = f_->find(name);
    if (!e) return std::nullopt;
    checkpoint_tensor t{e->name, e->shape, {}, f_->bytes(*e)};
    if (const auto p = packed_.find(name); p != packed_.end()) {
      if (e->dtype_name != "U8" || e->shape.size() != 2 || e->shape[0] != p->second.rows)
        throw io_error("tformer: '" + path() + "': packed tensor '" + name + "' (" + p->second.format +
                       ") must be stored as U8 [rows, row bytes]");
      t.shape = {p->second.rows, p->second.cols};
      t.format = p->second.format;
    } else {
      detail::each_format(quant::known{}, [&](auto fmt) {
        using F = decltype(fmt);
        if constexpr (quant::file_dtype_format<F>)
          if (e->dtype_name == F::file_dtype) t.format = F::name;
      });
    }
    return t;
  }
  tensor<float> read_float(const std::string& name) const {
    const auto t = find_tensor(name);
    if (!t) throw io_error("tformer: safetensors file '" + path() + "' has no tensor '" + name + "'");
    if (packed_.count(name)) return detail::dequantize_bytes(path(), *t);
    return f_->load<float>(name);
  }

 private:
  struct packed {
    std::string format;
    std::int64_t rows = 0, cols = 0;
  };
  const safetensors_file* f_;
  std::map<std::string, packed> packed_;
};

/// @brief Loads every parameter of model m from a checkpoint source through map. Weights in a
/// format take the file's bytes as they are when the file holds that format and the rule does not
/// transpose (a chunk of rows is a slice of the bytes); everything else is read as float,
/// transformed and converted. Throws io_error listing every parameter without a rule or tensor,
/// every tensor of the wrong shape or that cannot be read or transformed, and every tensor
/// neither used nor ignored. Returns the number of parameters loaded.
template <class M, checkpoint_source Src>
std::int64_t load_checkpoint(M& m, const Src& f, const name_map& map) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  std::int64_t loaded = 0;
  m.visit(
      [&](const std::string& name, auto& param) {
        using P = std::remove_reference_t<decltype(param)>;
        const auto src = map.resolve(name);
        if (!src) {
          problems.push_back("parameter '" + name + "' has no rule in the name map");
          return;
        }
        try {
          const auto entry = f.find_tensor(src->name);
          if (!entry) {
            problems.push_back("missing tensor '" + src->name + "' (for parameter '" + name + "')");
            return;
          }
          used.insert(src->name);
          if constexpr (quant::is_matrix<P>) {
            using F = typename P::format;
            auto dims = entry->shape;
            auto bytes = entry->bytes;
            // a chunk of rows of a 2-D tensor in F is a slice of its bytes (a fused QKV projection)
            const bool rows_slice = src->chunks > 1 && dims.size() == 2 && dims[0] > 0 && dims[0] % src->chunks == 0 &&
                                    bytes.size() % static_cast<std::size_t>(dims[0]) == 0;
            if (!src->transpose && (src->chunks == 1 || rows_slice) && entry->format == F::name) {
              if (rows_slice) {
                const std::size_t part = static_cast<std::size_t>(dims[0] / src->chunks);
                const std::size_t row_bytes = bytes.size() / static_cast<std::size_t>(dims[0]);
                bytes = bytes.subspan(static_cast<std::size_t>(src->chunk) * part * row_bytes, part * row_bytes);
                dims[0] = static_cast<std::int64_t>(part);
              }
              const shape stored = detail::to_shape(dims, f.path(), entry->name);
              if (!(stored == param.shape())) {
                problems.push_back("tensor '" + src->name + "' has shape " + stored.to_string() + (rows_slice ? " (one chunk)" : "") +
                                   " but parameter '" + name + "' needs " + param.shape().to_string());
                return;
              }
              if (bytes.size() != param.size_bytes()) {
                problems.push_back("tensor '" + src->name + "' holds " + std::to_string(bytes.size()) + " bytes" +
                                   (rows_slice ? " per chunk" : "") + " but " + F::name + " parameter '" + name + "' needs " +
                                   std::to_string(param.size_bytes()));
                return;
              }
              if (!bytes.empty()) std::memcpy(param.data(), bytes.data(), bytes.size());
              ++loaded;
              return;
            }
          }
          tensor<float> t = detail::read_source(f, *src);
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
  for (const auto& n : f.tensor_names())
    if (!used.count(n) && !map.ignored(n)) problems.push_back("extra tensor '" + n + "' is not used");
  if (!problems.empty()) {
    std::string msg = "tformer: cannot load '" + f.path() + "': " + std::to_string(problems.size()) + " problem(s):";
    for (const auto& p : problems) msg += "\n  " + p;
    throw io_error(msg);
  }
  return loaded;
}

/// @brief load_checkpoint from a safetensors file.
template <class M>
std::int64_t load_safetensors(M& m, const safetensors_file& f, const name_map& map) {
  return load_checkpoint(m, safetensors_source(f), map);
}

/// @brief The map that save_safetensors implies: every parameter of m under its own name.
template <class M>
name_map identity_map(M& m) {
  name_map map;
  m.visit([&](const std::string& name, auto&) { map.add(name, name); }, "");
  return map;
}

/// @brief Writes every parameter of m to path under the checkpoint names map gives them (the names
/// load_checkpoint reads back through the same map), each as it is stored: float tensors and float
/// formats under their dtype (F32, F16, BF16), packed formats as U8 bytes named in the
/// "tformer.formats" metadata (see the file comment). Throws io_error naming the parameter when map
/// has no rule for it, or its rule transposes or takes a chunk (a file could not hold it as it is),
/// or when two parameters map to one name.
template <class M>
void save_safetensors(M& m, const std::filesystem::path& path, const name_map& map) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json formats = nlohmann::ordered_json::object();
  std::vector<std::pair<const std::byte*, std::size_t>> blobs;
  std::uint64_t offset = 0;
  auto add = [&](const std::string& param, const char* dtype, std::vector<std::int64_t> dims, const std::byte* data,
                 std::size_t bytes) -> std::string {
    const auto src = map.resolve(param);
    if (!src) throw io_error("tformer::io::save_safetensors: no name for parameter '" + param + "' in the name map");
    if (src->transpose || src->chunks > 1)
      throw io_error("tformer::io::save_safetensors: parameter '" + param + "' maps to '" + src->name +
                     "' transposed or as a chunk; such a map can only load");
    if (header.contains(src->name))
      throw io_error("tformer::io::save_safetensors: parameter '" + param + "' maps to '" + src->name +
                     "', which another parameter maps to too");
    header[src->name] = {{"dtype", dtype}, {"shape", dims}, {"data_offsets", {offset, offset + bytes}}};
    blobs.emplace_back(data, bytes);
    offset += bytes;
    return src->name;
  };
  m.visit(
      [&](const std::string& name, auto& t) {
        using P = std::remove_reference_t<decltype(t)>;
        if constexpr (quant::is_matrix<P>) {
          using F = typename P::format;
          if constexpr (quant::file_dtype_format<F>) {
            add(name, F::file_dtype, {t.rows(), t.cols()}, t.data(), t.size_bytes());
          } else {
            formats[add(name, "U8", {t.rows(), t.row_bytes()}, t.data(), t.size_bytes())] = {{"format", F::name},
                                                                                             {"shape", {t.rows(), t.cols()}}};
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

/// @brief Writes every parameter of m to path under tformer's own names (identity_map(m)).
template <class M>
void save_safetensors(M& m, const std::filesystem::path& path) {
  save_safetensors(m, path, identity_map(m));
}

}  // namespace tformer::io
