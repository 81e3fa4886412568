// Reading the parts of a tokenizer.json: each reader gets a json_node (the value, the file name
// and the JSON path that leads to it) so every error names where the bad value is:
//   "tokenizer.json: model.type 'Foo' is not supported"
//   "tokenizer.json: normalizer.normalizers[2].lowercase must be a boolean, not a string"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"

namespace tformer::text {

/// @brief A value inside a tokenizer.json with its file name and JSON path, for error messages.
struct json_node {
  const nlohmann::json& value;
  std::string file;  // the file name shown in errors
  std::string path;  // "model.vocab", "pre_tokenizer.pretokenizers[1]"

  /// @brief The error prefix "file: path".
  std::string where() const { return file + ": " + (path.empty() ? "(top level)" : path); }
  /// @brief A value_error "file: path<suffix> message".
  [[noreturn]] void fail(const std::string& message) const { throw value_error(where() + " " + message); }

  bool has(std::string_view key) const {
    return value.is_object() && value.contains(key) && !value.at(std::string(key)).is_null();
  }
  /// @brief The member key (present, maybe null).
  json_node at(std::string_view key) const {
    if (!value.is_object()) fail("must be a JSON object, not " + std::string(value.type_name()));
    const auto it = value.find(std::string(key));
    if (it == value.end()) json_node{value, file, path}.fail("has no field '" + std::string(key) + "'");
    return {*it, file, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  /// @brief Element i of an array.
  json_node operator[](std::size_t i) const { return {value.at(i), file, path + "[" + std::to_string(i) + "]"}; }

  void require_object() const {
    if (!value.is_object()) fail("must be a JSON object, not " + std::string(value.type_name()));
  }
  void require_array() const {
    if (!value.is_array()) fail("must be a JSON array, not " + std::string(value.type_name()));
  }
  std::string str() const {
    if (!value.is_string()) fail("must be a string, not " + std::string(value.type_name()));
    return value.get<std::string>();
  }
  bool boolean() const {
    if (!value.is_boolean()) fail("must be a boolean, not " + std::string(value.type_name()));
    return value.get<bool>();
  }
  double number() const {
    if (!value.is_number()) fail("must be a number, not " + std::string(value.type_name()));
    return value.get<double>();
  }
  std::int64_t integer() const {
    if (!value.is_number_integer()) fail("must be an integer, not " + std::string(value.type_name()));
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) fail("is too large");
    return value.get<std::int64_t>();
  }
  /// @brief A token id: an integer in [0, 2^31).
  std::int32_t id() const {
    const auto v = integer();
    if (v < 0 || v > INT32_MAX) fail("must be a token id in [0, 2^31), not " + std::to_string(v));
    return static_cast<std::int32_t>(v);
  }

  // Optional members with defaults (absent or null: the default).
  std::string str_or(std::string_view key, std::string def) const { return has(key) ? at(key).str() : std::move(def); }
  bool bool_or(std::string_view key, bool def) const { return has(key) ? at(key).boolean() : def; }
  std::int64_t int_or(std::string_view key, std::int64_t def) const { return has(key) ? at(key).integer() : def; }

  /// @brief The "type" field of a component.
  std::string type() const { return at("type").str(); }
  /// @brief Throws "file: path.type 'T' is not supported".
  [[noreturn]] void unsupported_type(const std::string& what) const {
    throw value_error(where() + ".type '" + type() + "' is not supported (" + what + ")");
  }
};

}  // namespace tformer::text
