#include <cstdio>

#include "catch.h"
#include "common/error.h"
#include "text/input.h"

using namespace ilt;

namespace {
std::string write_tmp(const std::string& name, const std::string& data) {
  FILE* f = std::fopen(name.c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  return name;
}
std::vector<Document> read_docs(const std::string& path, DocumentReaderOptions o) {
  DocumentReader r(path, o);
  std::vector<Document> out;
  Document d;
  while (r.next(&d)) out.push_back(d);
  return out;
}
}  // namespace

TEST_CASE("lines: one document per line, CRLF handled, empty lines skipped") {
  auto p = write_tmp("in-lines.txt", "first doc\r\n\nsecond  doc\nlast without newline");
  auto docs = read_docs(p, {});
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].text == "first doc");
  CHECK(docs[1].text == "second  doc");
  CHECK(docs[1].id == "in-lines.txt:3");
  CHECK(docs[2].text == "last without newline");
}

TEST_CASE("paragraphs: blank-line separated, inner newlines kept") {
  auto p = write_tmp("in-para.txt", "\n\npara one\nstill one\n\n\npara two\n");
  DocumentReaderOptions o;
  o.format = InputFormat::Paragraphs;
  auto docs = read_docs(p, o);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].text == "para one\nstill one");
  CHECK(docs[0].line == 3);
  CHECK(docs[1].text == "para two");
}

TEST_CASE("jsonl: text, id and tag fields, bad JSON names the line") {
  auto p = write_tmp("in.jsonl", "{\"id\":\"a\",\"lang\":\"heb\",\"text\":\"\\u05e9 x\\n\"}\n\n{\"text\":\"two\"}\n");
  DocumentReaderOptions o;
  o.format = InputFormat::Jsonl;
  o.tag_field = "lang";
  auto docs = read_docs(p, o);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].id == "a");
  CHECK(docs[0].tag == "heb");
  CHECK(docs[0].text == "\xD7\xA9 x\n");
  CHECK(docs[1].id == "in.jsonl:3");
  auto bad = write_tmp("bad.jsonl", "{\"text\":\"ok\"}\n{\"text\": nope}\n");
  CHECK(ILT_ERROR_OF(read_docs(bad, o)).find("bad.jsonl:2: invalid JSON") != std::string::npos);
  auto nofield = write_tmp("nofield.jsonl", "{\"body\":\"ok\"}\n");
  CHECK(ILT_ERROR_OF(read_docs(nofield, o)).find("no string field 'text'") != std::string::npos);
}

TEST_CASE("invalid UTF-8: error names file, line and byte offset, replace and skip") {
  auto p = write_tmp("bad-utf8.txt", "good line\nbad \xFF here\nok\n");
  std::string msg = ILT_ERROR_OF(read_docs(p, {}));
  CHECK(msg.find("bad-utf8.txt:2: invalid UTF-8 at byte offset 14") != std::string::npos);
  DocumentReaderOptions o;
  o.invalid = InvalidUtf8::Replace;
  auto docs = read_docs(p, o);
  REQUIRE(docs.size() == 3);
  CHECK(docs[1].text == "bad \xEF\xBF\xBD here");
  o.invalid = InvalidUtf8::Skip;
  DocumentReader r(p, o);
  Document d;
  std::vector<std::string> texts;
  while (r.next(&d)) texts.push_back(d.text);
  CHECK(texts == std::vector<std::string>{"good line", "ok"});
  CHECK(r.skipped() == 1);
}

TEST_CASE("the reader hashes exactly the bytes it read") {
  auto p = write_tmp("hash.txt", "abc");
  DocumentReader r(p, {});
  Document d;
  while (r.next(&d)) {
  }
  CHECK(r.sha256() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
