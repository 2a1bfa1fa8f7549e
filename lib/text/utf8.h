// UTF-8 helpers: validation with the offset of the first bad byte, repair, decoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ilt {

// Returns s.size() if s is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF),
// else the byte offset of the first invalid sequence.
size_t utf8_invalid_offset(std::string_view s);
inline bool utf8_valid(std::string_view s) { return utf8_invalid_offset(s) == s.size(); }

// Replaces each maximal invalid subsequence with U+FFFD (the WHATWG/Unicode practice).
std::string utf8_replace_invalid(std::string_view s);

// Length of the valid sequence starting at s[i], or 0 if it is not valid.
size_t utf8_seq_len(std::string_view s, size_t i);

// Decodes the code point at p (which must start a valid sequence); sets *len.
inline char32_t utf8_decode(const unsigned char* p, size_t* len) {
  unsigned char c = p[0];
  if (c < 0x80) { *len = 1; return c; }
  if (c < 0xE0) { *len = 2; return char32_t(((c & 0x1F) << 6) | (p[1] & 0x3F)); }
  if (c < 0xF0) {
    *len = 3;
    return char32_t(((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F));
  }
  *len = 4;
  return char32_t(((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F));
}

void utf8_append(std::string& out, char32_t cp);

// Unicode White_Space (ASCII and the few others; a fixed property, so no ICU needed).
bool is_unicode_space(char32_t c);

}  // namespace ilt
