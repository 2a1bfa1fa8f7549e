#include "shard/records.h"

#include "common/bytes.h"
#include "common/error.h"

namespace ilt {

std::string WordsDoc::text() const {
  std::string t;
  for (const auto& w : words) t += w;
  return t;
}

std::string encode_words_doc(const WordsDoc& doc) {
  std::string out;
  put_varint(out, doc.id.size());
  out += doc.id;
  put_varint(out, doc.tag.size());
  out += doc.tag;
  put_varint(out, doc.words.size());
  for (const auto& w : doc.words) put_varint(out, w.size());
  for (const auto& w : doc.words) out += w;
  return out;
}

void encode_words_doc(std::string_view id, std::string_view tag, std::string_view text,
                      const std::vector<uint32_t>& lengths, std::string* out) {
  out->clear();
  put_varint(*out, id.size());
  out->append(id);
  put_varint(*out, tag.size());
  out->append(tag);
  put_varint(*out, lengths.size());
  uint64_t total = 0;
  for (uint32_t l : lengths) put_varint(*out, l), total += l;
  if (total != text.size()) fail("words record '{}': word lengths sum to {}, text has {} bytes", id, total, text.size());
  out->append(text);
}

void decode_words_doc(std::string_view rec, WordsDoc* doc) {
  ByteReader r(rec);
  doc->id.assign(r.bytes(r.varint()));
  doc->tag.assign(r.bytes(r.varint()));
  uint64_t n = r.varint();
  if (n > r.remaining()) fail("words record: word count {} exceeds record size", n);
  std::vector<uint64_t> lens(n);
  for (auto& l : lens) l = r.varint();
  doc->words.resize(n);
  for (size_t i = 0; i < n; ++i) doc->words[i].assign(r.bytes(lens[i]));
  if (!r.done()) fail("words record: {} stray bytes at the end", r.remaining());
}

std::string encode_word_image(const WordImage& img) {
  if (img.pixels.size() != size_t(img.width) * img.height)
    fail("image of '{}': {} pixels for {}x{}", img.word, img.pixels.size(), img.width, img.height);
  std::string out;
  put_varint(out, img.word.size());
  out += img.word;
  put_u16(out, img.width);
  put_u16(out, img.height);
  out.append(reinterpret_cast<const char*>(img.pixels.data()), img.pixels.size());
  return out;
}

std::string_view word_image_word(std::string_view rec) {
  ByteReader r(rec);
  return r.bytes(r.varint());
}

void decode_word_image(std::string_view rec, WordImage* img) {
  ByteReader r(rec);
  img->word.assign(r.bytes(r.varint()));
  img->width = r.u16();
  img->height = r.u16();
  std::string_view px = r.bytes(size_t(img->width) * img->height);
  img->pixels.assign(px.begin(), px.end());
  if (!r.done()) fail("image record: {} stray bytes at the end", r.remaining());
}

}  // namespace ilt
