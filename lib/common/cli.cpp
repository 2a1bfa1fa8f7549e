#include "common/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <thread>

#include "common/error.h"
#include "common/io.h"

namespace ilt {

int run_tool(const char* tool, const std::function<int()>& body) {
  try {
    int status = body();
    check_stdout();  // a report lost on a full disk is a failure (ilt-eval > /dev/full)
    return status;
  } catch (const Error& e) {
    fmt::print(stderr, "{}: error: {}\n", tool, e.what());
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "{}: error: out of memory\n", tool);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: error: {}\n", tool, first_line(e.what()));
  }
  return 1;
}

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

std::string human(double v) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}{}", v, units[u]);
}

Progress::Progress(std::string what, uint64_t total, bool force)
    : what_(std::move(what)), total_(total), enabled_(force || isatty(2)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(uint64_t done, const std::string& extra) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  double s = std::chrono::duration<double>(now - start_).count();
  std::string eta;
  if (total_ && done)
    eta = fmt::format(" {:.0f}% eta {:.0f}s", 100.0 * done / total_, s * (double(total_) / done - 1));
  fmt::print(stderr, "\r{}: {}{} {:.1f}s {}\033[K", what_, human(double(done)), eta, s, extra);
}

void Progress::finish(const std::string& summary) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (enabled_) fmt::print(stderr, "\r\033[K");
  fmt::print(stderr, "{}: {} in {:.2f}s\n", what_, summary, s);
}

}  // namespace ilt
