// Shared helpers of the fuzz targets (tests/fuzz/fuzz_*.cpp): the input as a file or as a
// pipe without touching the disk, and a check that aborts (a finding) when an invariant fails.
//
// Every target treats ilt::Error as the expected rejection of bad input; any other exception
// escaping LLVMFuzzerTestOneInput, a crash, a sanitizer report, a failed FUZZ_CHECK or a
// huge allocation is a finding.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.h"

// Aborts with a message: the fuzzer records the input as a crash, the replay test fails.
#define FUZZ_CHECK(cond, ...)                                                                 \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      std::fprintf(stderr, "  " __VA_ARGS__);                                                 \
      std::fprintf(stderr, "\n");                                                             \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace ilt::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n <= 0) {
      std::perror("fuzz: write");
      std::abort();  // the harness, not the input: never expected
    }
    bytes.remove_prefix(size_t(n));
  }
}

// The bytes as a regular file in memory (memfd), opened by path as the tools open files:
// /proc/self/fd/N. One memfd per process, rewritten for every input.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) {
    static int fd = -1;
    if (fd < 0) {
      fd = ::memfd_create("ilt-fuzz", MFD_CLOEXEC);
      if (fd < 0) {
        std::perror("fuzz: memfd_create");
        std::abort();
      }
    }
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
      std::perror("fuzz: memfd reset");
      std::abort();
    }
    write_all(fd, bytes);
    fd_ = fd;
    path_ = "/proc/self/fd/" + std::to_string(fd);
  }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The bytes as a pipe (not seekable: the readers' sequential path), fully written and closed
// at the writing end before the reader opens /proc/self/fd/N. Only for inputs that fit in
// the pipe's buffer (ok() is false otherwise).
class PipeFile {
 public:
  static constexpr size_t kMax = 1 << 20;
  explicit PipeFile(std::string_view bytes) {
    if (bytes.size() > kMax) return;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      std::perror("fuzz: pipe");
      std::abort();
    }
    if (bytes.size() > 65536 && ::fcntl(fds[1], F_SETPIPE_SZ, int(kMax)) < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return;  // the system refuses a larger pipe: no pipe pass for this input
    }
    write_all(fds[1], bytes);
    ::close(fds[1]);
    fd_ = fds[0];
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~PipeFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  PipeFile(const PipeFile&) = delete;
  PipeFile& operator=(const PipeFile&) = delete;
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Makes `fd` (a MemFile's or PipeFile's) also fd 500 and returns that one's path, so that a
// file and a pipe holding the same bytes have the same name in messages and ids.
inline std::string at_fixed_fd(int fd) {
  constexpr int kFixed = 500;
  if (::dup2(fd, kFixed) != kFixed) {
    std::perror("fuzz: dup2");
    std::abort();
  }
  return "/proc/self/fd/" + std::to_string(kFixed);
}

// Runs f(); an ilt::Error (the expected rejection) returns false, anything else escapes.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const ilt::Error&) {
    return false;
  }
}

// Runs f(), which must succeed (e.g. decoding what an encoder just wrote): an ilt::Error
// here is a finding, not a rejection.
template <typename F>
void must(const char* what, F&& f) {
  try {
    f();
  } catch (const ilt::Error& e) {
    std::fprintf(stderr, "FUZZ: %s failed: %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace ilt::fuzz
