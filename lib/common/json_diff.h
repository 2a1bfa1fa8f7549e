// Comparing metadata objects (e.g. renderer manifests) key by key.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ilt {

// Keys of `want` whose value `have` lacks or differs in, in `want`'s order; `ignore` keys skipped.
inline std::vector<std::string> differing_keys(const nlohmann::json& want, const nlohmann::json& have,
                                               const std::vector<std::string>& ignore = {}) {
  std::vector<std::string> diff;
  for (auto it = want.begin(); it != want.end(); ++it) {
    bool skip = false;
    for (const auto& k : ignore) skip = skip || k == it.key();
    if (!skip && (!have.contains(it.key()) || have[it.key()] != it.value())) diff.push_back(it.key());
  }
  return diff;
}

}  // namespace ilt
