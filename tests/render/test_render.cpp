#include <fstream>
#include <sstream>

#include "catch.h"
#include "common/png.h"
#include "render/render_words.h"
#include "render/renderer.h"
#include "text/utf8.h"

using namespace ilt;

namespace {
// Unescapes \t, \n, \xHH in golden/words.tsv.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    if (c == 't') out += '\t';
    else if (c == 'n') out += '\n';
    else if (c == 'x') out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16)), i += 2;
    else out += c;
  }
  return out;
}
int ink(const WordImage& img) {
  int n = 0;
  for (uint8_t p : img.pixels) n += p < 200;
  return n;
}
}  // namespace

TEST_CASE("golden images: exact pixels of a few words in several scripts") {
  std::ifstream tsv(ILT_SOURCE_DIR "/tests/render/golden/words.tsv");
  REQUIRE(tsv.good());
  Renderer r;
  std::string line;
  int checked = 0;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, word;
    std::getline(fields, name, '\t');
    std::getline(fields, word, '\t');
    word = unescape(word);
    WordImage img = r.render(word);
    GrayImage golden = read_png(std::string(ILT_SOURCE_DIR "/tests/render/golden/") + name + ".png");
    bool same = golden.width == img.width && golden.height == img.height && golden.pixels == img.pixels;
    if (!same) write_png(name + ".actual.png", {img.width, img.height, img.pixels});
    INFO("word '" << word << "' (" << name << "): rendered " << img.width << "x" << img.height << ", golden "
                  << golden.width << "x" << golden.height << "; actual image written to " << name
                  << ".actual.png; if the change is intended, run scripts/update-golden.sh");
    CHECK(same);
    CHECK(ink(img) > 5);  // the golden is not blank
    ++checked;
  }
  CHECK(checked == 7);
}

TEST_CASE("geometry: height, width rule, padding") {
  Renderer r;
  for (std::string w : {"a", "Hello ", "internationalization ", "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D "}) {
    WordImage img = r.render(w);
    CHECK(img.height == 16);
    CHECK(img.width % 16 == 0);
    CHECK(img.width >= 16);
    CHECK(img.pixels.size() == size_t(img.width) * 16);
    // Text starts at x = 5: the first 4 columns are paper.
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 4; ++x) CHECK(img.pixels[size_t(y) * img.width + x] == 255);
  }
  CHECK(r.render("internationalization ").width > r.render("a").width);
  RenderOptions wide;
  wide.height = 32;
  wide.font_px = 24;
  wide.patch_width = 32;
  Renderer big(wide);
  WordImage b = big.render("Hello ");
  CHECK(b.height == 32);
  CHECK(b.width % 32 == 0);
}

TEST_CASE("blank words are blank, and the plain space is not drawn") {
  Renderer r;
  WordImage sp = r.render("   ");
  CHECK(ink(sp) == 0);
  CHECK(ink(r.render(" ")) == 0);
}

TEST_CASE("control characters are drawn as Control Pictures") {
  CHECK(visible_text("\t") == "\xE2\x90\x89");    // U+2409
  CHECK(visible_text("\n") == "\xE2\x90\x8A");    // U+240A
  CHECK(visible_text("\x7F") == "\xE2\x90\xA1");  // U+2421
  CHECK(visible_text("a b") == "a b");
  Renderer r;
  WordImage tab = r.render("\t"), nl = r.render("\n"), del = r.render("\x7F");
  CHECK(ink(tab) > 0);
  CHECK(tab.pixels != nl.pixels);
  CHECK(tab.pixels == r.render("\xE2\x90\x89").pixels);
  CHECK(del.pixels == r.render("\xE2\x90\xA1").pixels);
}

TEST_CASE("right-to-left text is ordered visually") {
  Renderer r;
  // "אב": alef then bet; shown right to left, so the leftmost ink belongs to bet.
  WordImage ab = r.render("\xD7\x90\xD7\x91"), a = r.render("\xD7\x90"), b = r.render("\xD7\x91");
  auto first_ink_column = [](const WordImage& img) {
    for (int x = 0; x < img.width; ++x)
      for (int y = 0; y < img.height; ++y)
        if (img.pixels[size_t(y) * img.width + x] < 128) return x;
    return -1;
  };
  auto column = [](const WordImage& img, int x0, int n) {
    std::vector<uint8_t> c;
    for (int y = 0; y < img.height; ++y)
      for (int x = x0; x < x0 + n; ++x) c.push_back(img.pixels[size_t(y) * img.width + x]);
    return c;
  };
  int x = first_ink_column(ab);
  REQUIRE(x >= 0);
  // The left part of "אב" looks like bet, not like alef.
  CHECK(column(ab, x, 3) == column(b, first_ink_column(b), 3));
  CHECK(column(ab, x, 3) != column(a, first_ink_column(a), 3));
}

TEST_CASE("words past max-width are cut there and reported") {
  RenderOptions o;
  o.max_width = 64;
  Renderer r(o);
  WordImage img = r.render("a-really-quite-long-word-indeed ");
  CHECK(img.width == 64);
  CHECK(r.last_clipped());
  r.render("ok");
  CHECK_FALSE(r.last_clipped());
}

TEST_CASE("deterministic: same pixels whatever the thread count and order") {
  std::vector<std::string> words;
  for (int i = 0; i < 700; ++i)
    words.push_back(std::to_string(i * 7919) + (i % 3 ? " " : "") + (i % 5 ? "\xD7\xA9" : "x"));
  std::vector<WordImage> one, three;
  uint64_t c1 = 0, c3 = 0;
  RenderPool(RenderOptions{}, 1).render(words, &one, &c1);
  RenderPool(RenderOptions{}, 3).render(words, &three, &c3);
  REQUIRE(one.size() == words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    CHECK(one[i].word == words[i]);
    CHECK(one[i].pixels == three[i].pixels);
  }
  // A renderer that has drawn many other words first (warm glyph cache) agrees too.
  Renderer fresh;
  CHECK(fresh.render(words[500]).pixels == one[500].pixels);
}

TEST_CASE("hermetic fonts: only the given files are used") {
  RenderOptions latin_only;
  latin_only.fonts = {"/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"};
  Renderer r(latin_only), full;
  // Hebrew has no glyphs in Noto Sans: with only that file it cannot look like the full set.
  CHECK(r.render("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D").pixels != full.render("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D").pixels);
  CHECK(r.render("Hello").pixels == full.render("Hello").pixels);
  RenderOptions missing;
  missing.fonts = {"/nonexistent/font.ttf"};
  CHECK(ILT_ERROR_OF(Renderer{missing}).find("/nonexistent/font.ttf") != std::string::npos);
}
