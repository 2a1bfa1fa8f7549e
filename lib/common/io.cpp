#include "common/io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace ilt {

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    is_stdout_ = true;
    f_ = stdout;
    return;
  }
  tmp_ = path_ + ".tmp";
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail("{}: cannot create: {}", tmp_, std::strerror(errno));
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
}

OutputFile::~OutputFile() {
  if (committed_ || is_stdout_) return;
  if (f_) std::fclose(f_);
  std::remove(tmp_.c_str());
}

void OutputFile::write(const void* data, size_t n) {
  if (committed_) fail("{}: write after commit", path_);
  if (n && std::fwrite(data, 1, n, f_) != n)
    fail("{}: write failed: {}", is_stdout_ ? "<stdout>" : tmp_, std::strerror(errno));
  offset_ += n;
}

void OutputFile::flush() {
  if (!committed_ && std::fflush(f_) != 0)
    fail("{}: write failed: {}", is_stdout_ ? "<stdout>" : tmp_, std::strerror(errno));
}

void OutputFile::commit() {
  if (committed_) return;
  if (std::fflush(f_) != 0)
    fail("{}: write failed: {}", is_stdout_ ? "<stdout>" : tmp_, std::strerror(errno));
  committed_ = true;
  if (is_stdout_) return;
  if (::fsync(fileno(f_)) != 0 && errno != EINVAL)
    fail("{}: fsync failed: {}", tmp_, std::strerror(errno));
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) fail("{}: close failed: {}", tmp_, std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("{}: cannot rename from {}: {}", path_, tmp_, std::strerror(errno));
}

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    is_stdin_ = true;
    name_ = "<stdin>";
    f_ = stdin;
  } else {
    name_ = path_;
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
