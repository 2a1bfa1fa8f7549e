// Training examples: what ilt-pack writes and the data loader reads (no LibTorch here).
//
// An examples shard (kind "examples") holds one Example per record. Words are ids into the
// output's vocabulary shard (kind "vocab": record i = word i as an encoded WordImage, i.e. its
// bytes and its image), so every distinct word is stored, and later encoded, once.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ilt {

inline constexpr const char* kKindExamples = "examples";
inline constexpr const char* kKindVocab = "vocab";

// Special bytes (C0 controls, not extra ids).
inline constexpr uint8_t kPad = 0x00, kBos = 0x02, kEos = 0x03, kShiftOut = 0x0E, kShiftIn = 0x0F;

// A document, or the part of one, inside an example.
struct DocPiece {
  uint32_t length = 0;          // words in this example
  uint32_t first_position = 0;  // position of its first word in the whole document
  uint32_t doc_words = 0;       // words in the whole document (with its BOS word)
  std::string tag;              // the document's tag (e.g. language), may be empty
};

// A prefix-LM block: positions [begin, end) of the example attend to each other both ways.
struct PrefixBlock {
  uint32_t begin = 0, end = 0;
};

struct Example {
  std::vector<uint32_t> word_ids;   // [L] vocabulary ids
  std::vector<std::string> labels;  // [L] label bytes without BOS/EOS; "" = end of document
  std::vector<DocPiece> docs;       // lengths sum to L; attention never crosses them
  std::vector<PrefixBlock> prefix_blocks;

  size_t size() const { return word_ids.size(); }
};

std::string encode_example(const Example& ex);
// Throws ilt::Error on malformed records (also checks the invariants above).
void decode_example(std::string_view rec, Example* ex);

// The vocabulary shard named by an examples shard's header ("vocab"), beside that shard.
// Throws ilt::Error if the header names none.
std::string vocab_path(const std::string& examples_path, const nlohmann::json& header);
// The name ilt-pack records for a vocabulary written at `path` (its file name).
std::string vocab_name(const std::string& path);

// Positions whose label is not trained on: every word of a prefix block (it sees the next
// one, its own label) except a ShiftIn that closes the block, whose label is the first word
// after it. word_at(l) is the word at position l. The loader applies this to every shard,
// old ones included (labels are stored for every position).
std::vector<uint32_t> ignored_labels(const Example& ex, const std::function<std::string_view(size_t)>& word_at);

// Per-position helpers shared by the packer, the loader and the tests.

// Bytes-encoder input of a word: BOS + word + EOS, the word cut (at a UTF-8 boundary) so
// that the whole fits in max_len bytes.
std::string word_input_bytes(std::string_view word, size_t max_len);
// Cuts a label to at most max_len - 1 bytes at a UTF-8 character boundary, so that
// BOS + label (decoder input) and label + EOS (decoder target) fit in max_len.
std::string_view cut_label(std::string_view label, size_t max_len);

}  // namespace ilt
