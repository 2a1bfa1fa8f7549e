// Files and pipes: "-" means stdin/stdout.
//
// Outputs: a path that does not exist yet or names a regular file is written to NAME.tmp
// and renamed into place by commit(), so a killed or failed run never leaves a half file
// under the real name and never touches the previous complete one. Anything else (a
// character device such as /dev/null, a FIFO, a socket, a symlink such as /dev/stdout) is
// written directly: renaming over it would replace the node with a regular file. A
// directory is refused before anything is created. Every write, flush and close is checked.
//
// Temporary files and folders are registered while they exist: on SIGINT, SIGTERM, SIGHUP
// or SIGPIPE they are removed before the process dies of the signal (see
// remove_temporaries_on_signals), and on an exception their owner's destructor removes them.
#pragma once
#include <atomic>
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
  void commit();  // flush, close; for regular files fsync and rename NAME.tmp -> NAME
  const std::string& path() const { return path_; }
  // True when writing through to a device, FIFO, socket, symlink or stdout (no rename).
  bool direct() const { return tmp_.empty(); }

 private:
  const std::string& name() const;  // what messages call the file being written
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  bool is_stdout_ = false;
  bool committed_ = false;
  int handle_ = -1;  // registered temporary
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

// Writes a whole file atomically (NAME.tmp then rename; devices and pipes directly).
void write_file_atomic(const std::string& path, std::string_view data);

// fsyncs a directory, so that renames inside it survive a crash (checkpoints, `latest`).
void sync_directory(const std::string& dir);

// Fails with one line when PATH exists and is a directory (outputs that must be files).
void check_not_directory(const std::string& path);

// ---- temporaries and signals

// Registers a temporary file or folder (removed, recursively for a folder, if a signal
// kills the process) until unregistered. Returns a handle for unregister_temporary.
int register_temporary(const std::string& path, bool is_directory = false);
void unregister_temporary(int handle);

// A folder created by this run, removed (recursively) by the destructor unless kept;
// registered for signals while it exists.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(std::string path);  // removes leftovers, creates it afresh
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::string& path() const { return path_; }
  void release();  // the folder was renamed into place: stop tracking it

 private:
  std::string path_;
  int handle_ = -1;
};

// Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE (unless the process ignores
// them) that remove every registered temporary and then die of the signal as before.
// Called by the first register_temporary; idempotent.
void remove_temporaries_on_signals();

// Long jobs (training) stop cleanly instead: after this call the first SIGINT or SIGTERM
// only sets stop_signal(); a second one removes temporaries and kills the process.
void stop_gracefully_on_signals();
// The signal that asked to stop (0: none).
int stop_signal();

// Writes to stdout, failing with "<stdout>: write failed: ..." (fmt::print would throw a
// message that names no file).
void print_stdout(std::string_view s);

// Checks that everything printed to stdout reached the OS (fflush, ferror); throws
// ilt::Error naming <stdout> otherwise. run_tool calls it after a tool's body.
void check_stdout();

}  // namespace ilt
