// Generation: the two-level loop of the Image Latent Transformer.
//
//   latent level   the latent transformer reads the words so far and yields the next
//                  word's vector (one new position per word, with a KV cache);
//   bytes level    the bytes decoder writes that word byte by byte (KV cache per word)
//                  until EOS, a complete word, or the byte limit;
//   feedback       the word is rendered with the checkpoint's renderer settings, encoded
//                  by the image and bytes encoders, and appended to the latent input.
//
// Prefix blocks: a prompt's ShiftOut ... ShiftIn spans are read as in training, both ways
// (the prefill uses the training block mask). A prompt that ends inside an open block is read
// causally, as training reads a block never closed; so are ShiftOut and ShiftIn the model
// generates (cached keys are not recomputed, so a generated block cannot become two-way; and
// block words carry no trained label, so text after a generated ShiftOut is outside what the
// model learnt: a stop string "\x0E" ends the text there).
//
// The empty word (EOS at once) ends the text. Prompts are batched: each row is one text
// (or one beam), rows never see each other, so a prompt's output does not depend on the
// other prompts of its batch.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/model.h"
#include "shard/records.h"

namespace ilt {

struct GenerateOptions {
  int max_words = 100;       // generated words per prompt at most
  int min_words = 0;         // the text may not end (empty word) before this many words
  int max_word_bytes = 0;    // bytes per word at most; 0: max word length - 2 (as segmented)
  double temperature = 0;    // 0: greedy
  int top_k = 0;             // sample among the k likeliest bytes (0: all)
  double top_p = 1.0;        // sample among the likeliest bytes holding this probability
  double min_p = 0;          // sample among bytes at least this fraction as likely as the likeliest
  // Word-level controls (a word is the model's token). Both look at the row's words so far,
  // prompt included, and act on the byte that would complete a word (its last byte, or EOS):
  double repetition_penalty = 1.0;  // a word already in the text: its probability / this (>= 1)
  int no_repeat_ngram = 0;          // N > 0: no word that would repeat an N-gram of words
  uint64_t seed = 0;         // sampling: prompt i draws from a generator seeded by (seed, i)
  int beams = 1;             // > 1: word-level beam search (greedy bytes, no sampling)
  bool use_cache = true;     // false: recompute everything for every word and byte
  std::vector<std::string> stop;  // stop when the continuation contains one (cut before it)
  bool use_image = true, use_bytes = true;  // modality switches, as in evaluation
  std::string precision = "fp32";  // fp32, bf16 (autocast; LibTorch 2.4 or newer)
  // Words of a prompt the latent transformer reads at most (BOS included): longer prompts
  // keep BOS and their last max_context - 1 words (Generation::dropped_words says how many
  // went). Bounds prefill time and memory. 0: no bound.
  int max_context = 0;
};
// Beams beyond this cost too much to be useful (each beam proposes `beams` words).
constexpr int kMaxBeams = 32;

struct GeneratedWord {
  std::string text;      // the bytes added to the text (for a continued prompt word: its rest)
  double logprob = 0;    // natural log-probability of the word's bytes (and its EOS)
};

struct Generation {
  std::string prompt;
  std::string text;                 // the continuation
  std::vector<GeneratedWord> words;
  double logprob = 0;               // of the whole continuation: its words, and its end if it ended
  std::string stop_reason;          // "end" (empty word), "max_words" or "stop" (a stop string)
  int64_t dropped_words = 0;        // prompt words beyond max_context, not read
  bool open_block = false;          // the prompt ends inside a ShiftOut block: read causally
};

// The checkpoint-specific pieces the loop needs, supplied by the caller.
struct GenerateEnv {
  std::function<void(const std::string& word, WordImage* out)> render;  // the checkpoint's renderer
  std::function<std::vector<std::string>(std::string_view text)> segment;  // text -> words
  int64_t max_word_length = 32;     // T of the training data
};

class Generator {
 public:
  Generator(ImageLatentTransformer model, GenerateEnv env, torch::Device device);

  // Continues each prompt. Streaming: on_text(i, piece) receives prompt i's continuation as
  // it grows (never text a stop string may still remove; with beams, once, at the end).
  // first_index numbers the prompts for seeding (prompt i of a stream keeps its samples
  // whatever batch it is in).
  std::vector<Generation> generate(const std::vector<std::string>& prompts, const GenerateOptions& options,
                                   const std::function<void(size_t, const std::string&)>& on_text = {},
                                   uint64_t first_index = 0);

  // Totals over every generate() call so far.
  struct Stats {
    int64_t prompts = 0, words = 0;
    int64_t latent_steps = 0, decoder_steps = 0;  // model calls per level
    double seconds = 0;         // in generate()
    double prompt_seconds = 0;  // of which reading the prompts (the first latent step)
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Run;
  // generate() for the byte-level baseline (lib/generate/generate_bytes.cpp).
  std::vector<Generation> generate_bytes(const std::vector<std::string>& prompts, const GenerateOptions& options,
                                         const std::function<void(size_t, const std::string&)>& on_text,
                                         uint64_t first_index);
  ImageLatentTransformer model_;
  GenerateEnv env_;
  torch::Device device_;
  std::vector<WordImage> vocab_;  // every word rendered so far (the render cache)
  std::unordered_map<std::string, uint32_t> ids_;
  Stats stats_;
  friend struct Run;
};

// Splits a prompt into the words the model reads and the unfinished last word the decoder
// continues: ("The cat", words) -> input [BOS, "The "], prefix "cat". Complete prompts
// (ending in whitespace, or empty) have an empty prefix.
void split_prompt(const std::vector<std::string>& words, std::vector<std::string>* input, std::string* prefix);

// The k likeliest bytes among `allowed` (k = 0: all), likeliest first, ties to the smaller byte.
std::vector<int> likeliest_bytes(const float* logprobs, const std::array<bool, 256>& allowed, size_t k);

// Chooses a byte from log-probabilities [256] restricted to `allowed`: the likeliest with
// temperature 0, else a sample after temperature, top-k, min-p (bytes at least min_p times
// as likely as the likeliest) and top-p (u uniform in [0, 1)).
int choose_byte(const float* logprobs, const std::array<bool, 256>& allowed, double temperature, int top_k,
                double top_p, double u, double min_p = 0);

// Word-level controls for one text: the log-probability offset of each word that the next
// word may not simply be (-inf: banned, by no_repeat_ngram; -log(penalty): already in the
// text). `words`: the text's words so far, prompt included (BOS excluded).
std::unordered_map<std::string, float> word_offsets(const std::vector<std::string>& words, double repetition_penalty,
                                                    int no_repeat_ngram);

}  // namespace ilt
