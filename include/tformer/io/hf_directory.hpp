// A Hugging Face model directory: config.json, the weights in model.safetensors or in shards listed
// by model.safetensors.index.json, and tokenizer.json. The directory is a checkpoint source
// (io/checkpoint.hpp) over all of its shards, so io::load_checkpoint(model, dir, map) loads a model
// from it; the family presets (models/bert.hpp, models/gpt2.hpp, models/llama.hpp, models/t5.hpp)
// read their sizes from its config with json_fields.
//
//   io::hf_directory dir("all-MiniLM-L6-v2");
//   models::encoder<models::bert<>> m(models::bert_config(dir));   // or models::load_bert(dir)
//   io::load_checkpoint(m, dir, models::hf_bert_map(dir));
//
// Every rule a file breaks throws config_error (an io_error) naming the file and the field, the
// byte offset of malformed JSON, or the tensor and shard of a mismatched index.
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "checkpoint.hpp"
#include "safetensors.hpp"

namespace tformer::io {

/// @brief A configuration file that is malformed, lacks a field or holds a contradictory one. The
/// message names the file and the field (or the byte offset of a JSON syntax error).
struct config_error : io_error {
  config_error(const std::string& file, const std::string& field, const std::string& why)
      : io_error("tformer: " + file + ": " + (field.empty() ? "" : "field '" + field + "' ") + why), file_(file), field_(field) {}
  /// @brief The file the error is in.
  const std::string& file() const noexcept { return file_; }
  /// @brief The field (a dotted path such as "rope_scaling.rope_type"); empty for syntax errors.
  const std::string& field() const noexcept { return field_; }

 private:
  std::string file_, field_;
};

/// @brief JSON text parsed, or config_error naming file and the byte offset of the first error.
inline nlohmann::json parse_json_text(std::string_view text, const std::string& file) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    if (const auto at = why.find("parse error"); at != std::string::npos) why = why.substr(at);
    throw config_error(file, "", "is not valid JSON at byte " + std::to_string(e.byte) + " (" + why + ")");
  } catch (const nlohmann::json::exception& e) {
    // a number no double holds ("number overflow parsing '1e999'"): the byte where the number ends
    std::string why = e.what();
    if (const auto at = why.find("] "); at != std::string::npos) why = why.substr(at + 2);
    std::string where;
    if (const auto q = why.find('\''), q2 = why.rfind('\''); q != std::string::npos && q2 > q) {
      const auto at = text.find(std::string_view(why).substr(q + 1, q2 - q - 1));
      if (at != std::string_view::npos) where = " at byte " + std::to_string(at + (q2 - q - 1));
    }
    throw config_error(file, "", "is not valid JSON" + where + " (" + why + ")");
  }
}

/// @brief A JSON file parsed (see parse_json_text); config_error when it cannot be read.
inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path.string(), "", "cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw config_error(path.string(), "", "cannot be read");
  return parse_json_text(text.str(), path.string());
}

/// @brief Typed access to the fields of a JSON object read from `file`: each accessor names the
/// file and the field in a config_error when the field is missing or of the wrong type. A field
/// that holds null counts as missing.
class json_fields {
 public:
  json_fields(const nlohmann::json& j, std::string file, std::string prefix = "")
      : j_(&j), file_(std::move(file)), prefix_(std::move(prefix)) {
    if (!j.is_object()) fail("", std::string("is ") + kind(j) + ", expected an object");
  }

  const std::string& file() const noexcept { return file_; }
  const nlohmann::json& json() const noexcept { return *j_; }

  /// @brief True when the field is present and not null.
  bool has(const std::string& key) const { return find(key) != nullptr; }

  std::int64_t integer(const std::string& key) const { return as_integer(key, at(key)); }
  std::int64_t integer_or(const std::string& key, std::int64_t fallback) const {
    const auto* v = find(key);
    return v ? as_integer(key, *v) : fallback;
  }
  /// @brief An integer field that must be >= minimum (sizes: 1).
  std::int64_t integer_at_least(const std::string& key, std::int64_t minimum) const {
    return check_min(key, integer(key), minimum);
  }
  std::int64_t integer_at_least_or(const std::string& key, std::int64_t minimum, std::int64_t fallback) const {
    return has(key) ? integer_at_least(key, minimum) : fallback;
  }
  double number(const std::string& key) const { return as_number(key, at(key)); }
  double number_or(const std::string& key, double fallback) const {
    const auto* v = find(key);
    return v ? as_number(key, *v) : fallback;
  }
  std::string string(const std::string& key) const { return as_string(key, at(key)); }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    const auto* v = find(key);
    return v ? as_string(key, *v) : fallback;
  }
  bool boolean(const std::string& key) const { return as_bool(key, at(key)); }
  bool boolean_or(const std::string& key, bool fallback) const {
    const auto* v = find(key);
    return v ? as_bool(key, *v) : fallback;
  }
  /// @brief A nested object as json_fields (its errors name "key.field"), or nothing when absent.
  std::optional<json_fields> object_or_none(const std::string& key) const {
    const auto* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_object()) fail(key, std::string("is ") + kind(*v) + ", expected an object");
    return json_fields(*v, file_, name(key) + ".");
  }
  /// @brief An array of strings, or nothing when absent.
  std::optional<std::vector<std::string>> strings_or_none(const std::string& key) const {
    const auto* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_array()) fail(key, std::string("is ") + kind(*v) + ", expected an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v->size(); ++i) out.push_back(as_string(key + "[" + std::to_string(i) + "]", (*v)[i]));
    return out;
  }

  /// @brief Throws config_error naming the file and this field.
  [[noreturn]] void fail(const std::string& key, const std::string& why) const { throw config_error(file_, name(key), why); }

  /// @brief The JSON type of v in words ("a string", "an array", ...).
  static const char* kind(const nlohmann::json& v) {
    switch (v.type()) {
      case nlohmann::json::value_t::null: return "null";
      case nlohmann::json::value_t::object: return "an object";
      case nlohmann::json::value_t::array: return "an array";
      case nlohmann::json::value_t::string: return "a string";
      case nlohmann::json::value_t::boolean: return "a boolean";
      case nlohmann::json::value_t::number_integer:
      case nlohmann::json::value_t::number_unsigned: return "an integer";
      case nlohmann::json::value_t::number_float: return "a number with a fraction";
      default: return "binary data";
    }
  }

 private:
  std::string name(const std::string& key) const { return key.empty() && !prefix_.empty() ? prefix_.substr(0, prefix_.size() - 1) : prefix_ + key; }
  const nlohmann::json* find(const std::string& key) const {
    const auto it = j_->find(key);
    return it == j_->end() || it->is_null() ? nullptr : &*it;
  }
  const nlohmann::json& at(const std::string& key) const {
    const auto* v = find(key);
    if (!v) fail(key, "is missing");
    return *v;
  }
  std::int64_t as_integer(const std::string& key, const nlohmann::json& v) const {
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) fail(key, "is too large: " + std::to_string(u));
      return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<std::int64_t>();
    fail(key, std::string("is ") + kind(v) + ", expected an integer");
  }
  double as_number(const std::string& key, const nlohmann::json& v) const {
    if (!v.is_number()) fail(key, std::string("is ") + kind(v) + ", expected a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(key, "is not a finite number");
    return d;
  }
  std::string as_string(const std::string& key, const nlohmann::json& v) const {
    if (!v.is_string()) fail(key, std::string("is ") + kind(v) + ", expected a string");
    return v.get<std::string>();
  }
  bool as_bool(const std::string& key, const nlohmann::json& v) const {
    if (!v.is_boolean()) fail(key, std::string("is ") + kind(v) + ", expected true or false");
    return v.get<bool>();
  }
  std::int64_t check_min(const std::string& key, std::int64_t v, std::int64_t minimum) const {
    if (v < minimum) fail(key, "is " + std::to_string(v) + ", expected at least " + std::to_string(minimum));
    return v;
  }

  const nlohmann::json* j_;
  std::string file_, prefix_;
};

namespace detail {

// "[i]." (the prefix of the fields of array element i; built by appending, which GCC 12's
// -Wstringop-overflow does not misread).
inline std::string element_prefix(std::size_t i) {
  std::string s(1, '[');
  s += std::to_string(i);
  s += "].";
  return s;
}

// A shard's file name from an index: a plain name inside the directory.
inline bool plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace detail

/// @brief The weight_map of a model.safetensors.index.json text: tensor name -> shard file name.
/// Throws config_error naming the file and the field (or tensor) for malformed JSON, a missing or
/// non-object weight_map, a shard name that is not a string or not a plain file name.
inline std::map<std::string, std::string> parse_safetensors_index(std::string_view text, const std::string& file) {
  const nlohmann::json j = parse_json_text(text, file);
  const json_fields f(j, file);
  const auto weight_map = f.object_or_none("weight_map");
  if (!weight_map) f.fail("weight_map", "is missing");
  std::map<std::string, std::string> out;
  for (const auto& [tensor_name, shard] : weight_map->json().items()) {
    const std::string field = "weight_map." + tensor_name;
    if (!shard.is_string()) throw config_error(file, field, std::string("is ") + json_fields::kind(shard) + ", expected a shard file name");
    const auto name = shard.get<std::string>();
    if (!detail::plain_file_name(name))
      throw config_error(file, field, "names shard '" + name + "', which is not a file name inside the model directory");
    out.emplace(tensor_name, name);
  }
  if (out.empty()) f.fail("weight_map", "lists no tensors");
  return out;
}

/// @brief A Hugging Face model directory (see the file comment); a checkpoint_source over its
/// weights. Opening it parses config.json and maps every shard; the index, when there is one, must
/// agree with the shards: every listed tensor in its shard, every shard's tensor listed, no tensor
/// in two shards.
class hf_directory {
 public:
  explicit hf_directory(const std::filesystem::path& dir) : dir_(dir), root_(dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) throw io_error("tformer: '" + dir_.string() + "' is not a directory");
    // A sentence-transformers directory may keep the transformer in a module subdirectory.
    if (!fs::exists(dir_ / "config.json", ec) && fs::exists(dir_ / "modules.json", ec)) {
      const auto sub = transformer_module_path();
      if (!sub.empty()) dir_ /= sub;
    }
    config_path_ = (dir_ / "config.json").string();
    if (!fs::exists(config_path_, ec)) throw io_error("tformer: '" + dir_.string() + "' has no config.json");
    config_ = read_json_file(config_path_);
    if (!config_.is_object()) throw config_error(config_path_, "", std::string("is ") + json_fields::kind(config_) + ", expected an object");
    if (fs::exists(dir_ / "tokenizer.json", ec)) tokenizer_ = dir_ / "tokenizer.json";
    open_weights();
  }
  hf_directory(const hf_directory&) = delete;
  hf_directory& operator=(const hf_directory&) = delete;

  /// @brief The directory (the transformer module's, for a sentence-transformers directory).
  const std::filesystem::path& directory() const noexcept { return dir_; }
  /// @brief The directory given to the constructor.
  const std::filesystem::path& root() const noexcept { return root_; }
  /// @brief config.json, parsed.
  const nlohmann::json& config() const noexcept { return config_; }
  const std::string& config_path() const noexcept { return config_path_; }
  /// @brief config.json's fields, with errors naming config.json.
  json_fields fields() const { return json_fields(config_, config_path_); }
  /// @brief config.json's model_type ("bert", "llama", ...).
  std::string model_type() const { return fields().string("model_type"); }
  /// @brief tokenizer.json, when the directory has one.
  const std::optional<std::filesystem::path>& tokenizer_path() const noexcept { return tokenizer_; }
  /// @brief The safetensors files of the weights (one, or the index's shards in name order).
  const std::deque<safetensors_file>& shards() const noexcept { return files_; }
  /// @brief True when the checkpoint has a tensor of this name.
  bool has_tensor(const std::string& name) const { return where_.count(name) != 0; }
  /// @brief The checkpoint's tensor names start with prefix (e.g. "bert." for a BertFor* model).
  bool has_prefix(const std::string& prefix) const {
    const auto it = where_.lower_bound(prefix);
    return it != where_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
  }

  // checkpoint_source
  std::string path() const { return weights_path_; }
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> names;
    names.reserve(where_.size());
    for (const auto& kv : where_) names.push_back(kv.first);
    return names;
  }
  std::optional<checkpoint_tensor> find_tensor(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) return std::nullopt;
    return sources_[it->second].find_tensor(name);
  }
  tensor<float> read_float(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) throw io_error("tformer: '" + weights_path_ + "' has no tensor '" + name + "'");
    return sources_[it->second].read_float(name);
  }

 private:
  // The path of the sentence_transformers.models.Transformer module in modules.json ("" if none).
  std::string transformer_module_path() const {
    const auto file = (dir_ / "modules.json").string();
    const auto j = read_json_file(file);
    if (!j.is_array()) throw config_error(file, "", std::string("is ") + json_fields::kind(j) + ", expected an array of modules");
    for (std::size_t i = 0; i < j.size(); ++i) {
      const json_fields m(j[i], file, detail::element_prefix(i));
      if (m.string("type") == "sentence_transformers.models.Transformer") {
        const auto p = m.string_or("path", "");
        if (!p.empty() && !detail::plain_file_name(p)) m.fail("path", "names '" + p + "', not a subdirectory of the model directory");
        return p;
      }
    }
    return "";
  }

  void open_weights() {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path single = dir_ / "model.safetensors", index = dir_ / "model.safetensors.index.json";
    if (fs::exists(single, ec)) {  // as transformers: the single file first
      files_.emplace_back(single);
      weights_path_ = single.string();
      sources_.emplace_back(files_.back());
      for (const auto& e : files_.back().entries()) where_.emplace(e.name, 0);
      return;
    }
    if (!fs::exists(index, ec)) {
      std::string why = "has neither model.safetensors nor model.safetensors.index.json";
      if (fs::exists(dir_ / "pytorch_model.bin", ec) || fs::exists(dir_ / "pytorch_model.bin.index.json", ec))
        why += " (only PyTorch pickles, which tformer does not read: convert them to safetensors)";
      throw io_error("tformer: '" + dir_.string() + "' " + why);
    }
    weights_path_ = index.string();
    std::ifstream in(index, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw config_error(weights_path_, "", "cannot be read");
    const auto listed = parse_safetensors_index(text.str(), weights_path_);
    std::map<std::string, std::size_t> shard_ids;  // shard file -> index in files_
    for (const auto& [tensor_name, shard] : listed) {
      if (shard_ids.count(shard)) continue;
      if (!fs::exists(dir_ / shard, ec))
        throw config_error(weights_path_, "weight_map." + tensor_name, "names shard '" + shard + "', which does not exist in '" +
                                                                          dir_.string() + "'");
      shard_ids.emplace(shard, 0);
    }
    for (auto& [shard, id] : shard_ids) {  // name order
      id = files_.size();
      files_.emplace_back(dir_ / shard);
      sources_.emplace_back(files_.back());
    }
    for (const auto& [tensor_name, shard] : listed) {
      const std::size_t id = shard_ids.at(shard);
      if (!files_[id].find(tensor_name))
        throw config_error(weights_path_, "weight_map." + tensor_name, "names shard '" + shard + "', which has no tensor '" +
                                                                          tensor_name + "'");
      where_.emplace(tensor_name, id);
    }
    for (const auto& [shard, id] : shard_ids)
      for (const auto& e : files_[id].entries()) {
        const auto it = listed.find(e.name);
        if (it == listed.end())
          throw config_error(weights_path_, "weight_map", "does not list tensor '" + e.name + "' of shard '" + shard + "'");
        if (it->second != shard)
          throw config_error(weights_path_, "weight_map." + e.name, "names shard '" + it->second + "', but shard '" + shard +
                                                                       "' holds the tensor too (a tensor in two shards)");
      }
  }

  std::filesystem::path dir_, root_;
  std::string config_path_, weights_path_;
  nlohmann::json config_;
  std::optional<std::filesystem::path> tokenizer_;
  std::deque<safetensors_file> files_;    // the shards, in name order (addresses stay put)
  std::deque<safetensors_source> sources_;  // sources_[i] reads files_[i]
  std::map<std::string, std::size_t> where_;  // tensor name -> shard index
};

static_assert(checkpoint_source<hf_directory>);

}  // namespace tformer::io
