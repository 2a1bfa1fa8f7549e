// ilt-pack's work: words shards + images shards -> examples and vocabulary shards, in memory
// bounded by the vocabulary, not the corpus (no LibTorch here).
//
// Words get ids in order of first use in the words shards (per split), so the output does not
// depend on how the images were split into shards (ilt-render --part I/N): N parts pack to the
// same records as one serial render. Examples are written as they fill, shuffled in chunks;
// the vocabulary is put into id order through bucket files on disk (spill), one bucket in
// memory at a time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/pack.h"

namespace ilt {

struct PackFilesOptions {
  std::vector<std::string> inputs;  // words shards
  std::vector<std::string> images;  // images shards rendered from them
  std::string prefix;               // output: PREFIX.SPLIT.examples / PREFIX.SPLIT.vocab
  PackOptions pack;
  double validation_fraction = 0;
  uint64_t seed = 0;
  // Examples shards of at most this many encoded bytes each, named PREFIX.SPLIT-NNNNN.examples
  // (all sharing PREFIX.SPLIT.vocab); 0: one PREFIX.SPLIT.examples per split.
  uint64_t shard_bytes = 0;
  // Encoded examples shuffled together in memory (the whole split when smaller).
  uint64_t chunk_bytes = uint64_t(64) << 20;
  // Vocabulary ids per spill bucket (one bucket of images is in memory at a time).
  uint32_t bucket_ids = 1u << 16;
};

struct PackSplitResult {
  std::string name;                   // "train", "validation"
  std::vector<std::string> examples;  // the examples shards written
  std::string vocab;                  // the vocabulary shard
  uint64_t examples_count = 0, documents = 0, words = 0, distinct = 0;
  double fill = 0;
};

// Throws ilt::Error naming the file and record on bad input; writes nothing under the final
// names unless it succeeds (vocabulary first, then the examples shards).
std::vector<PackSplitResult> pack_files(const PackFilesOptions& options);

}  // namespace ilt
