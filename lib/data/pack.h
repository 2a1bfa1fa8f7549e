// Packing documents (lists of words) into fixed-length training examples.
#pragma once
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/examples.h"

namespace ilt {

enum class LabelMode { NextWord, NextChars };
LabelMode parse_label_mode(const std::string& s);
const char* label_mode_name(LabelMode m);

struct PackOptions {
  LabelMode labels = LabelMode::NextWord;
  size_t max_word_length = 32;  // bytes per word and per label, BOS/EOS included
  size_t max_seq_length = 128;  // words per example
  bool packing = true;          // concatenate documents into full sequences
};

// Documents must already start with their BOS word (see with_bos()).
// Warnings (unmatched ShiftOut/ShiftIn) go to `warn`.
class Packer {
 public:
  explicit Packer(PackOptions options, std::function<void(const std::string&)> warn = {});

  // Adds one document with the caller's word ids (e.g. image record numbers). `id` names
  // the document in warnings.
  void add(const std::vector<std::string>& words, const std::vector<uint32_t>& ids, const std::string& tag,
           const std::string& id);
  // Adds one document, numbering words in the packer's own vocab() in order of first use.
  void add(const std::vector<std::string>& words, const std::string& tag, const std::string& id);
  // The examples so far, in the order they were filled. Word ids index vocab().
  std::vector<Example>& examples();
  // Moves out the examples no later add() can change (all of them with `all`), so that a
  // long run writes them as it goes.
  std::vector<Example> take_complete(bool all);
  const std::vector<std::string>& vocab() const { return vocab_; }
  uint64_t documents() const { return documents_; }
  uint64_t words() const { return words_; }
  uint64_t warnings() const { return warnings_; }

 private:
  uint32_t id_of(const std::string& w);
  void start_example();
  PackOptions opt_;
  std::function<void(const std::string&)> warn_;
  std::vector<Example> examples_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, uint32_t> ids_;
  uint64_t documents_ = 0, words_ = 0, warnings_ = 0;
};

// The document's words with the BOS word ("\x02") in front.
std::vector<std::string> with_bos(const std::vector<std::string>& words);

// Label of word j of a document: the next word, or the next bytes of the document (cut at a
// character boundary), so that BOS + label and label + EOS fit in max_word_length.
std::string label_for(const std::vector<std::string>& words, size_t j, LabelMode mode, size_t max_word_length);

// Prefix-LM blocks of a document: each ShiftOut ... ShiftIn span, markers included, as word
// positions [begin, end). A ShiftOut inside an open block, a ShiftIn without ShiftOut and a
// ShiftOut never closed make no block; each is reported to `warn` (may be empty).
// open_at (if given) receives the position of a ShiftOut never closed, or -1.
std::vector<PrefixBlock> find_prefix_blocks(const std::vector<std::string>& words,
                                           const std::function<void(const std::string&)>& warn = {},
                                           int64_t* open_at = nullptr);
// The parts of `blocks` inside positions [from, to), moved to start at `base`. A part of one
// word is no block (it has nothing to attend to both ways) and is left out.
std::vector<PrefixBlock> clip_prefix_blocks(const std::vector<PrefixBlock>& blocks, size_t from, size_t to,
                                            size_t base = 0);

// Deterministic train/validation split by a hash of the document's text.
bool is_validation(const std::string& text, double fraction);

// Fisher-Yates with mt19937_64: the same order on every platform for the same seed
// (std::shuffle's algorithm is left to the library).
template <typename T>
void seeded_shuffle(std::vector<T>* v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[rng() % i]);
}
inline void shuffle_examples(std::vector<Example>* examples, uint64_t seed) { seeded_shuffle(examples, seed); }

// Renumbers word ids to 0..K-1 keeping their order (id_space: ids are below it) and returns
// the old id of each new one, ascending: the vocabulary can then be written in one sequential
// pass over the records the old ids number.
std::vector<uint32_t> compact_ids(std::vector<Example>* examples, size_t id_space);

}  // namespace ilt
