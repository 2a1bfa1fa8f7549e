// Vocabulary shards read on demand: each word's record (its bytes and image) is decoded when a
// batch needs it and kept in a least-recently-used cache bounded in bytes, so the loader's
// memory does not grow with the vocabulary. Zipf-distributed words make the frequent ones hits.
// Thread-safe (one lock): the loader's thread and validation share it. No LibTorch here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "shard/records.h"

namespace ilt {

struct VocabCacheStats {
  uint64_t hits = 0, misses = 0;  // get() calls served from memory / decoded from the shard
  uint64_t bytes = 0, entries = 0;  // held now
};

class VocabCache {
 public:
  // capacity_bytes: decoded images kept (at least the words of the batch being built are).
  explicit VocabCache(size_t capacity_bytes);
  ~VocabCache();
  VocabCache(const VocabCache&) = delete;
  VocabCache& operator=(const VocabCache&) = delete;

  // Opens a vocabulary shard, once per path; returns its number. Its images must be
  // `height` pixels high and a multiple of `patch_width` wide (checked as they are read).
  uint32_t open(const std::string& path, int64_t height, int64_t patch_width);
  const std::string& path(uint32_t vocab) const;
  uint64_t size(uint32_t vocab) const;  // records (word ids are below it)

  // Word `id` of vocabulary `vocab`. Throws ilt::Error naming the shard and record if it is
  // out of range, corrupt or of the wrong size. The pointer stays valid while held.
  std::shared_ptr<const WordImage> get(uint32_t vocab, uint32_t id);
  VocabCacheStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ilt
