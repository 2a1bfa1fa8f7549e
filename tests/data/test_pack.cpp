// Packing documents into examples (lib/data/pack.h) and the example record (lib/data/examples.h).
#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "catch.h"
#include "common/error.h"
#include "data/examples.h"
#include "data/pack.h"
#include "text/input.h"
#include "text/segment.h"

using namespace ilt;
using Words = std::vector<std::string>;

namespace {
const std::string BOS = "\x02", EOS = "\x03", SO = "\x0E", SI = "\x0F";

PackOptions opts(LabelMode m, size_t max_word, size_t max_seq, bool packing = true) {
  PackOptions o;
  o.labels = m;
  o.max_word_length = max_word;
  o.max_seq_length = max_seq;
  o.packing = packing;
  return o;
}

Words words_of(const Example& ex, const Words& vocab) {
  Words out;
  for (uint32_t id : ex.word_ids) {
    REQUIRE(id < vocab.size());
    out.push_back(vocab[id]);
  }
  return out;
}

// Packs documents (BOS already in front) with the given options; tags are "t<i>".
Packer pack(const std::vector<Words>& docs, PackOptions o, std::vector<std::string>* warnings = nullptr) {
  Packer p(o, [warnings](const std::string& m) {
    if (warnings) warnings->push_back(m);
  });
  for (size_t i = 0; i < docs.size(); ++i) p.add(docs[i], "t" + std::to_string(i), "d" + std::to_string(i));
  return p;
}

struct Doc {
  Words words, labels;
  std::string tag;
  uint32_t doc_words = 0;
};

// Reassembles documents from examples in fill order (the pieces of a document are
// contiguous there), checking that pieces continue where the previous one stopped.
std::vector<Doc> reassemble(const std::vector<Example>& exs, const Words& vocab) {
  std::vector<Doc> docs;
  for (const Example& ex : exs) {
    REQUIRE(ex.labels.size() == ex.size());
    Words w = words_of(ex, vocab);
    size_t at = 0;
    for (const DocPiece& d : ex.docs) {
      REQUIRE(d.length > 0);
      if (d.first_position == 0) {
        if (!docs.empty()) REQUIRE(docs.back().words.size() == docs.back().doc_words);  // previous complete
        docs.push_back({{}, {}, d.tag, d.doc_words});
      } else {
        REQUIRE(!docs.empty());
        REQUIRE(docs.back().words.size() == d.first_position);
        REQUIRE(docs.back().tag == d.tag);
        REQUIRE(docs.back().doc_words == d.doc_words);
      }
      REQUIRE(at + d.length <= ex.size());
      for (size_t k = at; k < at + d.length; ++k) {
        docs.back().words.push_back(w[k]);
        docs.back().labels.push_back(ex.labels[k]);
      }
      REQUIRE(docs.back().words.size() <= d.doc_words);
      at += d.length;
    }
    REQUIRE(at == ex.size());
  }
  if (!docs.empty()) REQUIRE(docs.back().words.size() == docs.back().doc_words);
  return docs;
}

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

std::vector<std::pair<uint32_t, uint32_t>> blocks(const Example& ex) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const PrefixBlock& b : ex.prefix_blocks) out.emplace_back(b.begin, b.end);
  return out;
}

// What a loader builds from an example: position ids and the attention mask.
std::vector<uint32_t> positions(const Example& ex) {
  std::vector<uint32_t> out;
  for (const DocPiece& d : ex.docs)
    for (uint32_t k = 0; k < d.length; ++k) out.push_back(d.first_position + k);
  return out;
}
// allowed[i][j]: position i may attend to position j.
std::vector<std::vector<bool>> attention(const Example& ex) {
  size_t n = ex.size();
  std::vector<size_t> doc(n);
  size_t at = 0;
  for (size_t d = 0; d < ex.docs.size(); ++d)
    for (uint32_t k = 0; k < ex.docs[d].length; ++k) doc[at++] = d;
  std::vector<std::vector<bool>> m(n, std::vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (doc[i] != doc[j]) continue;
      bool in_block = false;
      for (const PrefixBlock& b : ex.prefix_blocks) in_block |= i >= b.begin && i < b.end && j >= b.begin && j < b.end;
      m[i][j] = j <= i || in_block;
    }
  return m;
}

std::string decoder_input(const std::string& label) { return BOS + label; }
std::string decoder_target(const std::string& label) { return label + EOS; }

// Documents of given word counts (BOS included), words from a small shared vocabulary.
std::vector<Words> synthetic_docs(const std::vector<size_t>& sizes) {
  std::vector<Words> docs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Words w;
    for (size_t j = 1; j < sizes[i]; ++j)
      w.push_back(std::string(1, char('a' + (i * 7 + j) % 5)) + std::string(j % 3, 'x') + (j + 1 < sizes[i] ? " " : ""));
    docs.push_back(with_bos(w));
  }
  return docs;
}
}  // namespace

TEST_CASE("worked example 'a b': words, ids, encoder bytes, next-word labels") {
  Segmenter seg;
  Words raw;
  for (auto w : seg.words("a b")) raw.emplace_back(w);
  CHECK(raw == Words{"a ", "b"});  // whitespace kept as written: no strip, no added space
  Words doc = with_bos(raw);
  REQUIRE(doc == Words{"\x02", "a ", "b"});

  for (size_t max_word : {size_t(4), size_t(32)}) {
    INFO("max_word_length " << max_word);
    Packer p(opts(LabelMode::NextWord, max_word, 128));
    p.add(doc, "eng", "ab");
    REQUIRE(p.examples().size() == 1);
    const Example& ex = p.examples()[0];
    CHECK(ex.word_ids == std::vector<uint32_t>{0, 1, 2});
    CHECK(p.vocab() == Words{"\x02", "a ", "b"});
    CHECK(words_of(ex, p.vocab()) == Words{"\x02", "a ", "b"});
    CHECK(p.documents() == 1);
    CHECK(p.words() == 3);

    // Bytes-encoder input: BOS + word + EOS: [[2,2,3],[2,97,32,3],[2,98,3]].
    Words enc;
    for (uint32_t id : ex.word_ids) enc.push_back(word_input_bytes(p.vocab()[id], max_word));
    CHECK(enc == Words{std::string{2, 2, 3}, std::string{2, 97, 32, 3}, std::string{2, 98, 3}});

    CHECK(ex.labels == Words{"a ", "b", ""});
    Words in, out;
    for (const auto& l : ex.labels) in.push_back(decoder_input(l)), out.push_back(decoder_target(l));
    CHECK(in == Words{std::string{2, 97, 32}, std::string{2, 98}, std::string{2}});
    CHECK(out == Words{std::string{97, 32, 3}, std::string{98, 3}, std::string{3}});
    for (size_t i = 0; i < 3; ++i) CHECK(in[i].size() <= max_word);

    REQUIRE(ex.docs.size() == 1);
    CHECK(ex.docs[0].length == 3);
    CHECK(ex.docs[0].first_position == 0);
    CHECK(ex.docs[0].doc_words == 3);
    CHECK(ex.docs[0].tag == "eng");
    CHECK(ex.prefix_blocks.empty());
    CHECK(positions(ex) == std::vector<uint32_t>{0, 1, 2});
    // Causal 3x3.
    auto m = attention(ex);
    CHECK(m == std::vector<std::vector<bool>>{{true, false, false}, {true, true, false}, {true, true, true}});
  }
}

TEST_CASE("worked example 'a b': next-chars labels and decoder sequences") {
  Words doc = with_bos({"a ", "b"});
  {
    // max_word_length 4: a label has at most 3 bytes. After BOS the rest is "a b" (3 bytes).
    Packer p(opts(LabelMode::NextChars, 4, 128));
    p.add(doc, "", "ab");
    const Example& ex = p.examples().at(0);
    CHECK(ex.labels == Words{"a b", "b", ""});
    Words in, out;
    for (const auto& l : ex.labels) in.push_back(decoder_input(l)), out.push_back(decoder_target(l));
    CHECK(in == Words{std::string{2, 97, 32, 98}, std::string{2, 98}, std::string{2}});
    CHECK(out == Words{std::string{97, 32, 98, 3}, std::string{98, 3}, std::string{3}});
  }
  {
    Packer p(opts(LabelMode::NextChars, 32, 128));
    p.add(doc, "", "ab");
    CHECK(p.examples().at(0).labels == Words{"a b", "b", ""});
  }
  // label_for directly, and cuts: max 4 keeps 3 bytes.
  Words hw = with_bos({"hello ", "world"});
  CHECK(label_for(hw, 0, LabelMode::NextChars, 4) == "hel");
  CHECK(label_for(hw, 0, LabelMode::NextWord, 4) == "hel");
  CHECK(label_for(hw, 1, LabelMode::NextChars, 4) == "wor");
  CHECK(label_for(hw, 2, LabelMode::NextChars, 4) == "");
  CHECK(label_for(hw, 0, LabelMode::NextChars, 32) == "hello world");
  CHECK(label_for(hw, 0, LabelMode::NextWord, 32) == "hello ");
  CHECK(label_for(hw, 1, LabelMode::NextChars, 8) == "world");
  // Cut at a character boundary: "日本 語" with max 6 leaves 5 bytes -> only "日" (3 bytes).
  Words ja = with_bos({"\xE6\x97\xA5\xE6\x9C\xAC ", "\xE8\xAA\x9E"});
  CHECK(label_for(ja, 0, LabelMode::NextChars, 6) == "\xE6\x97\xA5");
  CHECK(label_for(ja, 0, LabelMode::NextWord, 6) == "\xE6\x97\xA5");
  CHECK(label_for(ja, 1, LabelMode::NextChars, 6) == "\xE8\xAA\x9E");
  CHECK(label_for(ja, 0, LabelMode::NextChars, 9) == "\xE6\x97\xA5\xE6\x9C\xAC ");
  CHECK(cut_label("abcdef", 4) == "abc");
  CHECK(cut_label("", 4) == "");
  // Encoder input cuts too: BOS + at most max-2 bytes + EOS, at a character boundary.
  CHECK(word_input_bytes("hello", 4) == "\x02he\x03");
  CHECK(word_input_bytes("\xE6\x97\xA5\xE6\x9C\xAC", 6) == "\x02\xE6\x97\xA5\x03");
  CHECK(word_input_bytes("", 4) == "\x02\x03");
  CHECK_THROWS_AS(word_input_bytes("a", 2), Error);
}

TEST_CASE("packed vs unpacked: same documents, different example boundaries - long documents split") {
  // BOS included: 6, 4, 21, 8, 2, 9, 10 words = 60; max_seq_length 8.
  auto docs = synthetic_docs({6, 4, 21, 8, 2, 9, 10});
  const size_t L = 8;
  Packer packed = pack(docs, opts(LabelMode::NextWord, 32, L, true));
  Packer unpacked = pack(docs, opts(LabelMode::NextWord, 32, L, false));
  auto& pe = packed.examples();
  auto& ue = unpacked.examples();

  CHECK(pe.size() == 8);   // ceil(60 / 8)
  CHECK(ue.size() == 11);  // 1 + 1 + 3 + 1 + 1 + 2 + 2
  for (size_t i = 0; i + 1 < pe.size(); ++i) CHECK(pe[i].size() == L);
  CHECK(pe.back().size() == 4);
  for (const Example& ex : ue) {
    REQUIRE(ex.docs.size() == 1);  // one document (piece) per example
    CHECK(ex.size() <= L);
  }
  for (const Example& ex : pe) CHECK(ex.size() <= L);
  // Without packing, each document starts an example.
  size_t starts = 0;
  for (const Example& ex : ue) starts += ex.docs[0].first_position == 0;
  CHECK(starts == docs.size());

  // The 21-word document: 0, 8, 16 unpacked; 0, 6, 14 packed (it starts after 10 words).
  std::vector<std::pair<uint32_t, uint32_t>> up, pp;  // (first_position, length)
  for (const Example& ex : ue)
    for (const DocPiece& d : ex.docs)
      if (d.doc_words == 21) up.emplace_back(d.first_position, d.length);
  for (const Example& ex : pe)
    for (const DocPiece& d : ex.docs)
      if (d.doc_words == 21) pp.emplace_back(d.first_position, d.length);
  CHECK(up == std::vector<std::pair<uint32_t, uint32_t>>{{0, 8}, {8, 8}, {16, 5}});
  CHECK(pp == std::vector<std::pair<uint32_t, uint32_t>>{{0, 6}, {6, 8}, {14, 7}});
  CHECK(positions(ue[4]) == std::vector<uint32_t>{16, 17, 18, 19, 20});

  // Same documents (words, labels, tags) come back from both, nothing dropped.
  auto a = reassemble(pe, packed.vocab()), b = reassemble(ue, unpacked.vocab());
  REQUIRE(a.size() == docs.size());
  REQUIRE(b.size() == docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    CHECK(a[i].words == docs[i]);
    CHECK(b[i].words == docs[i]);
    CHECK(a[i].labels == b[i].labels);
    CHECK(a[i].tag == "t" + std::to_string(i));
    CHECK(b[i].tag == a[i].tag);
    CHECK(a[i].labels.back() == "");
  }
  CHECK(packed.words() == 60);
  CHECK(unpacked.words() == 60);
  CHECK(packed.documents() == 7);
}

TEST_CASE("next-word vs next-chars: identical inputs, different labels") {
  auto docs = synthetic_docs({6, 4, 21, 8, 2, 9, 10});
  for (bool packing : {true, false}) {
    Packer w = pack(docs, opts(LabelMode::NextWord, 8, 8, packing));
    Packer c = pack(docs, opts(LabelMode::NextChars, 8, 8, packing));
    REQUIRE(w.examples().size() == c.examples().size());
    CHECK(w.vocab() == c.vocab());
    size_t differ = 0;
    for (size_t e = 0; e < w.examples().size(); ++e) {
      const Example &x = w.examples()[e], &y = c.examples()[e];
      CHECK(x.word_ids == y.word_ids);
      REQUIRE(x.docs.size() == y.docs.size());
      for (size_t d = 0; d < x.docs.size(); ++d) CHECK(x.docs[d].length == y.docs[d].length);
      for (size_t i = 0; i < x.size(); ++i) {
        // The next word is a prefix of the next bytes; both fit BOS/EOS in 8 bytes.
        CHECK(y.labels[i].compare(0, x.labels[i].size(), x.labels[i]) == 0);
        CHECK(y.labels[i].size() <= 7);
        CHECK(x.labels[i].empty() == y.labels[i].empty());
        differ += x.labels[i] != y.labels[i];
      }
    }
    CHECK(differ > 0);
  }
  // A concrete case: "a b c" after BOS.
  Words d = with_bos({"a ", "b ", "c"});
  CHECK(pack({d}, opts(LabelMode::NextWord, 8, 8)).examples()[0].labels == Words{"a ", "b ", "c", ""});
  CHECK(pack({d}, opts(LabelMode::NextChars, 8, 8)).examples()[0].labels == Words{"a b c", "b c", "c", ""});
  CHECK(pack({d}, opts(LabelMode::NextChars, 4, 8)).examples()[0].labels == Words{"a b", "b c", "c", ""});
}

TEST_CASE("several documents per example: pieces, first positions, tags, positions and mask") {
  auto docs = synthetic_docs({3, 4, 2});
  Packer p(opts(LabelMode::NextWord, 32, 16));
  p.add(docs[0], "eng", "A");
  p.add(docs[1], "heb", "B");
  p.add(docs[2], "", "C");
  REQUIRE(p.examples().size() == 1);
  const Example& ex = p.examples()[0];
  CHECK(ex.size() == 9);
  REQUIRE(ex.docs.size() == 3);
  CHECK(ex.docs[0].length + ex.docs[1].length + ex.docs[2].length == 9);
  CHECK(ex.docs[0].tag == "eng");
  CHECK(ex.docs[1].tag == "heb");
  CHECK(ex.docs[2].tag == "");
  CHECK(positions(ex) == std::vector<uint32_t>{0, 1, 2, 0, 1, 2, 3, 0, 1});
  auto m = attention(ex);
  CHECK(m[4][3]);
  CHECK_FALSE(m[3][2]);  // no attention across documents
  CHECK_FALSE(m[3][4]);  // causal
  CHECK(m[8][7]);
  CHECK_FALSE(m[7][6]);
  // Labels end each document.
  CHECK(ex.labels[2] == "");
  CHECK(ex.labels[6] == "");
  CHECK(ex.labels[8] == "");
  CHECK(ex.labels[3] == docs[1][1]);

  // max_seq_length 5: [A:3, B:0..1] [B:2..3, C:2].
  Packer q(opts(LabelMode::NextWord, 32, 5));
  q.add(docs[0], "eng", "A");
  q.add(docs[1], "heb", "B");
  q.add(docs[2], "", "C");
  auto& exs = q.examples();
  REQUIRE(exs.size() == 2);
  REQUIRE(exs[0].docs.size() == 2);
  REQUIRE(exs[1].docs.size() == 2);
  auto piece = [](const DocPiece& d) { return std::make_tuple(d.length, d.first_position, d.doc_words, d.tag); };
  CHECK(piece(exs[0].docs[0]) == std::make_tuple(3u, 0u, 3u, std::string("eng")));
  CHECK(piece(exs[0].docs[1]) == std::make_tuple(2u, 0u, 4u, std::string("heb")));
  CHECK(piece(exs[1].docs[0]) == std::make_tuple(2u, 2u, 4u, std::string("heb")));
  CHECK(piece(exs[1].docs[1]) == std::make_tuple(2u, 0u, 2u, std::string("")));
  CHECK(positions(exs[0]) == std::vector<uint32_t>{0, 1, 2, 0, 1});
  CHECK(positions(exs[1]) == std::vector<uint32_t>{2, 3, 0, 1});
  // The continued piece keeps its labels: the last word of B ends the document.
  CHECK(exs[1].labels == Words{docs[1][3], "", docs[2][1], ""});
}

TEST_CASE("prefix blocks: ShiftOut..ShiftIn inclusive, in example coordinates, clipped across examples") {
  // 0 BOS, 1 "p ", 2 SO, 3 "x ", 4 "y ", 5 SI, 6 "q": block [2, 6) in the document.
  Words d = with_bos({"p ", SO, "x ", "y ", SI, "q"});
  std::vector<std::string> warns;
  {
    Packer p = pack({d}, opts(LabelMode::NextWord, 32, 16), &warns);
    REQUIRE(p.examples().size() == 1);
    CHECK(blocks(p.examples()[0]) == std::vector<std::pair<uint32_t, uint32_t>>{{2, 6}});
    auto m = attention(p.examples()[0]);
    CHECK(m[2][5]);  // inside the block both ways
    CHECK(m[3][4]);
    CHECK_FALSE(m[1][2]);  // outside stays causal
    CHECK_FALSE(m[5][6]);
  }
  {
    // Not the first document: shifted by the 3 words in front.
    Packer p = pack({with_bos({"a ", "b"}), d}, opts(LabelMode::NextWord, 32, 16), &warns);
    REQUIRE(p.examples().size() == 1);
    CHECK(blocks(p.examples()[0]) == std::vector<std::pair<uint32_t, uint32_t>>{{5, 9}});
  }
  {
    // Split with max_seq_length 4: positions 0..3 and 4..6 -> [2,4) and [0,2).
    Packer p = pack({d}, opts(LabelMode::NextWord, 32, 4), &warns);
    REQUIRE(p.examples().size() == 2);
    CHECK(blocks(p.examples()[0]) == std::vector<std::pair<uint32_t, uint32_t>>{{2, 4}});
    CHECK(blocks(p.examples()[1]) == std::vector<std::pair<uint32_t, uint32_t>>{{0, 2}});
  }
  {
    // Split with max_seq_length 5: the second part holds only ShiftIn, a one-word block: none.
    Packer p = pack({d}, opts(LabelMode::NextWord, 32, 5), &warns);
    REQUIRE(p.examples().size() == 2);
    CHECK(blocks(p.examples()[0]) == std::vector<std::pair<uint32_t, uint32_t>>{{2, 5}});
    CHECK(blocks(p.examples()[1]).empty());
  }
  {
    // Packed behind another document and split: [a b | BOS p SO x y SI q] with L = 6.
    Packer p = pack({with_bos({"a ", "b"}), d}, opts(LabelMode::NextWord, 32, 6), &warns);
    REQUIRE(p.examples().size() == 2);
    CHECK(blocks(p.examples()[0]).empty());  // only SO of the block fits: one word, no block
    CHECK(blocks(p.examples()[1]) == std::vector<std::pair<uint32_t, uint32_t>>{{0, 3}});
  }
  {
    // Two blocks in one document.
    Packer p = pack({with_bos({SO, "a ", SI, "b ", SO, "c", SI})}, opts(LabelMode::NextWord, 32, 16), &warns);
    CHECK(blocks(p.examples()[0]) == std::vector<std::pair<uint32_t, uint32_t>>{{1, 4}, {5, 8}});
  }
  CHECK(warns.empty());
}

TEST_CASE("unmatched ShiftOut/ShiftIn warn with the document id and word position, and make no block") {
  std::vector<std::string> warns;
  Packer p(opts(LabelMode::NextWord, 32, 64), [&](const std::string& m) { warns.push_back(m); });
  CHECK_NOTHROW(p.add(with_bos({"a ", SI, "b "}), "", "doc-in"));
  REQUIRE(warns.size() == 1);
  CHECK(warns[0].find("doc-in") != std::string::npos);
  CHECK(warns[0].find("ShiftIn at word 2") != std::string::npos);

  CHECK_NOTHROW(p.add(with_bos({"a ", "b ", SO, "c"}), "", "doc-out"));
  REQUIRE(warns.size() == 2);
  CHECK(warns[1].find("doc-out") != std::string::npos);
  CHECK(warns[1].find("ShiftOut at word 3") != std::string::npos);

  // A nested ShiftOut is ignored; the outer one still closes.
  CHECK_NOTHROW(p.add(with_bos({SO, SO, "a ", SI}), "", "doc-nested"));
  REQUIRE(warns.size() == 3);
  CHECK(warns[2].find("doc-nested") != std::string::npos);
  CHECK(warns[2].find("word 2") != std::string::npos);
  CHECK(p.warnings() == 3);

  REQUIRE(p.examples().size() == 1);
  const Example& ex = p.examples()[0];
  // Documents at 0..3, 4..8, 9..13: only the nested one's outer block [1, 5) -> [10, 14).
  CHECK(blocks(ex) == std::vector<std::pair<uint32_t, uint32_t>>{{10, 14}});
  CHECK(ex.size() == 14);

  // Without a callback: counted, no throw.
  Packer q(opts(LabelMode::NextWord, 32, 64));
  CHECK_NOTHROW(q.add(with_bos({SI, SO}), "", "x"));
  CHECK(q.warnings() == 2);
  CHECK(q.examples().at(0).prefix_blocks.empty());
}

TEST_CASE("demo corpus: every document lands in exactly one split, whole and in order") {
  DocumentReaderOptions ro;
  ro.format = InputFormat::Jsonl;
  ro.tag_field = "lang";
  DocumentReader reader(std::string(ILT_SOURCE_DIR) + "/data/demo/udhr.jsonl", ro);
  Segmenter seg(SegmentOptions{30});
  PackOptions o = opts(LabelMode::NextChars, 32, 64);
  Packer train(o), valid(o);
  std::vector<Words> in_train, in_valid;
  std::vector<std::string> tag_train, tag_valid;
  std::map<std::string, int64_t> counts;  // word -> occurrences in the input (with BOS)
  size_t n = 0;
  Document doc;
  while (reader.next(&doc)) {
    ++n;
    Words w;
    for (auto x : seg.words(doc.text)) w.emplace_back(x);
    w = with_bos(w);
    for (const auto& x : w) ++counts[x];
    bool v = is_validation(doc.text, 0.1);
    CHECK(v == is_validation(doc.text, 0.1));
    (v ? valid : train).add(w, doc.tag, doc.id);
    (v ? in_valid : in_train).push_back(w);
    (v ? tag_valid : tag_train).push_back(doc.tag);
  }
  REQUIRE(n == 650);
  CHECK(train.documents() + valid.documents() == n);
  CHECK(train.documents() == in_train.size());
  double frac = double(valid.documents()) / double(n);
  CHECK(frac > 0.06);
  CHECK(frac < 0.14);

  // Unshuffled: the documents come back whole, in order, with their tags.
  auto check_split = [&](Packer& p, const std::vector<Words>& in, const std::vector<std::string>& tags) {
    auto back = reassemble(p.examples(), p.vocab());
    REQUIRE(back.size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      CHECK(back[i].words == in[i]);
      CHECK(back[i].tag == tags[i]);
      CHECK(back[i].labels.back() == "");
      for (const auto& l : back[i].labels) CHECK(l.size() <= 31);
    }
    for (size_t i = 0; i + 1 < p.examples().size(); ++i) CHECK(p.examples()[i].size() == 64);
  };
  check_split(train, in_train, tag_train);
  check_split(valid, in_valid, tag_valid);

  // Over both splits, every input word occurs exactly as often in the examples.
  using Tally = std::map<std::string, int64_t>;
  using Pairs = std::map<std::pair<std::string, std::string>, int64_t>;
  auto tally = [](const std::vector<Example>& exs, const Words& vocab, Tally* c, Pairs* pr) {
    for (const Example& ex : exs)
      for (size_t i = 0; i < ex.size(); ++i) {
        ++(*c)[vocab.at(ex.word_ids[i])];
        ++(*pr)[{vocab.at(ex.word_ids[i]), ex.labels[i]}];
      }
  };
  Tally packed;
  Pairs pairs_before, pairs_after;
  tally(train.examples(), train.vocab(), &packed, &pairs_before);
  tally(valid.examples(), valid.vocab(), &packed, &pairs_before);
  CHECK(packed == counts);

  // Shuffled and renumbered: the same words, (word, label) pairs and whole documents.
  Tally after;
  for (Packer* p : {&train, &valid}) {
    std::vector<Example> exs = p->examples();
    auto whole = [](const std::vector<Example>& e, const Words& vocab) {
      std::multiset<Words> s;
      for (const Example& ex : e) {
        Words w = words_of(ex, vocab);
        size_t at = 0;
        for (const DocPiece& d : ex.docs) {
          if (d.first_position == 0 && d.length == d.doc_words)
            s.insert(Words(w.begin() + long(at), w.begin() + long(at + d.length)));
          at += d.length;
        }
      }
      return s;
    };
    auto before = whole(exs, p->vocab());
    CHECK(before.size() > 0);
    shuffle_examples(&exs, 7);
    Words vocab;
    for (uint32_t old : compact_ids(&exs, p->vocab().size())) vocab.push_back(p->vocab()[old]);
    CHECK(vocab.size() == p->vocab().size());
    CHECK(whole(exs, vocab) == before);
    tally(exs, vocab, &after, &pairs_after);
  }
  CHECK(after == counts);
  CHECK(pairs_after == pairs_before);
}

TEST_CASE("is_validation: deterministic, edge fractions, close to the fraction") {
  size_t v = 0;
  const size_t n = 20000;
  for (size_t i = 0; i < n; ++i) {
    std::string t = "document number " + std::to_string(i);
    bool a = is_validation(t, 0.1);
    CHECK(a == is_validation(t, 0.1));
    v += a;
    CHECK_FALSE(is_validation(t, 0));
    CHECK(is_validation(t, 1));
    if (a) CHECK(is_validation(t, 0.2));  // a larger fraction keeps the smaller one's documents
  }
  CHECK(double(v) / n > 0.09);
  CHECK(double(v) / n < 0.11);
}

TEST_CASE("examples round-trip through encode/decode - malformed records throw") {
  Example ex;
  ex.word_ids = {0, 5, 300, 70000, 2, 1};
  ex.labels = {"a ", "", std::string("z\0y", 3), "\xD7\xA9 ", "b", ""};
  ex.docs = {{2, 0, 2, "eng"}, {3, 4, 9, "\xD7\xA2\xD7\x91"}, {1, 0, 1, ""}};
  ex.prefix_blocks = {{2, 4}, {0, 2}};
  std::string rec = encode_example(ex);
  Example back;
  back.word_ids = {9, 9, 9, 9, 9, 9, 9, 9, 9};  // stale content is replaced
  back.prefix_blocks = {{0, 1}, {1, 2}, {2, 3}};
  decode_example(rec, &back);
  CHECK(same(ex, back));
  CHECK(encode_example(back) == rec);

  // Packer output round-trips too (prefix blocks, tags, empty labels).
  Packer p = pack({with_bos({"p ", SO, "x ", "y ", SI, "q"}), with_bos({"a"})}, opts(LabelMode::NextChars, 8, 5));
  for (const Example& e : p.examples()) {
    Example d;
    decode_example(encode_example(e), &d);
    CHECK(same(e, d));
  }

  // Every truncation fails.
  for (size_t k = 0; k < rec.size(); ++k) {
    INFO("first " << k << " bytes");
    CHECK_THROWS_AS(decode_example(rec.substr(0, k), &back), Error);
  }
  CHECK_THROWS_AS(decode_example(rec + "x", &back), Error);

  auto bad = [&](auto change) {
    Example e = ex;
    change(e);
    return ILT_ERROR_OF(decode_example(encode_example(e), &back));
  };
  CHECK(bad([](Example& e) { e.docs[0].length = 3, e.docs[0].doc_words = 3; }).find("sum to") != std::string::npos);
  CHECK(bad([](Example& e) { e.docs.pop_back(); }).find("sum to") != std::string::npos);
  CHECK(bad([](Example& e) { e.docs[1].first_position = 7; }).find("past") != std::string::npos);
  CHECK(bad([](Example& e) { e.prefix_blocks[0] = {3, 3}; }).find("prefix block") != std::string::npos);
  CHECK(bad([](Example& e) { e.prefix_blocks[0] = {4, 2}; }).find("prefix block") != std::string::npos);
  CHECK(bad([](Example& e) { e.prefix_blocks[0] = {5, 7}; }).find("prefix block") != std::string::npos);
  CHECK_FALSE(bad([](Example& e) { e.labels.pop_back(); }).empty());  // one label short
  CHECK_FALSE(bad([](Example& e) { e.docs.push_back({0, 0, 0, ""}), e.docs.push_back({0, 0, 0, ""}),
                                   e.docs.push_back({0, 0, 0, ""}), e.docs.push_back({0, 0, 0, ""}); }).empty());
  // A record claiming more words than it has bytes.
  std::string huge;
  huge.push_back(char(0xFF));
  huge.push_back(char(0x7F));
  CHECK_THROWS_AS(decode_example(huge, &back), Error);
  CHECK_THROWS_AS(decode_example("", &back), Error);
}

TEST_CASE("a prefix block may not cross a document boundary") {
  // docs [0,2) [2,5) [5,6): block [1,3) would let two documents see each other.
  Example ex;
  ex.word_ids = {0, 1, 2, 3, 4, 5};
  ex.labels = {"", "", "", "", "", ""};
  ex.docs = {{2, 0, 2, ""}, {3, 0, 3, ""}, {1, 0, 1, ""}};
  ex.prefix_blocks = {{1, 3}};
  Example back;
  CHECK_THROWS_AS(decode_example(encode_example(ex), &back), Error);
}

TEST_CASE("shuffle_examples is deterministic per seed - compact_ids keeps the id order") {
  std::vector<Example> exs(10);
  for (uint32_t i = 0; i < 10; ++i) {
    exs[i].word_ids = {i};
    exs[i].labels = {""};
    exs[i].docs = {{1, 0, 1, ""}};
  }
  auto order = [](std::vector<Example> e, uint64_t seed) {
    shuffle_examples(&e, seed);
    std::vector<uint32_t> o;
    for (const Example& x : e) o.push_back(x.word_ids[0]);
    return o;
  };
  auto a = order(exs, 1), b = order(exs, 1), c = order(exs, 2);
  CHECK(a == b);
  CHECK(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint32_t> iota(10);
  std::iota(iota.begin(), iota.end(), 0u);
  CHECK(sorted == iota);
  CHECK(a != iota);
  CHECK(order(exs, 0).size() == 10);
  // Pinned: std::mt19937_64 is fully specified, so this is the order on every platform
  // (checked against an independent MT19937-64 implementation).
  CHECK(order(exs, 42) == std::vector<uint32_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});
  std::vector<Example> one(1, exs[0]), none;
  shuffle_examples(&one, 3);
  shuffle_examples(&none, 3);
  CHECK(one[0].word_ids == std::vector<uint32_t>{0});

  // compact_ids on shuffled packer output, with an id space larger than the ids used (as
  // ilt-pack's image record numbers): ids become 0..K-1 in their old order, words unchanged.
  auto docs = synthetic_docs({6, 4, 21, 8, 2, 9, 10});
  Packer p = pack(docs, opts(LabelMode::NextWord, 32, 8));
  std::vector<Example> ex = p.examples();
  shuffle_examples(&ex, 5);
  Words spread(p.vocab().size() * 3, "unused");  // old id k lives at 3k + 1
  for (size_t k = 0; k < p.vocab().size(); ++k) spread[3 * k + 1] = p.vocab()[k];
  for (Example& e : ex)
    for (uint32_t& id : e.word_ids) id = 3 * id + 1;
  std::vector<Words> before;
  for (const Example& e : ex) before.push_back(words_of(e, spread));
  std::vector<uint32_t> old = compact_ids(&ex, spread.size());
  CHECK(old.size() == p.vocab().size());
  CHECK(std::is_sorted(old.begin(), old.end()));
  CHECK(std::adjacent_find(old.begin(), old.end()) == old.end());
  Words vocab;
  for (uint32_t o : old) vocab.push_back(spread[o]);
  std::vector<bool> used(vocab.size(), false);
  for (const Example& e : ex)
    for (uint32_t id : e.word_ids) {
      REQUIRE(id < vocab.size());
      used[id] = true;
    }
  CHECK(std::all_of(used.begin(), used.end(), [](bool u) { return u; }));
  for (size_t i = 0; i < ex.size(); ++i) CHECK(words_of(ex[i], vocab) == before[i]);
  CHECK_THROWS_AS(compact_ids(&ex, 2), Error);  // ids outside the id space
}

TEST_CASE("find_prefix_blocks and clip_prefix_blocks: the blocks generation reads in a cut prompt") {
  // 0 BOS, 1 SO, 2 a, 3 SI, 4 b, 5 SO, 6 c, 7 d, 8 SI, 9 e, 10 SO (never closed).
  Words d = with_bos({SO, "a ", SI, "b ", SO, "c ", "d ", SI, "e ", SO});
  int64_t open = -1;
  auto blocks = find_prefix_blocks(d, {}, &open);
  CHECK(open == 10);
  REQUIRE(blocks.size() == 2);
  CHECK((blocks[0].begin == 1 && blocks[0].end == 4 && blocks[1].begin == 5 && blocks[1].end == 9));
  // Words 6..10 kept behind BOS (as --max-context 6 keeps them): [c d SI] of the second block
  // becomes [1, 4); the first block is gone.
  auto kept = clip_prefix_blocks(blocks, 6, 11, 1);
  REQUIRE(kept.size() == 1);
  CHECK((kept[0].begin == 1 && kept[0].end == 4));
  // A cut that leaves one word of a block leaves no block.
  CHECK(clip_prefix_blocks(blocks, 8, 11, 1).empty());
  // Uncut: the same blocks.
  auto all = clip_prefix_blocks(blocks, 0, d.size());
  CHECK((all.size() == 2 && all[1].begin == 5 && all[1].end == 9));
}
