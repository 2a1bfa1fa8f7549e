#include "data/examples.h"

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/error.h"

namespace ilt {

std::string encode_example(const Example& ex) {
  std::string out;
  put_varint(out, ex.word_ids.size());
  for (uint32_t id : ex.word_ids) put_varint(out, id);
  put_varint(out, ex.docs.size());
  for (const DocPiece& d : ex.docs) {
    put_varint(out, d.length);
    put_varint(out, d.first_position);
    put_varint(out, d.doc_words);
    put_varint(out, d.tag.size());
    out += d.tag;
  }
  put_varint(out, ex.prefix_blocks.size());
  for (const PrefixBlock& p : ex.prefix_blocks) {
    put_varint(out, p.begin);
    put_varint(out, p.end);
  }
  for (const std::string& l : ex.labels) {
    put_varint(out, l.size());
    out += l;
  }
  return out;
}

void decode_example(std::string_view rec, Example* ex) {
  ByteReader r(rec);
  uint64_t n = r.varint();
  if (n > rec.size()) fail("example: {} words in a {}-byte record", n, rec.size());
  ex->word_ids.resize(n);
  for (auto& id : ex->word_ids) id = uint32_t(r.varint());
  uint64_t nd = r.varint();
  if (nd > n) fail("example: {} documents for {} words", nd, n);
  ex->docs.resize(nd);
  uint64_t total = 0;
  for (DocPiece& d : ex->docs) {
    d.length = uint32_t(r.varint());
    d.first_position = uint32_t(r.varint());
    d.doc_words = uint32_t(r.varint());
    d.tag.assign(r.bytes(r.varint()));
    total += d.length;
    if (d.first_position + uint64_t(d.length) > d.doc_words) fail("example: document piece past its document's end");
  }
  if (total != n) fail("example: document lengths sum to {}, not {} words", total, n);
  uint64_t np = r.varint();
  if (np > n) fail("example: {} prefix blocks for {} words", np, n);
  ex->prefix_blocks.resize(np);
  for (PrefixBlock& p : ex->prefix_blocks) {
    p.begin = uint32_t(r.varint());
    p.end = uint32_t(r.varint());
    if (p.begin >= p.end || p.end > n) fail("example: bad prefix block [{}, {})", p.begin, p.end);
    // A block lies inside one document piece: attention never crosses documents.
    uint64_t start = 0;
    for (const DocPiece& d : ex->docs) {
      if (p.begin < start + d.length) {
        if (p.end > start + d.length) fail("example: prefix block [{}, {}) crosses a document boundary", p.begin, p.end);
        break;
      }
      start += d.length;
    }
  }
  ex->labels.resize(n);
  for (auto& l : ex->labels) l.assign(r.bytes(r.varint()));
  if (!r.done()) fail("example: {} stray bytes at the end", r.remaining());
}

std::vector<uint32_t> ignored_labels(const Example& ex, const std::function<std::string_view(size_t)>& word_at) {
  std::vector<uint32_t> out;
  for (const PrefixBlock& b : ex.prefix_blocks)
    for (uint32_t k = b.begin; k < b.end; ++k) {
      std::string_view w = k + 1 == b.end ? word_at(k) : std::string_view();
      if (!(w.size() == 1 && uint8_t(w[0]) == kShiftIn)) out.push_back(k);
    }
  return out;
}

std::string vocab_path(const std::string& examples_path, const nlohmann::json& header) {
  auto it = header.find("vocab");
  if (it == header.end() || !it->is_string()) fail("{}: header names no vocabulary shard", examples_path);
  size_t slash = examples_path.rfind('/');
  return (slash == std::string::npos ? std::string() : examples_path.substr(0, slash + 1)) + it->get<std::string>();
}

std::string vocab_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

namespace {
// Largest cut <= n that does not split a UTF-8 sequence.
size_t utf8_cut(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}
}  // namespace

std::string word_input_bytes(std::string_view word, size_t max_len) {
  if (max_len < 3) fail("max word length {} leaves no room for BOS, a byte and EOS", max_len);
  std::string out;
  out.reserve(max_len);
  out.push_back(char(kBos));
  size_t n = utf8_cut(word, max_len - 2);
  if (n == 0 && !word.empty()) n = std::min(word.size(), max_len - 2);  // one huge character
  out.append(word.substr(0, n));
  out.push_back(char(kEos));
  return out;
}

std::string_view cut_label(std::string_view label, size_t max_len) {
  size_t n = utf8_cut(label, max_len - 1);
  if (n == 0 && !label.empty()) n = std::min(label.size(), max_len - 1);
  return label.substr(0, n);
}

}  // namespace ilt
