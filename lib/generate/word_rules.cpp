#include "generate/word_rules.h"

#include <algorithm>

#include "data/examples.h"
#include "text/utf8.h"

namespace ilt {

namespace {
bool is_control(char32_t c) { return c < 0x20 || c == 0x7F; }
// Bytes a complete character starting with lead byte b has (0: not a lead byte).
size_t lead_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}
}  // namespace

bool word_complete(std::string_view word) {
  if (word.empty()) return false;
  // The last character, if it is whole.
  size_t i = word.size();
  while (i > 0 && (static_cast<unsigned char>(word[i - 1]) & 0xC0) == 0x80 && word.size() - i < 3) --i;
  if (i == 0) return false;
  --i;
  size_t len = utf8_seq_len(word, i);
  if (len == 0 || i + len != word.size()) return false;
  size_t n;
  char32_t c = utf8_decode(reinterpret_cast<const unsigned char*>(word.data()) + i, &n);
  if (is_control(c)) return i == 0;  // a control character is only ever a word by itself
  return is_unicode_space(c);
}

std::array<bool, 256> allowed_next_bytes(std::string_view word, size_t limit) {
  std::array<bool, 256> ok{};
  const size_t size = word.size();
  // An open character at the end: find its lead byte.
  size_t i = size;
  while (i > 0 && (static_cast<unsigned char>(word[i - 1]) & 0xC0) == 0x80 && size - i < 3) --i;
  if (i > 0) {
    unsigned char lead = static_cast<unsigned char>(word[i - 1]);
    size_t need = lead_length(lead), have = size - (i - 1);
    if (need > have) {  // inside a character: only its continuation bytes
      unsigned char lo = 0x80, hi = 0xBF;
      if (have == 1) {  // the second byte excludes overlongs, surrogates and > U+10FFFF
        if (lead == 0xE0) lo = 0xA0;
        if (lead == 0xED) hi = 0x9F;
        if (lead == 0xF0) lo = 0x90;
        if (lead == 0xF4) hi = 0x8F;
      }
      for (int b = lo; b <= hi; ++b) ok[size_t(b)] = true;
      return ok;
    }
  }
  for (int b = 0; b < 256; ++b) {
    size_t n = lead_length(static_cast<unsigned char>(b));
    if (n == 0 || size + n > limit) continue;
    if (n == 1 && is_control(char32_t(b))) {
      ok[size_t(b)] = size == 0 && b != kPad && b != kBos && b != kEos;
    } else {
      ok[size_t(b)] = true;
    }
  }
  ok[kEos] = true;  // at a character boundary the word may end (EOS is never content)
  return ok;
}

size_t stop_cut(const std::string& text, const std::vector<std::string>& stop) {
  size_t cut = std::string::npos;
  for (const std::string& s : stop) cut = std::min(cut, text.find(s));
  return cut;
}

size_t held_back(const std::string& text, const std::vector<std::string>& stop) {
  size_t held = 0;
  for (const std::string& s : stop)
    for (size_t n = std::min(text.size(), s.size() - 1); n > held; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        held = n;
        break;
      }
  return held;
}

}  // namespace ilt
