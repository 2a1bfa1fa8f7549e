#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "catch.h"
#include "common/bytes.h"
#include "common/io.h"
#include "shard/shard.h"

using namespace ilt;
using nlohmann::json;

namespace {
std::vector<std::string> sample_records(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string r(rng() % 300, '\0');
    for (char& c : r) c = char(rng());
    out.push_back(r);
  }
  out[n / 2].clear();  // empty records are records too
  return out;
}

void write_shard(const std::string& path, const std::vector<std::string>& recs, size_t block = 4096) {
  ShardWriter w(path, "test", json{{"tool", "test"}, {"n", recs.size()}}, ShardWriterOptions{block, 3});
  for (const auto& r : recs) w.add(r);
  w.finish(json{{"counts", {{"records", recs.size()}}}});
}

std::string slurp(const std::string& p) { return read_all(p); }
void spit(const std::string& p, const std::string& data) {
  FILE* f = std::fopen(p.c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
}
}  // namespace

TEST_CASE("shard round-trip: sequential and random access over many blocks") {
  auto recs = sample_records(2000, 1);
  write_shard("t1.shard", recs);
  ShardReader r("t1.shard", "test");
  CHECK(r.kind() == "test");
  CHECK(r.version() == kShardVersion);
  CHECK(r.size() == recs.size());
  CHECK(r.num_blocks() > 10);
  CHECK(r.header()["tool"] == "test");
  CHECK(r.meta()["counts"]["records"] == recs.size());
  CHECK(r.meta()["tool"] == "test");
  std::string_view v;
  size_t i = 0;
  while (r.next(&v)) {
    REQUIRE(i < recs.size());
    CHECK(v == recs[i]);
    ++i;
  }
  CHECK(i == recs.size());
  std::mt19937 rng(7);
  for (int k = 0; k < 300; ++k) {
    size_t j = rng() % recs.size();
    CHECK(r.get(j) == recs[j]);
  }
  CHECK(r.get(recs.size() - 1) == recs.back());
  CHECK_THROWS_AS(r.get(recs.size()), Error);
}

TEST_CASE("shard: get() between next() calls does not disturb the sequence") {
  auto recs = sample_records(500, 2);
  write_shard("t2.shard", recs, 1024);
  ShardReader r("t2.shard");
  std::string_view v;
  for (size_t i = 0; i < recs.size(); ++i) {
    REQUIRE(r.next(&v));
    CHECK(std::string(v) == recs[i]);
    CHECK(r.get((i * 37) % recs.size()) == recs[(i * 37) % recs.size()]);
  }
  CHECK_FALSE(r.next(&v));
}

TEST_CASE("shard: empty shard is valid") {
  write_shard("t3.shard", {});
  ShardReader r("t3.shard");
  CHECK(r.size() == 0);
  std::string_view v;
  CHECK_FALSE(r.next(&v));
}

TEST_CASE("shard: reads through a pipe, index verified at the end") {
  auto recs = sample_records(300, 3);
  write_shard("t4.shard", recs, 2048);
  std::string data = slurp("t4.shard");
  std::remove("t4.fifo");
  REQUIRE(mkfifo("t4.fifo", 0600) == 0);
  std::thread writer([&] { spit("t4.fifo", data); });
  {
    ShardReader r("t4.fifo", "test");
    CHECK_FALSE(r.random_access());
    CHECK_THROWS_AS(r.size(), Error);
    std::string_view v;
    size_t i = 0;
    while (r.next(&v)) CHECK(v == recs[i++]);
    CHECK(i == recs.size());
    CHECK(r.size() == recs.size());
    CHECK(r.footer()["counts"]["records"] == recs.size());
  }
  writer.join();
  std::remove("t4.fifo");
}

TEST_CASE("shard: truncation anywhere is refused with a clear message") {
  auto recs = sample_records(200, 4);
  write_shard("t5.shard", recs, 2048);
  std::string data = slurp("t5.shard");
  for (size_t cut : {size_t(3), size_t(20), data.size() / 3, data.size() / 2, data.size() - 30, data.size() - 1}) {
    spit("t5cut.shard", data.substr(0, cut));
    std::string msg = ILT_ERROR_OF({
      ShardReader r("t5cut.shard");
      std::string_view v;
      while (r.next(&v)) {
      }
    });
    INFO("cut at " << cut << ": " << msg);
    CHECK(msg.find("t5cut.shard") != std::string::npos);
    CHECK((msg.find("truncated") != std::string::npos || msg.find("not an ilt shard") != std::string::npos ||
           msg.find("corrupt") != std::string::npos));
  }
}

TEST_CASE("shard: a flipped byte in a block is detected by the checksum") {
  auto recs = sample_records(200, 5);
  write_shard("t6.shard", recs, 2048);
  std::string data = slurp("t6.shard");
  ShardReader probe("t6.shard");
  size_t header_end = data.find("BLK1");
  REQUIRE(header_end != std::string::npos);
  data[header_end + 16 + 40] ^= 0x10;  // inside the first block's zstd frame
  spit("t6bad.shard", data);
  std::string msg = ILT_ERROR_OF({
    ShardReader r("t6bad.shard");
    std::string_view v;
    while (r.next(&v)) {
    }
  });
  CHECK(msg.find("t6bad.shard: block 0") != std::string::npos);
}

TEST_CASE("shard: header corruption, wrong kind and newer versions are refused") {
  write_shard("t7.shard", sample_records(10, 6));
  CHECK(ILT_ERROR_OF(ShardReader("t7.shard", "words")).find("is a 'test' shard, expected 'words'") !=
        std::string::npos);
  std::string data = slurp("t7.shard");
  std::string bad = data;
  bad[30] ^= 1;  // in the header JSON
  spit("t7bad.shard", bad);
  CHECK(ILT_ERROR_OF(ShardReader("t7bad.shard")).find("checksum") != std::string::npos);
  // A newer format version (with a correct header checksum) must be refused by version.
  std::string newer = data;
  newer[8] = 2;
  size_t hlen = 8 + 4 + 2 + 4 + 4 + load_u32(data.data() + 18);
  uint32_t crc = crc32(newer.data(), hlen - 4);
  for (int k = 0; k < 4; ++k) newer[hlen - 4 + k] = char((crc >> (8 * k)) & 0xff);
  spit("t7new.shard", newer);
  CHECK(ILT_ERROR_OF(ShardReader("t7new.shard")).find("newer than this ilt reads") != std::string::npos);
  spit("t7txt.shard", "hello world, not a shard at all, just text");
  CHECK(ILT_ERROR_OF(ShardReader("t7txt.shard")).find("not an ilt shard") != std::string::npos);
}

TEST_CASE("shard: an unfinished writer leaves no file under the real name") {
  std::remove("t8.shard");
  {
    ShardWriter w("t8.shard", "test", json::object());
    for (int i = 0; i < 1000; ++i) w.add(std::string(100, char(i)));
    CHECK(access("t8.shard.tmp", F_OK) == 0);
    CHECK(access("t8.shard", F_OK) != 0);
  }
  CHECK(access("t8.shard", F_OK) != 0);
  CHECK(access("t8.shard.tmp", F_OK) != 0);
}

TEST_CASE("shard: same records give the same bytes") {
  auto recs = sample_records(100, 9);
  write_shard("t9a.shard", recs);
  write_shard("t9b.shard", recs);
  CHECK(slurp("t9a.shard") == slurp("t9b.shard"));
}
