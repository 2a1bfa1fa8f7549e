#include "catch.h"
#include "common/error.h"
#include "shard/records.h"

using namespace ilt;

TEST_CASE("words records round-trip") {
  WordsDoc d{"doc:1", "heb", {"\x02", "a ", "b ", "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D ", ""}};
  WordsDoc back;
  decode_words_doc(encode_words_doc(d), &back);
  CHECK(back.id == d.id);
  CHECK(back.tag == d.tag);
  CHECK(back.words == d.words);
  CHECK(back.text() == std::string("\x02" "a b \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D "));
}

TEST_CASE("image records round-trip, malformed records are errors") {
  WordImage img{"hi ", 3, 2, {0, 1, 2, 3, 4, 255}};
  std::string rec = encode_word_image(img);
  WordImage back;
  decode_word_image(rec, &back);
  CHECK(back.word == "hi ");
  CHECK(back.width == 3);
  CHECK(back.height == 2);
  CHECK(back.pixels == img.pixels);
  CHECK_THROWS_AS(decode_word_image(rec.substr(0, rec.size() - 1), &back), Error);
  CHECK_THROWS_AS(decode_word_image(rec + "x", &back), Error);
  img.pixels.pop_back();
  CHECK_THROWS_AS(encode_word_image(img), Error);
  WordsDoc d;
  CHECK_THROWS_AS(decode_words_doc(std::string("\x05" "ab"), &d), Error);
}
