// Loading a model's parameters from safetensors files written by other tools, through a name map
// from tformer's parameter names to the checkpoint's; and saving under tformer's own names.
//
// A name map is a list of rules "tformer pattern -> checkpoint pattern", where {i} stands for a
// layer number, plus an optional transform: transpose a 2-D tensor (GPT-2's Conv1D stores
// [in, out]) and/or take chunk c of n equal parts along dimension 0 (fused QKV projections).
// Loading reports every missing, extra and mis-shaped tensor by name in one io_error.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/tensor.hpp"
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

namespace detail {

// The source tensor as float after its transform.
inline tensor<float> read_source(const safetensors_file& f, const source& s) {
  tensor<float> t = f.load<float>(s.name);
  if (s.transpose) {
    if (t.rank() != 2)
      throw shape_error("tformer: checkpoint tensor '" + s.name + "' " + t.shape().to_string() +
                        " cannot be transposed: it is not 2-D");
    tensor<float> tt(shape{t.dim(1), t.dim(0)});
    for (std::int64_t i = 0; i < t.dim(0); ++i)
      for (std::int64_t j = 0; j < t.dim(1); ++j) tt(j, i) = t(i, j);
    t = std::move(tt);
  }
  if (s.chunks > 1) {
    if (t.rank() < 1 || t.dim(0) % s.chunks != 0)
      throw shape_error("tformer: checkpoint tensor '" + s.name + "' " + t.shape().to_string() + " does not split into " +
                        std::to_string(s.chunks) + " equal parts along dimension 0");
    const std::int64_t part = t.dim(0) / s.chunks;
    t = tensor<float>::copy_of(t.view().slice(0, s.chunk * part, (s.chunk + 1) * part));
  }
  return t;
}

}  // namespace detail

/// @brief Loads every parameter of model m from f through map. Throws io_error listing every
/// parameter without a rule or tensor, every tensor of the wrong shape, and every checkpoint
/// tensor neither used nor ignored. Returns the number of parameters loaded.
template <class M>
std::int64_t load_safetensors(M& m, const safetensors_file& f, const name_map& map) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  std::int64_t loaded = 0;
  m.visit(
      [&](const std::string& name, auto& param) {
        using T = typename std::remove_reference_t<decltype(param)>::value_type;
        const auto src = map.resolve(name);
        if (!src) {
          problems.push_back("parameter '" + name + "' has no rule in the name map");
          return;
        }
        if (!f.find(src->name)) {
          problems.push_back("missing tensor '" + src->name + "' (for parameter '" + name + "')");
          return;
        }
        used.insert(src->name);
        tensor<float> t = detail::read_source(f, *src);
        if (!(t.shape() == param.shape())) {
          problems.push_back("tensor '" + src->name + "' has shape " + t.shape().to_string() + " but parameter '" + name +
                             "' needs " + param.shape().to_string());
          return;
        }
        if constexpr (std::is_same_v<T, float>)
          std::copy_n(t.data(), t.numel(), param.data());
        else
          convert(t.data(), param.data(), static_cast<std::size_t>(t.numel()));
        ++loaded;
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

/// @brief Writes every parameter of m to path under tformer's names (F32, or BF16 for bf16 storage).
template <class M>
void save_safetensors(M& m, const std::filesystem::path& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::vector<std::pair<const std::byte*, std::size_t>> blobs;
  std::uint64_t offset = 0;
  m.visit(
      [&](const std::string& name, auto& t) {
        using T = typename std::remove_reference_t<decltype(t)>::value_type;
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, bf16>, "save_safetensors: f32 or bf16 parameters");
        const std::size_t bytes = static_cast<std::size_t>(t.numel()) * sizeof(T);
        std::vector<std::int64_t> dims;
        for (int i = 0; i < t.rank(); ++i) dims.push_back(t.dim(i));
        header[name] = {{"dtype", std::is_same_v<T, float> ? "F32" : "BF16"}, {"shape", dims}, {"data_offsets", {offset, offset + bytes}}};
        blobs.emplace_back(reinterpret_cast<const std::byte*>(t.data()), bytes);
        offset += bytes;
      },
      "");
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
