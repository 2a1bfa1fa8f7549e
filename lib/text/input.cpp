#include "text/input.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/utf8.h"

namespace ilt {

InputFormat parse_input_format(const std::string& s) {
  if (s == "lines") return InputFormat::Lines;
  if (s == "paragraphs") return InputFormat::Paragraphs;
  if (s == "jsonl") return InputFormat::Jsonl;
  fail("unknown input format '{}' (lines, paragraphs, jsonl)", s);
}

InputFormat input_format_for(const std::string& path, const std::string& format) {
  if (!format.empty()) return parse_input_format(format);
  bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  return jsonl ? InputFormat::Jsonl : InputFormat::Lines;
}

InvalidUtf8 parse_invalid_policy(const std::string& s) {
  if (s == "error") return InvalidUtf8::Error;
  if (s == "replace") return InvalidUtf8::Replace;
  if (s == "skip") return InvalidUtf8::Skip;
  fail("unknown --invalid policy '{}' (error, replace, skip)", s);
}

DocumentReader::DocumentReader(const std::string& path, DocumentReaderOptions options)
    : in_(path), opt_(std::move(options)) {}

// Reads one line without its "\n" (and without a "\r" before it). *offset: the file offset
// of the line's first byte.
bool DocumentReader::read_line(std::string* line, uint64_t* offset) {
  line->clear();
  *offset = bytes_;
  bool any = false;
  for (;;) {
    if (buf_pos_ == buf_len_) {
      if (eof_) break;
      // Allocated once, never cleared: a pipe's small reads cost no 1 MiB memset each.
      if (!buf_) buf_.reset(new char[kBufSize]);
      size_t n = in_.read_some(buf_.get(), kBufSize);
      buf_len_ = n;
      buf_pos_ = 0;
      if (n == 0) {
        eof_ = true;
        break;
      }
      sha_.update(buf_.get(), n);
    }
    any = true;
    const char* start = buf_.get() + buf_pos_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', buf_len_ - buf_pos_));
    if (nl) {
      line->append(start, size_t(nl - start));
      size_t used = size_t(nl - start) + 1;
      buf_pos_ += used;
      bytes_ += used;
      ++line_;
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return true;
    }
    line->append(start, buf_len_ - buf_pos_);
    bytes_ += buf_len_ - buf_pos_;
    buf_pos_ = buf_len_;
  }
  if (!any) return false;
  ++line_;  // last line without "\n"
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

// Applies the invalid-UTF-8 policy. Returns false if the document must be skipped.
bool DocumentReader::check_utf8(std::string* text, uint64_t line, uint64_t offset) {
  size_t bad = utf8_invalid_offset(*text);
  if (bad == text->size()) return true;
  switch (opt_.invalid) {
    case InvalidUtf8::Error:
      fail("{}:{}: invalid UTF-8 at byte offset {} (use --invalid replace|skip to continue)",
           in_.name(), line, offset + bad);
    case InvalidUtf8::Replace:
      *text = utf8_replace_invalid(*text);
      ++replaced_;
      return true;
    case InvalidUtf8::Skip:
      return false;  // the caller counts the skipped document
  }
  return false;
}

bool DocumentReader::next(Document* doc) {
  std::string line;
  uint64_t offset;
  for (;;) {
    doc->tag.clear();
    if (opt_.format == InputFormat::Paragraphs) {
      // Skip blank lines, then join lines up to the next blank line with "\n".
      bool got;
      while ((got = read_line(&line, &offset)) && line.empty()) {
      }
      if (!got) return false;
      doc->line = line_;
      doc->text.clear();
      bool keep = true;
      do {
        keep = check_utf8(&line, line_, offset) && keep;
        if (!doc->text.empty()) doc->text += '\n';
        doc->text += line;
      } while (read_line(&line, &offset) && !line.empty());
      if (!keep) {
        ++skipped_;
        continue;
      }
      doc->id = fmt::format("{}:{}", in_.name(), doc->line);
      return true;
    }
    if (!read_line(&line, &offset)) return false;
    doc->line = line_;
    if (opt_.format == InputFormat::Lines) {
      if (line.empty() && !opt_.keep_empty) {
        ++empty_;
        continue;
      }
      if (!check_utf8(&line, line_, offset)) {
        ++skipped_;
        continue;
      }
      doc->text.swap(line);
      doc->id = fmt::format("{}:{}", in_.name(), doc->line);
      return true;
    }
    // JSONL: validate the raw line first so the error names the byte offset.
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!check_utf8(&line, line_, offset)) {
      ++skipped_;
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail("{}:{}: invalid JSON: {}", in_.name(), line_, e.what());
    }
    if (!j.is_object()) fail("{}:{}: expected a JSON object", in_.name(), line_);
    auto t = j.find(opt_.text_field);
    if (t == j.end() || !t->is_string())
      fail("{}:{}: no string field '{}' (choose it with --field)", in_.name(), line_, opt_.text_field);
    doc->text = t->get<std::string>();
    if (!check_utf8(&doc->text, line_, offset)) {  // e.g. a lone "\udc80" escape
      ++skipped_;
      continue;
    }
    if (doc->text.empty() && !opt_.keep_empty) {
      ++empty_;
      continue;
    }
    doc->id = fmt::format("{}:{}", in_.name(), doc->line);
    auto id = j.find(opt_.id_field);
    if (id != j.end()) doc->id = id->is_string() ? id->get<std::string>() : id->dump();
    if (!opt_.tag_field.empty()) {
      auto tg = j.find(opt_.tag_field);
      if (tg != j.end()) doc->tag = tg->is_string() ? tg->get<std::string>() : tg->dump();
    }
    return true;
  }
}

std::string DocumentReader::sha256() { return sha_.hex(); }

}  // namespace ilt
