#include "catch.h"
#include "text/utf8.h"

using namespace ilt;

TEST_CASE("utf8 validation finds the first invalid byte") {
  CHECK(utf8_valid("plain ascii text that is long enough for the fast path"));
  CHECK(utf8_valid("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xE4\xB8\xAD\xF0\x9F\x98\x80"));
  CHECK(utf8_invalid_offset("abc\xFFxyz") == 3);
  CHECK(utf8_invalid_offset("abcdefghijk\x80") == 11);  // lone continuation
  CHECK(utf8_invalid_offset("ab\xC0\xAF") == 2);        // overlong
  CHECK(utf8_invalid_offset("ab\xE0\x80\xAF") == 2);    // overlong 3-byte
  CHECK(utf8_invalid_offset("ab\xED\xA0\x80") == 2);    // surrogate
  CHECK(utf8_invalid_offset("ab\xF4\x90\x80\x80") == 2);  // > U+10FFFF
  CHECK(utf8_invalid_offset("ab\xE4\xB8") == 2);        // truncated at the end
}

TEST_CASE("utf8 repair replaces maximal invalid subparts with U+FFFD") {
  CHECK(utf8_replace_invalid("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(utf8_replace_invalid("a\xE4\xB8" "b") == "a\xEF\xBF\xBD" "b");  // one U+FFFD for a cut sequence
  CHECK(utf8_replace_invalid("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8_replace_invalid("ok \xD7\xA9") == "ok \xD7\xA9");
  CHECK(utf8_valid(utf8_replace_invalid("\xF0\x9F\x98\xED\xA0\x80zz\xFE")));
}

TEST_CASE("utf8 encode/decode round-trip") {
  for (char32_t cp : {char32_t(0x41), char32_t(0x5D0), char32_t(0x2400), char32_t(0x1F600), char32_t(0x10FFFF)}) {
    std::string s;
    utf8_append(s, cp);
    size_t len;
    CHECK(utf8_decode(reinterpret_cast<const unsigned char*>(s.data()), &len) == cp);
    CHECK(len == s.size());
    CHECK(utf8_valid(s));
  }
}
