// Reading documents from text inputs: one per line, blank-line-separated paragraphs, or
// JSONL. Inputs are files or "-" (stdin). Invalid UTF-8 is an error naming the input, line
// and byte offset, unless the policy says replace or skip.
#pragma once
#include <memory>
#include <string>

#include "common/hash.h"
#include "common/io.h"

namespace ilt {

enum class InputFormat { Lines, Paragraphs, Jsonl };
enum class InvalidUtf8 { Error, Replace, Skip };

InputFormat parse_input_format(const std::string& s);
// The format named by `format`, or for "" the default for `path`: jsonl for *.jsonl, else lines.
InputFormat input_format_for(const std::string& path, const std::string& format);
InvalidUtf8 parse_invalid_policy(const std::string& s);

struct Document {
  std::string id;    // JSONL id field, else "NAME:LINE"
  std::string tag;   // value of the tag field (JSONL), else empty
  std::string text;  // valid UTF-8
  uint64_t line = 0;  // first line of the document (1-based)
};

struct DocumentReaderOptions {
  InputFormat format = InputFormat::Lines;
  InvalidUtf8 invalid = InvalidUtf8::Error;
  std::string text_field = "text";
  std::string tag_field;  // e.g. "lang"; empty: no tag
  std::string id_field = "id";
  bool keep_empty = false;  // return empty documents too (prompts: one output per input line)
};

class DocumentReader {
 public:
  DocumentReader(const std::string& path, DocumentReaderOptions options);
  // Next non-empty document (or next document, with keep_empty); false at the end of the
  // input. Reads what a pipe has as it comes, so a document is returned once its line is in.
  bool next(Document* doc);
  // Statistics, complete after the last next().
  uint64_t bytes_read() const { return bytes_; }
  uint64_t lines_read() const { return line_; }
  uint64_t replaced() const { return replaced_; }  // documents with invalid UTF-8 repaired
  uint64_t skipped() const { return skipped_; }    // documents dropped for invalid UTF-8
  uint64_t empty() const { return empty_; }        // empty documents (not returned)
  std::string sha256();                             // of every byte read; after the end
  const std::string& name() const { return in_.name(); }

 private:
  bool read_line(std::string* line, uint64_t* offset);
  bool check_utf8(std::string* text, uint64_t line, uint64_t offset);
  InputFile in_;
  DocumentReaderOptions opt_;
  Sha256 sha_;
  static constexpr size_t kBufSize = 1 << 20;
  std::unique_ptr<char[]> buf_;  // bytes [buf_pos_, buf_len_) not yet returned
  size_t buf_len_ = 0, buf_pos_ = 0;
  bool eof_ = false;
  uint64_t bytes_ = 0, line_ = 0, replaced_ = 0, skipped_ = 0, empty_ = 0;
};

}  // namespace ilt
