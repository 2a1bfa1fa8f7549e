#include "text/segment.h"

#include <unicode/brkiter.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/uversion.h>

#include "common/error.h"
#include "text/utf8.h"

namespace ilt {

bool is_dictionary_script(char32_t c) {
  if (c < 0x0E00) return false;
  return (c <= 0x0EFF) ||                                   // Thai, Lao
         (c >= 0x1000 && c <= 0x109F) ||                    // Myanmar
         (c >= 0x1780 && c <= 0x17FF) || (c >= 0x19E0 && c <= 0x19FF) ||  // Khmer
         (c >= 0x2E80 && c <= 0x2FDF) ||                    // CJK radicals
         (c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) ||
         (c >= 0x3031 && c <= 0x303B) ||
         (c >= 0x3040 && c <= 0x30FF) ||                    // Hiragana, Katakana
         (c >= 0x31F0 && c <= 0x31FF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x4E00 && c <= 0x9FFF) ||                    // CJK unified
         (c >= 0xA9E0 && c <= 0xA9FF) || (c >= 0xAA60 && c <= 0xAA7F) ||  // Myanmar ext
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF66 && c <= 0xFF9F) ||
         (c >= 0x20000 && c <= 0x3FFFF);                    // CJK ext B..
}

namespace {
// Byte classes for the ASCII fast path.
enum : uint8_t { kWord = 0, kSpace = 1, kControl = 2, kHigh = 3 };
struct AsciiTable {
  uint8_t cls[256];
  constexpr AsciiTable() : cls() {
    for (int i = 0; i < 256; ++i) cls[i] = i >= 0x80 ? kHigh : i < 0x20 || i == 0x7F ? kControl : kWord;
    cls[0x20] = kSpace;
  }
};
constexpr AsciiTable kAscii;
}  // namespace

struct Segmenter::Impl {
  SegmentOptions opt;
  std::unique_ptr<icu::BreakIterator> words, graphemes;
  UText* ut = nullptr;

  explicit Impl(SegmentOptions o) : opt(o) {
    UErrorCode st = U_ZERO_ERROR;
    words.reset(icu::BreakIterator::createWordInstance(icu::Locale::getRoot(), st));
    if (U_FAILURE(st)) fail("ICU word break iterator: {}", u_errorName(st));
    graphemes.reset(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), st));
    if (U_FAILURE(st)) fail("ICU character break iterator: {}", u_errorName(st));
  }
  ~Impl() {
    if (ut) utext_close(ut);
  }

  void set_text(icu::BreakIterator* it, std::string_view s) {
    UErrorCode st = U_ZERO_ERROR;
    ut = utext_openUTF8(ut, s.data(), int64_t(s.size()), &st);
    if (U_FAILURE(st)) fail("ICU utext_openUTF8: {}", u_errorName(st));
    it->setText(ut, st);
    if (U_FAILURE(st)) fail("ICU setText: {}", u_errorName(st));
  }

  // Emits one word, split at grapheme boundaries if it is longer than max_bytes.
  void emit(std::string_view w, std::vector<uint32_t>* out) {
    if (opt.max_bytes == 0 || w.size() <= opt.max_bytes) {
      out->push_back(uint32_t(w.size()));
      return;
    }
    set_text(graphemes.get(), w);
    size_t start = 0, last = 0;  // current piece [start, last)
    for (int32_t b = graphemes->next(); b != icu::BreakIterator::DONE; b = graphemes->next()) {
      size_t pos = size_t(b);
      if (pos - start > opt.max_bytes && last > start) {
        out->push_back(uint32_t(last - start));
        start = last;
      }
      last = pos;
    }
    if (last > start) out->push_back(uint32_t(last - start));
  }

  // A run of non-space, non-control characters (plus its trailing whitespace, `tail`
  // bytes) that contains dictionary-script text: split with ICU's word iterator.
  void emit_dictionary(std::string_view run, size_t tail, std::vector<uint32_t>* out) {
    std::string_view body = run.substr(0, run.size() - tail);
    set_text(words.get(), body);
    size_t prev = 0;
    for (int32_t b = words->next(); b != icu::BreakIterator::DONE; b = words->next()) {
      size_t pos = size_t(b);
      if (pos >= body.size()) break;
      emit(body.substr(prev, pos - prev), out);
      prev = pos;
    }
    emit(run.substr(prev), out);  // the last piece keeps the trailing whitespace
  }
};

Segmenter::Segmenter(SegmentOptions options) : impl_(std::make_unique<Impl>(options)) {}
Segmenter::~Segmenter() = default;

void Segmenter::segment(std::string_view text, std::vector<uint32_t>* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  // Class of the character at i; for non-ASCII decodes it and sets len/dict.
  auto classify = [&](size_t at, size_t* len, bool* dict) -> uint8_t {
    uint8_t c = kAscii.cls[p[at]];
    if (c != kHigh) {
      *len = 1;
      return c;
    }
    char32_t cp = utf8_decode(p + at, len);
    if (is_unicode_space(cp)) return kSpace;  // includes U+0085 NEL, a C1 control that is White_Space
    if (is_dictionary_script(cp)) *dict = true;
    return kWord;
  };
  while (i < n) {
    size_t len;
    bool dict = false;
    uint8_t c = classify(i, &len, &dict);
    size_t start = i;
    if (c == kControl) {
      out->push_back(1);
      ++i;
      continue;
    }
    if (c == kSpace) {
      i += len;
      while (i < n) {
        uint8_t c2 = classify(i, &len, &dict);
        if (c2 != kSpace) break;
        i += len;
      }
      impl_->emit(text.substr(start, i - start), out);
      continue;
    }
    // A word: non-space, non-control run; ASCII letters in a tight loop.
    i += len;
    while (i < n) {
      uint8_t a = kAscii.cls[p[i]];
      if (a == kWord) {
        ++i;
        continue;
      }
      if (a != kHigh) break;
      uint8_t c2 = classify(i, &len, &dict);
      if (c2 != kWord) break;
      i += len;
    }
    size_t tail = 0;
    if (i < n) {
      bool unused = false;
      if (classify(i, &len, &unused) == kSpace) {
        tail = len;
        i += len;
      }
    }
    if (dict)
      impl_->emit_dictionary(text.substr(start, i - start), tail, out);
    else
      impl_->emit(text.substr(start, i - start), out);
  }
}

std::vector<std::string_view> Segmenter::words(std::string_view text) {
  std::vector<uint32_t> lens;
  segment(text, &lens);
  std::vector<std::string_view> out;
  out.reserve(lens.size());
  size_t at = 0;
  for (uint32_t l : lens) {
    out.push_back(text.substr(at, l));
    at += l;
  }
  return out;
}

LibraryVersions icu_version() {
  UVersionInfo icu, unicode;
  char a[U_MAX_VERSION_STRING_LENGTH], b[U_MAX_VERSION_STRING_LENGTH];
  u_getVersion(icu);
  u_getUnicodeVersion(unicode);
  u_versionToString(icu, a);
  u_versionToString(unicode, b);
  return {{"ICU", std::string(a) + " (Unicode " + b + ")"}};
}

}  // namespace ilt
