#include "shard/series.h"

#include <fmt/format.h>

#include "common/error.h"

namespace ilt {

std::string numbered_shard_path(const std::string& path, size_t index) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  const std::string stem = has_ext ? path.substr(0, dot) : path, ext = has_ext ? path.substr(dot) : "";
  return fmt::format("{}-{:05d}{}", stem, index, ext);
}

std::string describe_shards(const std::vector<std::string>& paths) {
  if (paths.size() == 1) return paths[0];
  if (paths.empty()) return "no shards";
  return fmt::format("{} shards {}..{}", paths.size(), paths.front(), paths.back());
}

ShardSeries::ShardSeries(std::string path, std::string kind, nlohmann::json header, uint64_t shard_bytes,
                         ShardWriterOptions options)
    : path_(std::move(path)), kind_(std::move(kind)), header_(std::move(header)), shard_bytes_(shard_bytes),
      options_(options) {
  if (shard_bytes_ > 0 && path_ == "-") fail("numbered shards (a shard size) need a file name, not '-'");
}

ShardSeries::~ShardSeries() = default;

void ShardSeries::open() {
  nlohmann::json head = header_;
  std::string path = path_;
  if (shard_bytes_ > 0) {
    path = numbered_shard_path(path_, writers_.size());
    head["shard_index"] = writers_.size();
  }
  writers_.push_back(std::make_unique<ShardWriter>(path, kind_, head, options_));
  paths_.push_back(path);
  bytes_now_ = 0;
}

size_t ShardSeries::add(std::string_view record) {
  if (writers_.empty() || (shard_bytes_ > 0 && bytes_now_ > 0 && bytes_now_ + record.size() > shard_bytes_)) open();
  writers_.back()->add(record);
  bytes_now_ += record.size();
  ++records_;
  return writers_.size() - 1;
}

void ShardSeries::finish(const std::function<nlohmann::json(size_t)>& footer) {
  if (writers_.empty()) open();
  for (size_t i = 0; i < writers_.size(); ++i) writers_[i]->finish(footer(i));
}

}  // namespace ilt
