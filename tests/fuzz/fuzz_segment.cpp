// Fuzz target: the word segmenter (lib/text/segment.h).
//
// Input: byte 0 picks max_bytes (0 = no limit, else 1..47; the tools use 30), the rest is
// the text, made valid UTF-8 the way `--invalid replace` does (U+FFFD for each maximal
// invalid subsequence). One Segmenter per max_bytes is kept across inputs, as the tools
// reuse theirs across documents. Invariants (segment_checks.h): the words concatenated give
// the text back exactly, and the word rules hold; segmenting again gives the same words.
#include <array>
#include <memory>

#include "fuzz_common.h"
#include "segment_checks.h"
#include "text/segment.h"
#include "text/utf8.h"

using namespace ilt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static std::array<std::unique_ptr<Segmenter>, 48> segmenters;
  size_t max_bytes = data[0] % 48;
  auto& seg = segmenters[max_bytes];
  if (!seg) seg = std::make_unique<Segmenter>(SegmentOptions{max_bytes});

  std::string_view raw = ilt::fuzz::as_view(data + 1, size - 1);
  std::string text = utf8_valid(raw) ? std::string(raw) : utf8_replace_invalid(raw);
  FUZZ_CHECK(utf8_valid(text), "utf8_replace_invalid left invalid UTF-8");

  std::vector<uint32_t> lengths;
  seg->segment(text, &lengths);
  ilt::fuzz::check_segmentation(text, lengths, max_bytes);

  std::vector<uint32_t> again{7};  // segment() appends
  seg->segment(text, &again);
  FUZZ_CHECK(again.size() == lengths.size() + 1 && std::equal(lengths.begin(), lengths.end(), again.begin() + 1),
             "segmenting the same text twice gives different words");
  auto words = seg->words(text);
  FUZZ_CHECK(words.size() == lengths.size(), "words() and segment() disagree");
  return 0;
}
