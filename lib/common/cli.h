// Shared pieces of the command-line tools: error reporting, thread counts, progress.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace ilt {

// Runs a tool's body: ilt::Error and other exceptions become "TOOL: error: MESSAGE" on
// stderr and exit status 1.
int run_tool(const char* tool, const std::function<int()>& body);

// Default for --threads: every core of this machine.
int default_threads();

// A progress line on stderr, redrawn at most a few times per second, only on a terminal
// (or always with force). finish() prints the final line.
class Progress {
 public:
  Progress(std::string what, uint64_t total, bool force = false);
  void update(uint64_t done, const std::string& extra = "");
  void finish(const std::string& summary);

 private:
  std::string what_;
  uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

// "1.2 MB", "345 k" style numbers for messages.
std::string human(double v);

}  // namespace ilt
