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

// Valid UTF-8 except possibly for one unfinished character at the end.
bool valid_prefix(std::string_view w) {
  size_t bad = utf8_invalid_offset(w);
  if (bad == w.size()) return true;
  std::string_view tail = w.substr(bad);
  if (tail.size() >= 4) return false;
  // Completing the tail with continuation bytes must give a valid character.
  static const char* fill[] = {"\x80\x80\x80", "\xA0\x80\x80", "\x90\x80\x80", "\x80\x80\x80"};
  for (const char* f : fill) {
    std::string t(tail);
    unsigned char lead = static_cast<unsigned char>(t[0]);
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (t.size() >= need) continue;
    t.append(f, need - t.size());
    if (utf8_valid(t)) return true;
  }
  return false;
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
    for (int b : choice) {
      if (b == kEos) continue;
      std::string next = w + char(b);
      FUZZ_CHECK(valid_prefix(next), "allowed byte 0x%02x after a %zu-byte word breaks UTF-8", b, w.size());
      FUZZ_CHECK(b != kPad && b != kBos, "NUL or BOS allowed as content");
      FUZZ_CHECK(next.size() <= limit, "allowed byte 0x%02x makes the word %zu > %zu bytes", b, next.size(), limit);
    }
    if (choice.empty()) break;  // nothing may follow: the word is as complete as it gets
    int b = choice[size_t(rng() % choice.size())];
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
      std::mt19937_64 rng(std::hash<std::string>()(doc.text));
      generate_word(prefix, limit, rng, *seg);
    }
    if (o.format == InputFormat::Lines)
      FUZZ_CHECK(prompts + reader.skipped() == reader.lines_read(), "%llu prompts and %llu skipped for %llu lines",
                 (unsigned long long)prompts, (unsigned long long)reader.skipped(),
                 (unsigned long long)reader.lines_read());
  });
  (void)ok;
  return 0;
}
