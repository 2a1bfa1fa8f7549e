// One-line messages for JSON read from files (checkpoints, configs, shard headers): keys
// are read through json_get/json_value, whose errors name the key's path
// ("key /latent/heads: expected an integer, got string"), and nlohmann's own messages lose
// their "[json.exception.type_error.302] " prefix.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "common/error.h"
#include "common/io.h"

namespace ilt {

inline std::string json_message(const nlohmann::json::exception& e) {
  std::string s = e.what();
  if (s.rfind("[json.exception.", 0) == 0) {
    size_t close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  return s;
}

namespace detail {
template <typename T>
const char* json_expected() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else return "a value of another type";
}
template <typename T>
bool json_fits(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_unsigned_v<T>) return v.is_number_unsigned();
  else if constexpr (std::is_integral_v<T>) return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else return true;
}
}  // namespace detail

// j[key] as T; `where` is the path of j ("" for the root, "/model" ...). Throws ilt::Error
// "key WHERE/KEY: ..." when missing or of another type.
template <typename T>
T json_get(const nlohmann::json& j, const std::string& key, const std::string& where = "") {
  if (!j.is_object()) fail("key {}: expected an object, got {}", where.empty() ? "/" : where, j.type_name());
  auto it = j.find(key);
  if (it == j.end()) fail("key {}/{}: missing", where, key);
  if (!detail::json_fits<T>(*it)) {
    std::string shown = it->dump();
    if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
    fail("key {}/{}: expected {}, got {} {}", where, key, detail::json_expected<T>(), it->type_name(), shown);
  }
  return it->template get<T>();
}

// As json_get, with a default for a missing key (a key of the wrong type is still an error).
template <typename T>
T json_value(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& where = "") {
  if (j.is_object() && !j.contains(key)) return fallback;
  return json_get<T>(j, key, where);
}

[[noreturn]] inline void fail_json(const std::string& file, const nlohmann::json::exception& e) {
  fail("{}: {}", file, json_message(e));
}

// Parses a JSON file, failing with one line naming the file (and line/column) when broken.
inline nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_all(path));
  } catch (const nlohmann::json::exception& e) {
    fail_json(path, e);
  }
}

}  // namespace ilt
