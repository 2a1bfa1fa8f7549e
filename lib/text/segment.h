// Word segmentation: text -> "words", losslessly (concatenating the words gives the text).
//
// Rules (docs/design.md has the why):
//  - a C0 control character (U+0000..U+001F) or DEL is always a word by itself;
//  - a word is a run of non-space, non-control characters plus at most one trailing
//    (non-control) whitespace character; whitespace is Unicode White_Space;
//  - other runs of whitespace are words of their own;
//  - runs containing scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao,
//    Khmer, Myanmar) are split with ICU's dictionary word break iterator;
//  - with max_bytes > 0, longer words are split at grapheme-cluster boundaries; a single
//    grapheme cluster longer than max_bytes stays whole.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/version.h"
#include "text/utf8.h"  // is_unicode_space

namespace ilt {

struct SegmentOptions {
  size_t max_bytes = 0;  // 0: no limit
};

// Not thread-safe (it owns ICU break iterators): use one per thread.
class Segmenter {
 public:
  explicit Segmenter(SegmentOptions options = {});
  ~Segmenter();
  Segmenter(const Segmenter&) = delete;
  Segmenter& operator=(const Segmenter&) = delete;

  // Appends the byte lengths of the words of `text` (valid UTF-8) to *lengths.
  void segment(std::string_view text, std::vector<uint32_t>* lengths);
  // Convenience: the words as views into `text`.
  std::vector<std::string_view> words(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Scripts that ICU's dictionary break iterator splits (written without spaces).
bool is_dictionary_script(char32_t c);

// The ICU loaded at run time and its Unicode version (they decide spaces, scripts, graphemes
// and dictionary breaks), for --version.
LibraryVersions icu_version();

}  // namespace ilt
