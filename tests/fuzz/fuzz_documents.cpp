// Fuzz target: DocumentReader (lib/text/input.h), the text input of ilt-segment.
//
// Input: byte 0 picks the options: format (lines, paragraphs, jsonl) = b % 3, invalid UTF-8
// policy (error, replace, skip) = b / 3 % 3, keep_empty = b / 9 % 2, a tag field ("lang")
// = b / 18 % 2; the rest is the input, read once as a file (memfd) and once as a pipe.
// Invariants (a failure aborts):
//  - documents are valid UTF-8; not empty unless keep_empty; lines hold no newline and
//    paragraphs no blank line; first lines increase;
//  - lines and paragraphs never fail under the replace and skip policies;
//  - after the end, every byte was read and hashed (bytes_read(), sha256());
//  - file and pipe (both opened as /proc/self/fd/500) give the same documents, statistics
//    and error.
#include <string>
#include <vector>

#include "common/hash.h"
#include "fuzz_common.h"
#include "text/input.h"
#include "text/utf8.h"

using namespace ilt;

namespace {

struct Result {
  bool ok = false;
  std::string error;
  std::vector<Document> docs;
  uint64_t bytes = 0, lines = 0, replaced = 0, skipped = 0, empty = 0;
  std::string sha;
};

Result read_all_docs(const std::string& path, const DocumentReaderOptions& o, std::string_view input) {
  Result r;
  try {
    DocumentReader reader(path, o);
    Document d;
    uint64_t last_line = 0;
    while (reader.next(&d)) {
      FUZZ_CHECK(utf8_valid(d.text), "document at line %llu is not valid UTF-8", (unsigned long long)d.line);
      if (!o.keep_empty) FUZZ_CHECK(!d.text.empty(), "empty document at line %llu", (unsigned long long)d.line);
      if (o.format == InputFormat::Lines)
        FUZZ_CHECK(d.text.find('\n') == std::string::npos, "a line holds a newline");
      if (o.format == InputFormat::Paragraphs)
        FUZZ_CHECK(!d.text.empty() && d.text.find("\n\n") == std::string::npos && d.text.front() != '\n' && d.text.back() != '\n',
                   "a paragraph holds a blank line");
      FUZZ_CHECK(d.line > last_line && d.line <= reader.lines_read(), "document line %llu after %llu (%llu read)",
                 (unsigned long long)d.line, (unsigned long long)last_line, (unsigned long long)reader.lines_read());
      last_line = d.line;
      r.docs.push_back(d);
    }
    r.ok = true;
    r.bytes = reader.bytes_read();
    r.lines = reader.lines_read();
    r.replaced = reader.replaced();
    r.skipped = reader.skipped();
    r.empty = reader.empty();
    r.sha = reader.sha256();
    FUZZ_CHECK(r.bytes == input.size(), "read %llu of %zu bytes", (unsigned long long)r.bytes, input.size());
    FUZZ_CHECK(r.sha == sha256_hex(input), "sha256() is not the hash of the input");
  } catch (const Error& e) {
    r.error = e.what();
    FUZZ_CHECK(o.format == InputFormat::Jsonl || o.invalid == InvalidUtf8::Error,
               "lines/paragraphs failed under a lenient policy: %s", e.what());
  }
  return r;
}

bool same_docs(const Result& a, const Result& b) {
  if (a.docs.size() != b.docs.size()) return false;
  for (size_t i = 0; i < a.docs.size(); ++i) {
    const Document &x = a.docs[i], &y = b.docs[i];
    if (x.id != y.id || x.tag != y.tag || x.text != y.text || x.line != y.line) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t b = data[0];
  DocumentReaderOptions o;
  o.format = b % 3 == 0 ? InputFormat::Lines : b % 3 == 1 ? InputFormat::Paragraphs : InputFormat::Jsonl;
  o.invalid = b / 3 % 3 == 0 ? InvalidUtf8::Error : b / 3 % 3 == 1 ? InvalidUtf8::Replace : InvalidUtf8::Skip;
  o.keep_empty = b / 9 % 2 == 1;
  if (b / 18 % 2 == 1) o.tag_field = "lang";
  std::string_view input = ilt::fuzz::as_view(data + 1, size - 1);

  // The same path for both (fd 500), so that ids and messages compare equal.
  ilt::fuzz::MemFile file(input);
  Result f = read_all_docs(ilt::fuzz::at_fixed_fd(file.fd()), o, input);
  ilt::fuzz::PipeFile pipe(input);
  if (!pipe.ok()) return 0;
  Result p = read_all_docs(ilt::fuzz::at_fixed_fd(pipe.fd()), o, input);
  FUZZ_CHECK(f.ok == p.ok, "the file %s, the pipe %s: %s", f.ok ? "is read" : "fails", p.ok ? "is read" : "fails",
             (f.ok ? p.error : f.error).c_str());
  FUZZ_CHECK(f.error == p.error, "file and pipe fail differently: '%s' vs '%s'", f.error.c_str(), p.error.c_str());
  FUZZ_CHECK(same_docs(f, p), "file and pipe give different documents");
  FUZZ_CHECK(f.bytes == p.bytes && f.lines == p.lines && f.replaced == p.replaced && f.skipped == p.skipped &&
                 f.empty == p.empty && f.sha == p.sha,
             "file and pipe give different statistics");
  return 0;
}
