// The word rules of lib/text/segment.h as checks on a segmentation (fuzz_segment,
// fuzz_prompts): the words give the text back exactly, split it at character boundaries,
// keep control characters alone, hold whitespace only as a run of their own or as one
// trailing character, and exceed max_bytes only as a single grapheme cluster.
#pragma once
#include <unicode/brkiter.h>
#include <unicode/utext.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "text/segment.h"
#include "text/utf8.h"

namespace ilt::fuzz {

// True if `w` (valid UTF-8) is one grapheme cluster (ICU's rules, as the segmenter uses).
inline bool one_grapheme(std::string_view w) {
  static std::unique_ptr<icu::BreakIterator> it = [] {
    UErrorCode st = U_ZERO_ERROR;
    std::unique_ptr<icu::BreakIterator> b(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), st));
    FUZZ_CHECK(U_SUCCESS(st), "ICU character iterator: %s", u_errorName(st));
    return b;
  }();
  UErrorCode st = U_ZERO_ERROR;
  UText* ut = utext_openUTF8(nullptr, w.data(), int64_t(w.size()), &st);
  it->setText(ut, st);
  FUZZ_CHECK(U_SUCCESS(st), "ICU setText: %s", u_errorName(st));
  int32_t first = it->next();
  it->setText(icu::UnicodeString());  // drop the reference to `ut` before closing it
  utext_close(ut);
  return first == icu::BreakIterator::DONE || size_t(first) == w.size();
}

// Checks `lengths`, the segmentation of `text` (valid UTF-8) with max_bytes (0: no limit).
inline void check_segmentation(std::string_view text, const std::vector<uint32_t>& lengths, size_t max_bytes) {
  std::string joined;
  size_t at = 0;
  for (size_t k = 0; k < lengths.size(); ++k) {
    uint32_t len = lengths[k];
    FUZZ_CHECK(len > 0, "word %zu is empty", k);
    FUZZ_CHECK(at + len <= text.size(), "words run past the text (%zu + %u > %zu)", at, len, text.size());
    std::string_view w = text.substr(at, len);
    joined.append(w);
    at += len;
    FUZZ_CHECK(utf8_valid(w), "word %zu at byte %zu splits a character", k, at - len);
    // Character classes, in order.
    size_t chars = 0, spaces = 0;
    bool control = false, last_space = false;
    const auto* p = reinterpret_cast<const unsigned char*>(w.data());
    for (size_t i = 0; i < w.size();) {
      size_t n;
      char32_t c = utf8_decode(p + i, &n);
      i += n;
      ++chars;
      bool space = c >= 0x80 ? is_unicode_space(c) : c == 0x20;
      if (c < 0x20 || c == 0x7F) control = true;
      spaces += space;
      last_space = space;
    }
    if (control) FUZZ_CHECK(w.size() == 1, "word %zu holds a control character and more (%zu bytes)", k, w.size());
    // All whitespace, or whitespace only as the last character.
    if (spaces > 0 && spaces != chars)
      FUZZ_CHECK(spaces == 1 && last_space, "word %zu mixes whitespace and other characters", k);
    if (max_bytes > 0 && w.size() > max_bytes)
      FUZZ_CHECK(one_grapheme(w), "word %zu has %zu bytes > max %zu and is not one grapheme cluster", k, w.size(),
                 max_bytes);
  }
  FUZZ_CHECK(joined == text, "the words do not give the text back (%zu of %zu bytes)", joined.size(), text.size());
}

}  // namespace ilt::fuzz
