// Fuzz target: the shard reader (lib/shard/shard.h) and every record decoder.
//
// The input is read as a shard file (memfd, random access through the index) and as a pipe
// (sequential, the index read at the end). Every record is decoded with every decoder
// (words, images/vocab, examples), whatever the shard's kind, and the input itself is also
// decoded as one record, so the decoders see mutated records even when the shard around
// them is rejected. Invariants checked (a failure aborts):
//  - file and pipe reading, when both accept the input, give the same records;
//  - next() and get(i) give the same record i, with get() calls interleaved with next();
//  - a decoded record re-encodes to a record that decodes to the same value;
//  - verify() accepts what the sequential read accepted and vice versa.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/examples.h"
#include "fuzz_common.h"
#include "shard/records.h"
#include "shard/shard.h"

using namespace ilt;
using ilt::fuzz::accepts;
using ilt::fuzz::must;

namespace {

bool same(const Example& a, const Example& b) {
  if (a.word_ids != b.word_ids || a.labels != b.labels || a.docs.size() != b.docs.size() ||
      a.prefix_blocks.size() != b.prefix_blocks.size())
    return false;
  for (size_t i = 0; i < a.docs.size(); ++i) {
    const DocPiece &x = a.docs[i], &y = b.docs[i];
    if (x.length != y.length || x.first_position != y.first_position || x.doc_words != y.doc_words || x.tag != y.tag)
      return false;
  }
  for (size_t i = 0; i < a.prefix_blocks.size(); ++i)
    if (a.prefix_blocks[i].begin != b.prefix_blocks[i].begin || a.prefix_blocks[i].end != b.prefix_blocks[i].end)
      return false;
  return true;
}

// Decodes one record with every decoder; what a decoder accepts must round-trip.
void decode_all(std::string_view rec) {
  WordsDoc doc;
  if (accepts([&] { decode_words_doc(rec, &doc); })) {
    size_t total = 0;
    for (const auto& w : doc.words) total += w.size();
    FUZZ_CHECK(doc.text().size() == total, "words record: text() is not the words concatenated");
    std::string again = encode_words_doc(doc);
    WordsDoc back;
    must("decoding a re-encoded words record", [&] { decode_words_doc(again, &back); });
    FUZZ_CHECK(back.id == doc.id && back.tag == doc.tag && back.words == doc.words, "words record: round trip differs");
    // The second encoder (text + lengths) gives the same bytes.
    std::vector<uint32_t> lens;
    for (const auto& w : doc.words) lens.push_back(uint32_t(w.size()));
    std::string again2;
    must("encoding a words record from text and lengths",
         [&] { encode_words_doc(doc.id, doc.tag, doc.text(), lens, &again2); });
    FUZZ_CHECK(again2 == again, "words record: the two encoders differ");
  }
  WordImage img;
  if (accepts([&] { decode_word_image(rec, &img); })) {
    FUZZ_CHECK(img.pixels.size() == size_t(img.width) * img.height, "image record: %zu pixels for %ux%u",
               img.pixels.size(), unsigned(img.width), unsigned(img.height));
    std::string again;
    must("re-encoding an image record", [&] { again = encode_word_image(img); });
    WordImage back;
    must("decoding a re-encoded image record", [&] { decode_word_image(again, &back); });
    FUZZ_CHECK(back.word == img.word && back.width == img.width && back.height == img.height && back.pixels == img.pixels,
               "image record: round trip differs");
  }
  Example ex;
  if (accepts([&] { decode_example(rec, &ex); })) {
    FUZZ_CHECK(ex.labels.size() == ex.word_ids.size(), "example: %zu labels for %zu words", ex.labels.size(),
               ex.word_ids.size());
    uint64_t total = 0;
    for (const auto& d : ex.docs) total += d.length;
    FUZZ_CHECK(total == ex.size(), "example: document lengths do not add up");
    for (const auto& p : ex.prefix_blocks) FUZZ_CHECK(p.begin < p.end && p.end <= ex.size(), "example: bad prefix block");
    std::string again = encode_example(ex);
    Example back;
    must("decoding a re-encoded example", [&] { decode_example(again, &back); });
    FUZZ_CHECK(same(back, ex), "example: round trip differs");
  }
}

struct Read {
  bool ok = false;
  std::vector<std::string> records;
};

// Reads the shard at `path` completely; decodes every record.
Read read_shard(const std::string& path, bool interleave_get) {
  Read out;
  out.ok = accepts([&] {
    ShardReader r(path);
    (void)r.kind();
    (void)r.version();
    nlohmann::json meta = r.meta();
    FUZZ_CHECK(meta.is_object(), "meta is not an object");
    (void)meta.dump();  // what ilt-inspect prints
    if (r.kind() == kKindExamples) accepts([&] { (void)vocab_path(path, r.header()); });
    const bool random = r.random_access();
    const uint64_t n = random ? r.size() : 0;
    std::string_view rec;
    while (r.next(&rec)) {
      uint64_t i = r.next_index() - 1;
      out.records.emplace_back(rec);
      decode_all(rec);
      if (random && interleave_get) {
        FUZZ_CHECK(i < n, "next() returned record %llu of %llu", (unsigned long long)i, (unsigned long long)n);
        // A record from elsewhere (another block, usually), then this one again.
        uint64_t j = (i * 7919 + 13) % n;
        std::string_view other = r.get(j);
        if (j <= i) FUZZ_CHECK(other == out.records[j], "get(%llu) differs from next()", (unsigned long long)j);
        FUZZ_CHECK(r.get(i) == out.records.back(), "get(%llu) differs from next()", (unsigned long long)i);
      }
    }
    FUZZ_CHECK(!r.next(&rec), "next() after the end returned a record");
    if (random) FUZZ_CHECK(out.records.size() == n, "read %zu records, size() says %llu", out.records.size(),
                           (unsigned long long)n);
    (void)r.footer();
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = ilt::fuzz::as_view(data, size);
  decode_all(in);

  Read file;
  {
    ilt::fuzz::MemFile f(in);
    file = read_shard(f.path(), true);
    // verify() on a fresh reader agrees with the sequential read.
    bool verified = accepts([&] {
      ShardReader r(f.path());
      r.verify();
    });
    FUZZ_CHECK(verified == file.ok, "verify() %s what next() %s", verified ? "accepts" : "rejects",
               file.ok ? "accepts" : "rejects");
  }
  ilt::fuzz::PipeFile p(in);
  if (p.ok()) {
    Read pipe = read_shard(p.path(), false);
    if (file.ok && pipe.ok) FUZZ_CHECK(file.records == pipe.records, "file and pipe reads give different records");
  }
  return 0;
}
