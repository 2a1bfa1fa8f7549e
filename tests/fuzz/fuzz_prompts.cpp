// Fuzz target: the prompt path of ilt-generate, without a model (apps/ilt-generate.cpp,
// lib/generate/generate.cpp, lib/generate/word_rules.h).
//
// Input: byte 0 picks the options: format (lines, jsonl, paragraphs) = b % 3, invalid UTF-8
// policy (error, replace, skip) = b / 3 % 3; byte 1 the model's max_word_length T = 3 + b % 62
// (default checkpoints: 32). The rest is the prompt input, read with keep_empty as
// ilt-generate reads it (file, memfd). Each prompt is segmented with the generation
// segmenter (max_bytes T - 2) and split as split_prompt() does: an unfinished last word is
// the prefix the first generated word continues, unless it is too long (>= limit, T - 2).
// Then one word is "generated" from that prefix with allowed_next_bytes(), choosing among
// the allowed bytes with a PRNG seeded by the prompt. Invariants (a failure aborts):
//  - the segmentation rules (segment_checks.h), with the words giving the prompt back;
//  - lines: one prompt per input line, except lines skipped for invalid UTF-8;
//  - allowed bytes keep the word valid UTF-8 (possibly open at the end) within the limit;
//    a generated word is valid UTF-8 and at most `limit` bytes; a complete one outside
//    dictionary scripts segments as one word.
#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <random>

#include "data/examples.h"
#include "fuzz_common.h"
#include "generate/word_rules.h"
#include "segment_checks.h"
#include "text/input.h"
#include "text/segment.h"
#include "text/utf8.h"

using namespace ilt;

namespace {

// Valid UTF-8 except possibly for one unfinished character at the end (no allocation).
bool valid_prefix(std::string_view w) {
  size_t bad = utf8_invalid_offset(w);
  if (bad == w.size()) return true;
  std::string_view tail = w.substr(bad);
  unsigned char lead = static_cast<unsigned char>(tail[0]);
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  if (tail.size() >= need) return false;
  // Complete it with the smallest continuation bytes its lead allows; valid then iff a prefix.
  char c[4];
  std::memcpy(c, tail.data(), tail.size());
  for (size_t i = tail.size(); i < need; ++i) c[i] = char(i == 1 && lead == 0xE0 ? 0xA0 : i == 1 && lead == 0xF0 ? 0x90 : 0x80);
  return utf8_valid(std::string_view(c, need));
}

// tail + b is a valid prefix, where tail is the word from its last character on.
bool valid_after(std::string_view tail, int b) {
  char c[8];
  std::memcpy(c, tail.data(), tail.size());
  c[tail.size()] = char(b);
  return valid_prefix(std::string_view(c, tail.size() + 1));
}

bool has_dictionary_script(std::string_view w) {
  const auto* p = reinterpret_cast<const unsigned char*>(w.data());
  for (size_t i = 0; i < w.size();) {
    size_t n;
    if (is_dictionary_script(utf8_decode(p + i, &n))) return true;
    i += n;
  }
  return false;
}

// One word after `prefix` as the generator writes it: allowed bytes only, until EOS, a
// complete word or the limit.
void generate_word(const std::string& prefix, size_t limit, std::mt19937_64& rng, Segmenter& seg) {
  std::string w = prefix;
  for (int steps = 0;; ++steps) {
    FUZZ_CHECK(steps <= 64, "the word never ends");
    auto allowed = allowed_next_bytes(w, limit);
    std::vector<int> choice;
    for (int b = 0; b < 256; ++b)
      if (allowed[size_t(b)]) choice.push_back(b);
    // w is valid up to its last character: only that character decides what may follow.
    size_t last = w.size();
    while (last > 0 && w.size() - last < 4 && (static_cast<unsigned char>(w[last - 1]) & 0xC0) == 0x80) --last;
    if (last > 0) --last;
    std::string_view tail = std::string_view(w).substr(last);
    // Every allowed byte at the first step, the chosen one at the others (fast; over many
    // runs the choices cover the rest).
    auto check = [&](int b) {
      if (b == kEos) return;
      FUZZ_CHECK(valid_after(tail, b), "allowed byte 0x%02x after a %zu-byte word breaks UTF-8", b, w.size());
      FUZZ_CHECK(b != kPad && b != kBos, "NUL or BOS allowed as content");
      FUZZ_CHECK(w.size() + 1 <= limit, "allowed byte 0x%02x makes the word %zu > %zu bytes", b, w.size() + 1, limit);
    };
    if (steps == 0)
      for (int b : choice) check(b);
    if (choice.empty()) break;  // nothing may follow: the word is as complete as it gets
    int b = choice[size_t(rng() % choice.size())];
    check(b);
    if (b == kEos) {
      FUZZ_CHECK(utf8_valid(w), "EOS allowed inside a character");
      break;
    }
    w += char(b);
    if (word_complete(w) || w.size() >= limit) break;
  }
  FUZZ_CHECK(utf8_valid(w), "a generated word is not valid UTF-8");
  FUZZ_CHECK(w.size() <= limit || w == prefix, "a generated word has %zu > %zu bytes", w.size(), limit);
  if (!w.empty() && word_complete(w) && !has_dictionary_script(w)) {
    auto words = seg.words(w);
    FUZZ_CHECK(words.size() == 1, "a complete generated word segments as %zu words", words.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static std::array<std::unique_ptr<Segmenter>, 62> segmenters;
  uint8_t b = data[0];
  size_t T = 3 + data[1] % 62;
  auto& seg = segmenters[T - 3];
  if (!seg) seg = std::make_unique<Segmenter>(SegmentOptions{T - 2});
  const size_t limit = T - 2;  // GenerateOptions::max_word_bytes 0: the model's T - 2

  DocumentReaderOptions o;
  o.format = b % 3 == 0 ? InputFormat::Lines : b % 3 == 1 ? InputFormat::Jsonl : InputFormat::Paragraphs;
  o.invalid = b / 3 % 3 == 0 ? InvalidUtf8::Error : b / 3 % 3 == 1 ? InvalidUtf8::Replace : InvalidUtf8::Skip;
  o.keep_empty = true;
  std::string_view input = ilt::fuzz::as_view(data + 2, size - 2);
  ilt::fuzz::MemFile file(input);

  uint64_t prompts = 0;
  bool ok = ilt::fuzz::accepts([&] {
    DocumentReader reader(file.path(), o);
    Document doc;
    while (reader.next(&doc)) {
      ++prompts;
      std::vector<uint32_t> lengths;
      seg->segment(doc.text, &lengths);
      ilt::fuzz::check_segmentation(doc.text, lengths, T - 2);
      std::vector<std::string> words;
      for (auto w : seg->words(doc.text)) words.emplace_back(w);
      // split_prompt() and the length rule of Generator::run().
      std::string prefix;
      if (!words.empty() && !word_complete(words.back())) prefix = words.back();
      if (prefix.size() >= limit) prefix.clear();
      if (prompts <= 16) {  // the first prompts of an input: enough, and keeps it fast
        std::mt19937_64 rng(std::hash<std::string>()(doc.text));
        generate_word(prefix, limit, rng, *seg);
      }
    }
    if (o.format == InputFormat::Lines)
      FUZZ_CHECK(prompts + reader.skipped() == reader.lines_read(), "%llu prompts and %llu skipped for %llu lines",
                 (unsigned long long)prompts, (unsigned long long)reader.skipped(),
                 (unsigned long long)reader.lines_read());
  });
  (void)ok;
  return 0;
}
