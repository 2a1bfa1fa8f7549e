// Files and pipes: "-" means stdin/stdout. Outputs go to NAME.tmp and are renamed into
// place only by commit(), so a killed run never leaves a half file under the real name.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace ilt {

class OutputFile {
 public:
  explicit OutputFile(std::string path);  // "-" writes to stdout
  ~OutputFile();                          // removes NAME.tmp unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  uint64_t offset() const { return offset_; }
  void flush();   // hand what was written to the OS (streaming output)
  void commit();  // flush, close, rename NAME.tmp -> NAME
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  bool is_stdout_ = false;
  bool committed_ = false;
  uint64_t offset_ = 0;
};

class InputFile {
 public:
  explicit InputFile(std::string path);  // "-" reads stdin
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Reads up to n bytes; returns fewer only at end of input. Throws on read errors.
  size_t read(void* data, size_t n);
  // Reads what is available, up to n bytes (at least 1 unless at the end): for pipes read
  // as they come. Do not mix with read() on the same file.
  size_t read_some(void* data, size_t n);
  bool seekable() const { return seekable_; }
  void seek(uint64_t offset);
  uint64_t size();  // seekable inputs only
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }
  // Display name for messages: "<stdin>" for "-".
  const std::string& name() const { return name_; }

 private:
  std::string path_, name_;
  FILE* f_ = nullptr;
  bool is_stdin_ = false;
  bool seekable_ = false;
  uint64_t offset_ = 0;
};

// Reads a whole file (or stdin) into memory.
std::string read_all(const std::string& path);

// Writes a whole file atomically (NAME.tmp then rename).
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace ilt
