// The shard container: one format for every stage (words, images, examples, ...).
// Layout and guarantees are documented in docs/shard-format.md.
//
//   header  : "ILTSHARD" | u32 version | u16 kind length | kind | u32 JSON length | JSON | u32 crc
//   blocks  : "BLK1" | u32 records | u32 raw bytes | u32 zstd bytes | zstd frame (checksummed)
//             raw block = records x (varint length | bytes)
//   index   : "IDX1" | u32 zstd bytes | zstd frame of [u64 blocks, per block (u64 offset,
//             u64 first record, u32 records), u64 records, u32 JSON length, footer JSON]
//   trailer : u64 index offset | u64 records | "ILTEND01"
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ilt {

constexpr uint32_t kShardVersion = 1;

struct ShardWriterOptions {
  size_t block_bytes = 256 << 10;  // raw bytes per block before compression
  int zstd_level = 3;
};

// Writes records in order. Nothing appears under the real name until finish().
class ShardWriter {
 public:
  ShardWriter(const std::string& path, const std::string& kind, const nlohmann::json& header,
              ShardWriterOptions options = {});
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add(std::string_view record);
  uint64_t records() const;
  // Writes the index with `footer` (what is known only at the end: counts, input
  // checksums), then renames NAME.tmp to NAME.
  void finish(const nlohmann::json& footer);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a shard from a file (random access through the index) or a pipe (sequential).
// Truncated, corrupt, wrong-kind and newer-version input is refused with one clear line.
class ShardReader {
 public:
  // expect_kind: if not empty, any other kind is an error.
  explicit ShardReader(const std::string& path, std::string_view expect_kind = {});
  ~ShardReader();
  ShardReader(ShardReader&&) noexcept;
  ShardReader& operator=(ShardReader&&) noexcept;

  const std::string& path() const;
  const std::string& kind() const;
  uint32_t version() const;
  const nlohmann::json& header() const;
  // Footer JSON: at open for files, after the last record for pipes.
  const nlohmann::json& footer() const;
  // Header with the footer's keys merged in: the whole metadata of the shard.
  nlohmann::json meta() const;

  // Sequential reading. The view stays valid until the next call. Returns false at the end,
  // after the index and trailer have been verified.
  bool next(std::string_view* record);
  uint64_t next_index() const;  // index of the record next() returns next

  // Random access (files only).
  bool random_access() const;
  uint64_t size() const;  // number of records (pipes: known only after the end)
  uint64_t num_blocks() const;
  // Block b holds records [block_first(b), block_first(b) + block_records(b)).
  uint64_t block_first(uint64_t b) const;
  uint64_t block_records(uint64_t b) const;
  std::string_view get(uint64_t i);  // valid until the next get()/next()

  // Decompresses the whole shard once, verifying every block (for `ilt-inspect --verify`).
  void verify();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Provenance of an input shard for a footer: {"name", "records", "sha256" (files only)}.
nlohmann::json shard_source(const std::string& path, uint64_t records);

}  // namespace ilt
