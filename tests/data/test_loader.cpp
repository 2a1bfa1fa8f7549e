// Data loader: batches from shards written by the real pipeline (segment, render, pack).
#include <stdlib.h>

#include <cstdlib>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "torch_catch.h"  // first: see there
#include "common/io.h"
#include "data/loader.h"
#include "data/examples.h"
#include "shard/shard.h"

using namespace ilt;

namespace {
// Packs a small corpus with the real tools once; returns the train examples path.
std::string demo_examples() {
  static std::string path = [] {
    std::string bin = ILT_BINARY_DIR;
    // One directory per process: CTest runs the test cases in parallel.
    char tmpl[] = "loader-data-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::string cmd = "set -e; mkdir -p " + dir + "; cd " + dir + "; " + bin + "/ilt-segment " ILT_SOURCE_DIR
                      "/data/demo/udhr-eng-heb.txt -o w.shard 2>/dev/null; " + bin +
                      "/ilt-render w.shard -o i.shard 2>/dev/null; " + bin +
                      "/ilt-pack w.shard --images i.shard -o d --max-seq-length 32 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return dir + "/d.train.examples";
  }();
  return path;
}

bool same(const torch::Tensor& a, const torch::Tensor& b) { return a.sizes() == b.sizes() && a.equal(b); }

bool same_batch(const Batch& a, const Batch& b) {
  return a.example_ids == b.example_ids && same(a.word_bytes, b.word_bytes) && same(a.decoder_input, b.decoder_input) &&
         same(a.decoder_target, b.decoder_target) && same(a.positions, b.positions) && same(a.doc_ids, b.doc_ids) &&
         same(a.image_index, b.image_index) && same(a.image_patches, b.image_patches);
}
}  // namespace

TEST_CASE("loader: batch tensors agree with the examples they came from") {
  DataLoader dl({demo_examples()}, LoaderOptions{4, 1, false, false, 2});
  REQUIRE(dl.num_examples() > 4);
  const int64_t T = dl.max_word_length();
  auto b = dl.next();
  REQUIRE(b);
  CHECK(b->word_bytes.sizes() == std::vector<int64_t>{4, 32, T});
  CHECK(b->word_bytes.dtype() == torch::kUInt8);
  // Every word starts with BOS; a document's first word (position 0) is the BOS word.
  auto wb = b->word_bytes.accessor<uint8_t, 3>();
  auto ps = b->positions.accessor<int64_t, 2>();
  int starts = 0;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t l = 0; l < 32; ++l) {
      if (!b->word_mask[i][l].item<bool>()) continue;
      CHECK(wb[i][l][0] == kBos);
      if (ps[i][l] == 0) {
        ++starts;
        CHECK((wb[i][l][1] == kBos && wb[i][l][2] == kEos));
      }
    }
  CHECK(starts > 0);
  // Decoder input = BOS + label, target = label + EOS, for every real position.
  auto di = b->decoder_input.accessor<uint8_t, 3>();
  auto dt = b->decoder_target.accessor<uint8_t, 3>();
  auto tl = b->target_lengths.accessor<int32_t, 2>();
  auto wm = b->word_mask.accessor<bool, 2>();
  int64_t label_bytes = 0, words = 0;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t l = 0; l < 32; ++l) {
      if (!wm[i][l]) {
        CHECK(tl[i][l] == 0);
        continue;
      }
      ++words;
      int n = tl[i][l];
      REQUIRE(n >= 1);
      CHECK(di[i][l][0] == kBos);
      for (int k = 0; k + 1 < n; ++k) CHECK(dt[i][l][k] == di[i][l][k + 1]);
      CHECK(dt[i][l][n - 1] == kEos);
      label_bytes += n - 1;
    }
  CHECK(words == b->words);
  CHECK(label_bytes == b->label_bytes);
  // Each word's image: the index points at a distinct image; patch counts cover all patches.
  int64_t patches = b->image_patch_counts.sum().item<int64_t>();
  CHECK(b->image_patches.size(0) == patches);
  CHECK(b->image_patches.size(1) == 16);
  CHECK(b->image_patches.size(2) == 16);
  CHECK(b->image_index.max().item<int64_t>() == b->image_patch_counts.size(0) - 1);
  // Distinct images are encoded once: fewer images than words in a batch of real text.
  CHECK(b->image_patch_counts.size(0) < b->words);
}

TEST_CASE("loader: positions restart per document, doc ids separate documents") {
  DataLoader dl({demo_examples()}, LoaderOptions{64, 0, false, false, 1});
  auto b = dl.next();
  REQUIRE(b);
  auto pos = b->positions.accessor<int64_t, 2>();
  auto doc = b->doc_ids.accessor<int32_t, 2>();
  auto wb = b->word_bytes.accessor<uint8_t, 3>();
  int restarts = 0;
  for (int64_t i = 0; i < b->positions.size(0); ++i)
    for (int64_t l = 1; l < b->positions.size(1); ++l) {
      if (doc[i][l] < 0) continue;
      if (doc[i][l] != doc[i][l - 1]) {
        ++restarts;
        // A new document piece; if it starts a document, its first word is BOS.
        if (pos[i][l] == 0) CHECK((wb[i][l][1] == kBos && wb[i][l][2] == kEos));
      } else {
        CHECK(pos[i][l] == pos[i][l - 1] + 1);
      }
    }
  CHECK(restarts > 0);
}

TEST_CASE("loader: same seed, same batches, another seed, another order") {
  LoaderOptions o{3, 42, true, true, 3};
  DataLoader a({demo_examples()}, o), b({demo_examples()}, o);
  o.seed = 43;
  DataLoader c({demo_examples()}, o);
  bool differs = false;
  for (int i = 0; i < 10; ++i) {
    auto x = a.next(), y = b.next(), z = c.next();
    REQUIRE((x && y && z));
    CHECK(same_batch(*x, *y));
    differs = differs || x->example_ids != z->example_ids;
  }
  CHECK(differs);
}

TEST_CASE("loader: infinite iteration reshuffles each epoch and visits every example once per epoch") {
  DataLoader probe({demo_examples()}, LoaderOptions{1, 0, false, false, 1});
  const uint64_t N = probe.num_examples();
  DataLoader dl({demo_examples()}, LoaderOptions{1, 7, true, true, 2});
  std::vector<uint64_t> e0, e1;
  for (uint64_t i = 0; i < 2 * N; ++i) {
    auto b = dl.next();
    REQUIRE(b);
    (i < N ? e0 : e1).push_back(b->example_ids[0]);
    CHECK(b->epoch == (i < N ? 0u : 1u));
  }
  CHECK(e0 != e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  for (uint64_t i = 0; i < N; ++i) CHECK((e0[i] == i && e1[i] == i));
}

TEST_CASE("loader: saving and restoring the position gives the same batches") {
  LoaderOptions o{5, 3, true, true, 4};
  DataLoader a({demo_examples()}, o);
  for (int i = 0; i < 7; ++i) a.next();  // crosses an epoch boundary for small data
  LoaderState saved = a.state();
  nlohmann::json j = saved.to_json();
  std::vector<Batch> expect;
  for (int i = 0; i < 6; ++i) expect.push_back(*a.next());
  DataLoader b({demo_examples()}, o, LoaderState::from_json(j));
  CHECK(b.state() == saved);
  for (int i = 0; i < 6; ++i) {
    auto x = b.next();
    REQUIRE(x);
    CHECK(same_batch(*x, expect[i]));
  }
}

TEST_CASE("loader: a finite pass ends, with a smaller last batch") {
  DataLoader dl({demo_examples()}, LoaderOptions{7, 0, false, false, 2});
  uint64_t seen = 0;
  size_t last = 0;
  while (auto b = dl.next()) {
    seen += b->example_ids.size();
    last = b->example_ids.size();
  }
  CHECK(seen == dl.num_examples());
  CHECK(last == (dl.num_examples() % 7 ? dl.num_examples() % 7 : 7));
  CHECK_FALSE(dl.next());
}

TEST_CASE("loader: image patches reassemble the word images") {
  DataLoader dl({demo_examples()}, LoaderOptions{2, 0, false, false, 1});
  auto b = dl.next();
  REQUIRE(b);
  // Patch p of an image is columns [16p, 16p + 16): consecutive patches of one image join
  // without a seam of padding, and the images' total width is 16 x patches.
  auto counts = b->image_patch_counts.accessor<int64_t, 1>();
  int64_t at = 0, inked = 0, n_images = b->image_patch_counts.size(0);
  for (int64_t n = 0; n < n_images; ++n) {
    torch::Tensor img = b->image_patches.narrow(0, at, counts[n]).permute({1, 0, 2}).reshape({16, counts[n] * 16});
    inked += img.min().item<uint8_t>() < 128;
    CHECK(img.select(1, 0).min().item<uint8_t>() == 255);  // x = 0 is paper (text starts at 5)
    at += counts[n];
  }
  CHECK(at == b->image_patches.size(0));
  CHECK(inked >= n_images * 9 / 10);  // words have ink (a few faint control pictures may not)
}

namespace {
// The demo corpus packed into many small examples shards (ilt-pack --shard-size), sharing
// one vocabulary: what a large run looks like, in miniature.
std::vector<std::string> sharded_examples() {
  static std::vector<std::string> paths = [] {
    std::string bin = ILT_BINARY_DIR;
    char tmpl[] = "loader-shards-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::string cmd = "set -e; cd " + dir + "; " + bin + "/ilt-segment " ILT_SOURCE_DIR
                      "/data/demo/udhr-eng-heb.txt -o w.shard 2>/dev/null; " + bin +
                      "/ilt-render w.shard -o i.shard 2>/dev/null; " + bin +
                      "/ilt-pack w.shard --images i.shard -o d --max-seq-length 32 --shard-size 4KB 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::vector<std::string> out;
    for (int i = 0; std::ifstream(dir + fmt::format("/d.train-{:05d}.examples", i)).good(); ++i)
      out.push_back(dir + fmt::format("/d.train-{:05d}.examples", i));
    REQUIRE(out.size() >= 4);
    return out;
  }();
  return paths;
}

LoaderOptions streaming(size_t batch, uint64_t seed, size_t window) {
  LoaderOptions o{batch, seed, true, true, 3};
  o.shuffle_buffer = window;
  return o;
}
}  // namespace

TEST_CASE("loader: streamed in windows over many shards, each epoch is a permutation, and order() predicts next()") {
  const auto shards = sharded_examples();
  DataLoader dl(shards, streaming(1, 5, 7));
  const uint64_t N = dl.num_examples();
  REQUIRE(N > 3 * 7);
  std::vector<uint64_t> e0, e1;
  for (uint64_t i = 0; i < 2 * N; ++i) {
    auto b = dl.next();
    REQUIRE(b);
    (i < N ? e0 : e1).push_back(b->example_ids[0]);
  }
  CHECK(e0 == dl.order(0, 0, N));
  CHECK(e1 == dl.order(1, 0, N));
  CHECK(e0 != e1);
  // Shuffled, not in shard order, yet each window holds a stretch of the epoch's stream.
  std::vector<uint64_t> in_order(N);
  for (uint64_t i = 0; i < N; ++i) in_order[i] = i;
  CHECK(e0 != in_order);
  for (auto* e : {&e0, &e1}) {
    std::sort(e->begin(), e->end());
    CHECK(*e == in_order);
  }
  // Without shuffling: the shards in the order given, their records in order.
  LoaderOptions plain{1, 5, false, false, 1};
  DataLoader seq(shards, plain);
  CHECK(seq.order(0, 0, N) == in_order);
}

TEST_CASE("loader: a resume inside a shuffle window, across shards, gives the same batches") {
  const auto shards = sharded_examples();
  const LoaderOptions o = streaming(3, 11, 10);
  DataLoader a(shards, o);
  for (int i = 0; i < 5; ++i) a.next();  // cursor 15: inside the second window
  const LoaderState saved = a.state();
  CHECK(saved.cursor % 10 != 0);
  std::vector<Batch> expect;
  for (int i = 0; i < 8; ++i) expect.push_back(*a.next());
  DataLoader b(shards, o, LoaderState::from_json(saved.to_json()));
  for (int i = 0; i < 8; ++i) {
    auto x = b.next();
    REQUIRE(x);
    CHECK(same_batch(*x, expect[size_t(i)]));
  }
}

TEST_CASE("loader: a vocabulary cache far smaller than the vocabulary gives the same batches") {
  const auto shards = sharded_examples();
  LoaderOptions big = streaming(4, 2, 16), tiny = big;
  tiny.vocab_cache_bytes = 1;  // keeps only what the batch being built holds
  DataLoader a(shards, big), b(shards, tiny);
  for (int i = 0; i < 12; ++i) {
    auto x = a.next(), y = b.next();
    REQUIRE((x && y));
    CHECK(same_batch(*x, *y));
    CHECK(same(x->unique_word_bytes, y->unique_word_bytes));
  }
  const VocabCacheStats sa = a.vocab_stats(), sb = b.vocab_stats();
  CHECK(sb.entries <= 1);
  CHECK(sb.misses > sa.misses);  // the small cache went back to the shard for words it dropped
  CHECK(sa.hits > 0);
}

TEST_CASE("loader: a word id outside the vocabulary names the examples shard and record") {
  const auto shards = sharded_examples();
  // An examples shard whose header names another run's (smaller) vocabulary.
  char tmpl[] = "loader-badvocab-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl, bin = ILT_BINARY_DIR;
  std::string cmd = "set -e; cd " + dir + "; printf 'a b\\n' > t.txt; " + bin + "/ilt-segment t.txt -o w 2>/dev/null; " + bin +
                    "/ilt-render w -o i 2>/dev/null; " + bin + "/ilt-pack w --images i -o s --max-seq-length 32 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string bad = dir + "/bad.examples";
  {
    ShardReader r(shards[0], kKindExamples);
    nlohmann::json head = r.header();
    head["vocab"] = "s.train.vocab";  // 4 words
    ShardWriter w(bad, kKindExamples, head);
    std::string_view rec;
    while (r.next(&rec)) w.add(rec);
    w.finish(nlohmann::json::object());
  }
  DataLoader dl({bad}, LoaderOptions{2, 0, false, false, 1});
  const std::string err = ILT_ERROR_OF(dl.next());
  CHECK(err.find(bad + ": record 0: ") != std::string::npos);
  CHECK(err.find("s.train.vocab: word id") != std::string::npos);
  CHECK(err.find("outside the vocabulary (") != std::string::npos);
}
