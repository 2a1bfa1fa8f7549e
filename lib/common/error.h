// Errors: one exception type whose message is the single line a user sees.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace ilt {

// Every user-facing failure is an ilt::Error with a one-line message that names the file,
// record or byte offset. Apps print it as "ilt-TOOL: error: MESSAGE" and exit non-zero.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The first line of a message: LibTorch's errors append a C++ stack trace after it.
inline std::string first_line(const std::string& what) { return what.substr(0, what.find('\n')); }

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ilt
