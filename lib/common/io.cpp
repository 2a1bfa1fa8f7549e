#include "common/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/error.h"

namespace ilt {

// ---------------------------------------------------------------------------- temporaries

namespace {

// A fixed table the signal handler can read without locks or allocation. A slot is free
// (0), being filled (1), or holds a file (2) or a folder (3).
constexpr int kSlots = 256;
constexpr size_t kPathMax = 4096;
struct Slot {
  std::atomic<int> state{0};
  char path[kPathMax];
};
Slot g_slots[kSlots];
std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_graceful{false};
std::once_flag g_install_once;

// Removes a folder's entries (one level is all ilt creates: checkpoint files) and the
// folder, with system calls only, from a signal handler.
void remove_tree_in_handler(const char* path) {
  int fd = ::open(path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    DIR* d = ::fdopendir(fd);
    if (d) {
      while (struct dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        ::unlinkat(fd, e->d_name, 0);
      }
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  ::rmdir(path);
}

void remove_registered() {
  for (auto& s : g_slots) {
    int st = s.state.load();
    if (st == 2) ::unlink(s.path);
    if (st == 3) remove_tree_in_handler(s.path);
  }
}

extern "C" void on_signal(int sig) {
  if (g_graceful.load() && (sig == SIGINT || sig == SIGTERM) && g_stop_signal.load() == 0) {
    g_stop_signal.store(sig);
    const char msg[] = "\nilt: stopping at the end of this step (signal again to abort)\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    return;
  }
  remove_registered();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction old;
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    if (old.sa_handler == SIG_IGN) continue;  // e.g. nohup, or a shell's background job
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace

void remove_temporaries_on_signals() { std::call_once(g_install_once, install_handlers); }

void stop_gracefully_on_signals() {
  g_graceful.store(true);
  remove_temporaries_on_signals();
}

int stop_signal() { return g_stop_signal.load(); }

int register_temporary(const std::string& path, bool is_directory) {
  remove_temporaries_on_signals();
  if (path.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
      g_slots[i].state.store(is_directory ? 3 : 2);
      return i;
    }
  }
  return -1;  // table full: this temporary is still removed on failure, not on signals
}

void unregister_temporary(int handle) {
  if (handle >= 0 && handle < kSlots) g_slots[handle].state.store(0);
}

TemporaryDirectory::TemporaryDirectory(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(path_, ec);  // a leftover of a killed run
  handle_ = register_temporary(path_, true);
  fs::create_directories(path_, ec);
  if (ec) {
    unregister_temporary(handle_);
    fail("{}: cannot create: {}", path_, ec.message());
  }
}

TemporaryDirectory::~TemporaryDirectory() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  unregister_temporary(handle_);
}

void TemporaryDirectory::release() {
  unregister_temporary(handle_);
  path_.clear();
}

// ---------------------------------------------------------------------------- outputs

namespace {
const std::string kStdout = "<stdout>";
}  // namespace

void check_not_directory(const std::string& path) {
  struct stat st;
  if (path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail("{}: is a directory (give a file name)", path);
}

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    is_stdout_ = true;
    f_ = stdout;
    return;
  }
  if (path_.empty()) fail("empty output file name");
  check_not_directory(path_);
  struct stat st;
  bool atomic = ::lstat(path_.c_str(), &st) != 0 ? errno == ENOENT : S_ISREG(st.st_mode);
  if (atomic) {
    tmp_ = path_ + ".tmp";
    handle_ = register_temporary(tmp_);
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) {
      int err = errno;
      unregister_temporary(handle_);
      fail("{}: cannot create: {}", tmp_, std::strerror(err));
    }
  } else {
    // Devices, FIFOs, sockets and symlinks (/dev/stdout): written through, never replaced.
    f_ = std::fopen(path_.c_str(), "wb");
    if (!f_) fail("{}: cannot open for writing: {}", path_, std::strerror(errno));
  }
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
}

const std::string& OutputFile::name() const { return is_stdout_ ? kStdout : tmp_.empty() ? path_ : tmp_; }

OutputFile::~OutputFile() {
  if (committed_ || is_stdout_) return;
  if (f_) std::fclose(f_);
  if (!tmp_.empty()) {
    std::remove(tmp_.c_str());
    unregister_temporary(handle_);
  }
}

void OutputFile::write(const void* data, size_t n) {
  if (committed_) fail("{}: write after commit", path_);
  if (n && std::fwrite(data, 1, n, f_) != n) fail("{}: write failed: {}", name(), std::strerror(errno));
  offset_ += n;
}

void OutputFile::flush() {
  if (!committed_ && std::fflush(f_) != 0) fail("{}: write failed: {}", name(), std::strerror(errno));
}

void OutputFile::commit() {
  if (committed_) return;
  if (std::fflush(f_) != 0 || std::ferror(f_)) fail("{}: write failed: {}", name(), std::strerror(errno));
  if (is_stdout_) {
    committed_ = true;
    return;
  }
  if (!tmp_.empty() && ::fsync(fileno(f_)) != 0 && errno != EINVAL)
    fail("{}: fsync failed: {}", tmp_, std::strerror(errno));
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) fail("{}: close failed: {}", name(), std::strerror(errno));
  if (!tmp_.empty() && std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("{}: cannot rename from {}: {}", path_, tmp_, std::strerror(errno));
  committed_ = true;
  if (!tmp_.empty()) unregister_temporary(handle_);
}

void print_stdout(std::string_view s) {
  if (!s.empty() && std::fwrite(s.data(), 1, s.size(), stdout) != s.size())
    fail("<stdout>: write failed: {}", std::strerror(errno));
}

void check_stdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    int err = errno;
    std::clearerr(stdout);
    fail("<stdout>: write failed: {}", std::strerror(err ? err : EIO));
  }
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("{}: cannot open folder to sync: {}", dir, std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) fail("{}: fsync failed: {}", dir, std::strerror(err));
}

// ---------------------------------------------------------------------------- inputs

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    is_stdin_ = true;
    name_ = "<stdin>";
    f_ = stdin;
  } else {
    name_ = path_;
    struct stat st;
    if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("{}: is a directory, not a file", path_);
    f_ = std::fopen(path_.c_str(), "rb");
    if (!f_) fail("{}: cannot open: {}", path_, std::strerror(errno));
  }
  struct stat st;
  seekable_ = fstat(fileno(f_), &st) == 0 && S_ISREG(st.st_mode);
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
}

InputFile::~InputFile() {
  if (f_ && !is_stdin_) std::fclose(f_);
}

size_t InputFile::read(void* data, size_t n) {
  size_t got = n ? std::fread(data, 1, n, f_) : 0;
  if (got < n && std::ferror(f_)) fail("{}: read error at byte {}: {}", name_, offset_ + got, std::strerror(errno));
  offset_ += got;
  return got;
}

size_t InputFile::read_some(void* data, size_t n) {
  while (true) {
    ssize_t got = ::read(fileno(f_), data, n);
    if (got >= 0) {
      offset_ += uint64_t(got);
      return size_t(got);
    }
    if (errno != EINTR) fail("{}: read error at byte {}: {}", name_, offset_, std::strerror(errno));
  }
}

void InputFile::seek(uint64_t offset) {
  if (!seekable_) fail("{}: cannot seek in a pipe", name_);
  if (fseeko(f_, off_t(offset), SEEK_SET) != 0) fail("{}: seek to byte {} failed", name_, offset);
  offset_ = offset;
}

uint64_t InputFile::size() {
  struct stat st;
  if (fstat(fileno(f_), &st) != 0) fail("{}: cannot stat", name_);
  return uint64_t(st.st_size);
}

std::string read_all(const std::string& path) {
  InputFile in(path);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = in.read(buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

void write_file_atomic(const std::string& path, std::string_view data) {
  OutputFile out(path);
  out.write(data);
  out.commit();
}

}  // namespace ilt
