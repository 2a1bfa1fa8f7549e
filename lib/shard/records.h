// Typed records of the shard kinds written by segment and render. Each record is a small
// binary struct (LEB128 varints, little-endian integers); see docs/shard-format.md.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ilt {

// Shard kinds.
inline constexpr const char* kKindWords = "words";
inline constexpr const char* kKindImages = "images";

// One document split into words. Concatenating `words` gives the document back exactly.
// id: where it came from ("file:line" or the JSONL id); tag: e.g. the language, or empty.
struct WordsDoc {
  std::string id;
  std::string tag;
  std::vector<std::string> words;

  std::string text() const;
};
std::string encode_words_doc(const WordsDoc& doc);
// The same record from the text and its word lengths (no per-word strings).
void encode_words_doc(std::string_view id, std::string_view tag, std::string_view text,
                      const std::vector<uint32_t>& lengths, std::string* out);
// Decodes into `doc` (reusing its storage). Throws ilt::Error on malformed input.
void decode_words_doc(std::string_view rec, WordsDoc* doc);

// One rendered word: 8-bit greyscale, row-major, 0 = black ink, 255 = white paper.
struct WordImage {
  std::string word;
  uint16_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // width * height
};
std::string encode_word_image(const WordImage& img);
void decode_word_image(std::string_view rec, WordImage* img);
// The word of an encoded image record, without decoding its pixels (a view into `rec`).
std::string_view word_image_word(std::string_view rec);

}  // namespace ilt
