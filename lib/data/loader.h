// The data loader: examples shards -> batches of LibTorch tensors, prefetched on a
// background thread, infinite with a reshuffle per epoch, resumable exactly.
//
// Streaming: memory does not grow with the corpus. Each epoch walks the shards in a seeded
// order and each shard's blocks in a seeded order; that stream is cut into windows of
// `shuffle_buffer` examples, each shuffled (seeded) and read when reached. A window is a pure
// function of (seed, epoch, window), so a resume seeks straight to its window. Vocabulary
// records (word bytes and images) are read on demand through a bounded cache (VocabCache).
//
// Shapes: B examples, L words (the longest example of the batch), T = max word length,
// N distinct word images in the batch, P their patches (H x W_p pixels each).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/vocab_cache.h"

namespace ilt {

struct LoaderOptions {
  size_t batch_size = 8;  // examples per batch
  uint64_t seed = 0;
  bool shuffle = true;    // reshuffle each epoch (seeded); false: shard order
  bool infinite = true;   // false: one pass, the last batch may be smaller
  int prefetch = 4;       // batches built ahead of the consumer; 0: no thread, build() only
  // Page-locked batches (CUDA training): the copy to the GPU then runs without the host
  // waiting (a non-blocking transfer). Needs a LibTorch with CUDA and a GPU.
  bool pin_memory = false;
  // Data parallelism: every rank walks the same global order of batch_size examples and builds
  // only its part of each batch (examples [part * B / parts, (part + 1) * B / parts)), so the
  // order, the state and a resume do not depend on how many ranks share the batch.
  size_t part = 0, parts = 1;
  // Examples shuffled together (the whole epoch when there are fewer): their encoded records
  // are held in memory, about 1-2 KB each. Without shuffling: how many are read ahead.
  size_t shuffle_buffer = 16384;
  // Decoded word images kept in memory (least recently used evicted).
  size_t vocab_cache_bytes = size_t(256) << 20;
};

// Where the loader is: the next batch starts at example `cursor` of epoch `epoch`'s order.
struct LoaderState {
  uint64_t epoch = 0;
  uint64_t cursor = 0;
  nlohmann::json to_json() const { return {{"epoch", epoch}, {"cursor", cursor}}; }
  static LoaderState from_json(const nlohmann::json& j) {
    return {j.at("epoch").get<uint64_t>(), j.at("cursor").get<uint64_t>()};
  }
  bool operator==(const LoaderState& o) const { return epoch == o.epoch && cursor == o.cursor; }
};

// What the model's packed (varlen) layouts need to know about a batch, on the host: with it
// the forward pass never reads a device tensor back (each read is a host sync on CUDA, the
// GPU drained before the CPU can go on). Built with the batch, on the loader's thread.
struct BatchLayout {
  std::vector<int64_t> patch_counts;   // [N] patches of each distinct image
  std::vector<int64_t> word_lengths;   // [N] real bytes of each bytes-encoder input (BOS + word + EOS)
  std::vector<int64_t> label_rows;     // [M] flat index (row * L + word) of each word with a label
  std::vector<int64_t> label_lengths;  // [M] its target bytes (label + EOS)
  std::vector<int64_t> piece_lengths;  // words of each document piece, row after row
  int64_t target_bytes = 0;            // sum of label_lengths
  bool filled = false;
};

struct Batch {
  torch::Tensor word_bytes;      // [B, L, T] uint8: BOS + word + EOS, then PAD
  torch::Tensor word_mask;       // [B, L] bool: a real word
  torch::Tensor positions;       // [B, L] int64: position in its document (restarts per document)
  torch::Tensor doc_ids;         // [B, L] int32: document piece within the row, -1 for padding
  torch::Tensor prefix_ids;      // [B, L] int32: prefix-LM block within the row, -1 if none
  // Labels. A word inside a prefix block has none (it sees its next word), except the block's
  // closing ShiftIn: its decoder rows are PAD and its target length 0, as for padding.
  torch::Tensor decoder_input;   // [B, L, T] uint8: BOS + label, then PAD
  torch::Tensor decoder_target;  // [B, L, T] uint8: label + EOS, then PAD
  torch::Tensor target_lengths;  // [B, L] int32: real target bytes (label + EOS); 0: no label
  torch::Tensor image_index;     // [B, L] int64: index into the batch's distinct images, -1 for padding
  torch::Tensor image_patches;   // [P, H, W_p] uint8: patches of the distinct images, image after image
  torch::Tensor image_patch_counts;  // [N] int64: patches per distinct image
  torch::Tensor unique_word_bytes;   // [N, T] uint8: bytes-encoder input of each distinct word
  torch::Tensor doc_words;       // [B, L] int32: length in words of the document the word is in
  std::vector<std::vector<std::string>> doc_tags;  // [B][document piece] the documents' tags
  int64_t words = 0;             // real words in the batch
  int64_t labels = 0;            // of which have a label (target_lengths > 0)
  int64_t label_bytes = 0;       // text bytes the targets encode (labels without EOS)
  uint64_t epoch = 0;            // epoch of the batch's first example
  LoaderState next_state;        // the loader's state after this batch
  std::vector<uint64_t> example_ids;  // global example indices, for tests and debugging
  BatchLayout layout;            // host-side lengths and indices (stays on the CPU in to_device)
};

// The layout of a batch whose tensors are on the CPU (make_batch fills it; call it again
// after changing a batch's tensors by hand).
BatchLayout batch_layout(const Batch& b);

struct WordImage;
struct Example;

// Builds a batch from examples; words[b][l] is the image (which carries the bytes) of example
// b's word l; one pointer per distinct word (the batch encodes each distinct image once).
// T: max word length; H, Wp: image height and patch width.
Batch make_batch(const std::vector<Example>& examples, const std::vector<std::vector<const WordImage*>>& words,
                 int64_t T, int64_t H, int64_t Wp);
// The same with word ids indexing vocabs[b] (tests and generation).
Batch make_batch(const std::vector<Example>& examples, const std::vector<const std::vector<WordImage>*>& vocabs,
                 int64_t T, int64_t H, int64_t Wp);

class DataLoader {
 public:
  DataLoader(const std::vector<std::string>& examples_paths, LoaderOptions options, LoaderState start = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch; nullopt at the end of a finite pass. Rethrows the builder's errors.
  std::optional<Batch> next();
  // State after the last batch next() returned (the start state before any).
  LoaderState state() const;

  uint64_t num_examples() const;
  int64_t max_word_length() const;
  int64_t max_seq_length() const;
  // The first examples shard's header (params, render settings, label mode).
  const nlohmann::json& meta() const;

  // Builds the batch of the given global example ids directly (no thread, no state). A global
  // id numbers the examples of all shards in the order given.
  Batch build(const std::vector<uint64_t>& example_ids) const;

  // The global ids of epoch `epoch`'s order from example `from` on (`count` of them): the
  // order next() follows (for tests and tools; reads no records).
  std::vector<uint64_t> order(uint64_t epoch, uint64_t from, uint64_t count) const;
  // Vocabulary cache counters (hits, misses, bytes held).
  VocabCacheStats vocab_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ilt
