// Output split into numbered shards of a chosen size, for corpora that should not be one
// file: NAME.EXT becomes NAME-00000.EXT, NAME-00001.EXT, ... each holding at most
// `shard_bytes` bytes of records (at least one record). Records go in order, so the
// shards' records, concatenated, are what one shard would hold.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shard/shard.h"

namespace ilt {

// NAME.EXT -> NAME-NNNNN.EXT (the extension is what follows the last dot of the file name).
std::string numbered_shard_path(const std::string& path, size_t index);
// For summaries: the one path, or "N shards FIRST..LAST".
std::string describe_shards(const std::vector<std::string>& paths);

class ShardSeries {
 public:
  // shard_bytes 0: one shard, at `path` itself (which may then be '-'). Otherwise every
  // shard's header gets "shard_index".
  ShardSeries(std::string path, std::string kind, nlohmann::json header, uint64_t shard_bytes,
              ShardWriterOptions options = {});
  ~ShardSeries();

  // Adds a record; returns the index of the shard it went to.
  size_t add(std::string_view record);
  // Finishes every shard (renames them into place, in order), shard i with footer(i). With
  // no record at all, one empty shard is written.
  void finish(const std::function<nlohmann::json(size_t)>& footer);
  const std::vector<std::string>& paths() const { return paths_; }
  uint64_t records(size_t shard) const { return writers_.at(shard)->records(); }
  uint64_t records() const { return records_; }

 private:
  void open();
  std::string path_, kind_;
  nlohmann::json header_;
  uint64_t shard_bytes_, bytes_now_ = 0, records_ = 0;
  ShardWriterOptions options_;
  std::vector<std::unique_ptr<ShardWriter>> writers_;
  std::vector<std::string> paths_;
};

}  // namespace ilt
