#include <random>

#include "catch.h"
#include "common/io.h"
#include "text/segment.h"
#include "text/utf8.h"

using namespace ilt;
using Words = std::vector<std::string>;

namespace {
Words seg(std::string_view text, size_t max_bytes = 0) {
  Segmenter s(SegmentOptions{max_bytes});
  Words out;
  for (auto w : s.words(text)) out.emplace_back(w);
  return out;
}
std::string join(const Words& w) {
  std::string t;
  for (const auto& x : w) t += x;
  return t;
}
}  // namespace

TEST_CASE("words keep one trailing space, other whitespace runs stand alone") {
  CHECK(seg("a b") == Words{"a ", "b"});
  CHECK(seg("hello  world ") == Words{"hello ", " ", "world "});
  CHECK(seg("   lead") == Words{"   ", "lead"});
  CHECK(seg("x    ") == Words{"x ", "   "});
  CHECK(seg("") == Words{});
}

TEST_CASE("control characters and DEL are always words by themselves") {
  CHECK(seg("\x02" "a b ") == Words{"\x02", "a ", "b "});
  CHECK(seg("line\nnext") == Words{"line", "\n", "next"});
  CHECK(seg("a\t\tb") == Words{"a", "\t", "\t", "b"});
  CHECK(seg("a \r\n") == Words{"a ", "\r", "\n"});
  CHECK(seg("x\x7Fy") == Words{"x", "\x7F", "y"});
  CHECK(seg("\x0E" "span\x0F") == Words{"\x0E", "span", "\x0F"});
}

TEST_CASE("whitespace is Unicode White_Space, not only ASCII") {
  // NBSP, ideographic space, em space, narrow NBSP.
  CHECK(seg("a\xC2\xA0" "b") == Words{"a\xC2\xA0", "b"});
  CHECK(seg("a\xE3\x80\x80\xE3\x80\x80" "b") == Words{"a\xE3\x80\x80", "\xE3\x80\x80", "b"});
  CHECK(seg("a\xE2\x80\x83" "b\xE2\x80\xAF") == Words{"a\xE2\x80\x83", "b\xE2\x80\xAF"});
  // Zero-width space is not White_Space: it stays inside the word.
  CHECK(seg("a\xE2\x80\x8B" "b") == Words{"a\xE2\x80\x8B" "b"});
  CHECK(is_unicode_space(0x2028));
  CHECK_FALSE(is_unicode_space(0x200B));
}

TEST_CASE("Hebrew and Arabic split on spaces") {
  CHECK(seg("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xD7\xA2\xD7\x95\xD7\x9C\xD7\x9D") ==
        Words{"\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D ", "\xD7\xA2\xD7\x95\xD7\x9C\xD7\x9D"});
}

TEST_CASE("scripts without spaces are split with ICU dictionaries") {
  // 我们是学生 "we are students"; Thai สวัสดีครับ "hello (polite)"; Japanese.
  Words zh = seg("\xE6\x88\x91\xE4\xBB\xAC\xE6\x98\xAF\xE5\xAD\xA6\xE7\x94\x9F ");
  CHECK(zh.size() >= 3);
  CHECK(zh.front() == "\xE6\x88\x91\xE4\xBB\xAC");  // 我们
  CHECK(zh.back().back() == ' ');                   // the trailing space stays with the last piece
  Words th = seg("\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5\xE0\xB8\x84\xE0\xB8\xA3\xE0\xB8\xB1\xE0\xB8\x9A");
  CHECK(th.size() == 2);
  CHECK(th[0] == "\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5");  // สวัสดี
  Words ja = seg("\xE7\xA7\x81\xE3\x81\xAF\xE5\xAD\xA6\xE7\x94\x9F\xE3\x81\xA7\xE3\x81\x99");  // 私は学生です
  CHECK(ja.size() >= 3);
  CHECK(join(ja) == "\xE7\xA7\x81\xE3\x81\xAF\xE5\xAD\xA6\xE7\x94\x9F\xE3\x81\xA7\xE3\x81\x99");
  // Latin inside a CJK run is kept apart from it.
  Words mix = seg("ABC\xE4\xB8\xAD\xE6\x96\x87");
  CHECK(mix.front() == "ABC");
}

TEST_CASE("max-bytes splits at grapheme-cluster boundaries") {
  CHECK(seg("abcdefghij ", 4) == Words{"abcd", "efgh", "ij "});
  // é as e + combining acute (3 bytes) is never cut inside.
  std::string e = "e\xCC\x81";
  Words w = seg(e + e + e, 4);
  CHECK(w == Words{e, e, e});
  // One grapheme longer than the limit stays whole: a family emoji ZWJ sequence (25 bytes).
  std::string family = "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F\x91\xA6";
  CHECK(seg(family, 8) == Words{family});
  CHECK(seg("ab" + family, 8) == Words{"ab", family});
  // Whitespace runs obey the limit too.
  CHECK(seg("a" + std::string(10, ' '), 4) == Words{"a ", "    ", "    ", " "});
  for (const auto& x : seg("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D ", 5)) CHECK(x.size() <= 5);
}

TEST_CASE("lossless on the demo corpus, every word follows the rules") {
  std::string corpus = read_all(ILT_SOURCE_DIR "/data/demo/udhr.jsonl");
  REQUIRE(corpus.size() > 100000);
  for (size_t max_bytes : {size_t(0), size_t(30), size_t(7)}) {
    Segmenter s(SegmentOptions{max_bytes});
    auto words = s.words(corpus);
    CHECK(join(Words(words.begin(), words.end())) == corpus);
    for (auto w : words) {
      REQUIRE(!w.empty());
      REQUIRE(utf8_valid(w));
      if (static_cast<unsigned char>(w[0]) < 0x20) CHECK(w.size() == 1);
    }
  }
}

TEST_CASE("lossless on random Unicode text") {
  std::mt19937 rng(12345);
  // A mix that stresses every branch: ASCII, controls, Unicode spaces, Hebrew, CJK, Thai,
  // combining marks, emoji, astral planes.
  const char32_t pool[] = {'a', 'Z', ' ', ' ', '\n', '\t', 0x01, 0x7F, 0xA0, 0x3000, 0x2003, 0x85, 0x5D0, 0x5E9,
                           0x4E2D, 0x6587, 0x3042, 0x30AB, 0xE2A, 0xE27, 0xE31, 0x301, 0x1F600, 0x200D,
                           0x1F466, 0x10348, 0x200B, 0x627, 0xFEFF};
  for (int doc = 0; doc < 300; ++doc) {
    std::string text;
    int n = int(rng() % 200);
    for (int i = 0; i < n; ++i) {
      char32_t cp = rng() % 4 == 0 ? char32_t(0x20 + rng() % (0x10FFFF - 0x20)) : pool[rng() % std::size(pool)];
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      utf8_append(text, cp);
    }
    for (size_t max_bytes : {size_t(0), size_t(5)}) {
      Words w = seg(text, max_bytes);
      REQUIRE(join(w) == text);
      for (const auto& x : w) REQUIRE(!x.empty());
    }
  }
}
