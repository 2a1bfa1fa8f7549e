// Flag checks for the tools' CLI11 front ends (header-only: only apps/ include CLI11).
// Every check fails at parse time with one line naming the flag; CLI11's own Range lets
// NaN through, so floating-point flags are checked for finiteness first.
#pragma once
#include <CLI/CLI.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/version.h"

namespace ilt {

// One line for every parse error: "TOOL: error: --flag: why (see --help)". Help and
// --version keep CLI11's output.
inline void one_line_errors(CLI::App& app, const std::string& tool) {
  app.failure_message([tool](const CLI::App*, const CLI::Error& e) {
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    return tool + ": error: " + what + " (see --help)\n";
  });
}

// --version: "TOOL VERSION (git COMMIT)" and the libraries that shape the tool's output.
inline void add_version_flag(CLI::App& app, const std::string& tool,
                             std::function<std::vector<LibraryVersions>()> libraries) {
  app.set_version_flag(
      "--version", [tool, libraries] { return version_text(tool, libraries()); },
      "Print the version, the git commit and the libraries' versions, and exit");
}

// A finite number in [lo, hi] (open at either end where asked).
inline CLI::Validator Number(double lo, double hi = std::numeric_limits<double>::infinity(), bool lo_open = false,
                             bool hi_open = false) {
  auto show = [](double v) {
    if (std::isinf(v)) return std::string(v > 0 ? "inf" : "-inf");
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  std::string range = std::string(lo_open ? "(" : "[") + show(lo) + ", " + show(hi) + (hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v;
        try {
          size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) return "'" + s + "' is not a number";
        } catch (const std::exception&) {
          return "'" + s + "' is not a number";
        }
        if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
          return "'" + s + "' is outside " + range;
        return std::string();
      },
      "in " + range);
}

// An integer in [lo, hi].
inline CLI::Validator Integer(long long lo, long long hi = std::numeric_limits<long long>::max()) {
  std::string range = "[" + std::to_string(lo) + ", " + (hi == std::numeric_limits<long long>::max() ? std::string("inf") : std::to_string(hi)) + "]";
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        long long v;
        try {
          size_t used = 0;
          v = std::stoll(s, &used);
          if (used != s.size()) return "'" + s + "' is not an integer";
        } catch (const std::exception&) {
          return "'" + s + "' is not an integer (or too large)";
        }
        if (v < lo || v > hi) return "'" + s + "' is outside " + range;
        return std::string();
      },
      "in " + range);
}

}  // namespace ilt
