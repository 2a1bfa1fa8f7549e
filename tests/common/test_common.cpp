#include <unistd.h>

#include <fstream>

#include "catch.h"
#include "common/bytes.h"
#include "common/hash.h"
#include "common/io.h"
#include "common/png.h"

using namespace ilt;

TEST_CASE("sha256 matches the standard test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Streaming in odd pieces gives the same digest as one call.
  std::string big(1000003, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + 3);
  Sha256 s;
  for (size_t i = 0; i < big.size(); i += 61) s.update(big.data() + i, std::min<size_t>(61, big.size() - i));
  CHECK(s.hex() == sha256_hex(big));
}

TEST_CASE("crc32 is the IEEE CRC-32") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0u);
}

TEST_CASE("varints round-trip and malformed ones are rejected") {
  std::string buf;
  const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, (1ull << 32) + 5, ~0ull};
  for (uint64_t v : values) put_varint(buf, v);
  ByteReader r(buf);
  for (uint64_t v : values) CHECK(r.varint() == v);
  CHECK(r.done());
  std::string bad(11, char(0x80));
  ByteReader rb(bad);
  CHECK_THROWS_AS(rb.varint(), Error);
  ByteReader rs(std::string_view("\x01", 1));
  rs.bytes(1);
  CHECK_THROWS_AS(rs.u32(), Error);
}

TEST_CASE("OutputFile writes NAME.tmp and renames only on commit") {
  std::string path = "ilt-test-output.bin";
  std::remove(path.c_str());
  {
    OutputFile out(path);
    out.write("hello");
    CHECK(access((path + ".tmp").c_str(), F_OK) == 0);
    CHECK(access(path.c_str(), F_OK) != 0);
    // Destroyed without commit: as if the run was killed.
  }
  CHECK(access((path + ".tmp").c_str(), F_OK) != 0);
  CHECK(access(path.c_str(), F_OK) != 0);
  {
    OutputFile out(path);
    out.write("hello");
    out.commit();
  }
  CHECK(read_all(path) == "hello");
  CHECK(access((path + ".tmp").c_str(), F_OK) != 0);
  std::remove(path.c_str());
}

TEST_CASE("PNG round-trip keeps every pixel") {
  GrayImage img{37, 5, {}};
  for (int i = 0; i < 37 * 5; ++i) img.pixels.push_back(uint8_t(i * 13));
  write_png("ilt-test.png", img);
  GrayImage back = read_png("ilt-test.png");
  CHECK(back.width == 37);
  CHECK(back.height == 5);
  CHECK(back.pixels == img.pixels);
  // Deterministic bytes.
  CHECK(encode_png(img) == encode_png(img));
  std::remove("ilt-test.png");
  CHECK_THROWS_AS(read_png(ILT_SOURCE_DIR "/CMakeLists.txt"), Error);
}

TEST_CASE("PNG file names are readable and safe") {
  CHECK(png_file_name(3, "hello ") == "000003_hello%20.png");
  CHECK(png_file_name(12, "a/b") == "000012_a%2Fb.png");
  CHECK(png_file_name(0, "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D") == "000000_\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D.png");
  CHECK(png_file_name(1, "\t") == "000001_%09.png");
}
