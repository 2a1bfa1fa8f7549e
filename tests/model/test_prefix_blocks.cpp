// Prefix-LM blocks (ShiftOut ... ShiftIn): which labels count, that nothing leaks through a
// block, and that generation's cached prefill reads a block as training does.
#include "torch_catch.h"  // first: see there
#include "model/model.h"
#include "model_helper.h"

#include <cmath>
#include <map>
#include <random>

using namespace ilt;
using namespace ilt::test;

namespace {
const std::string SO = "\x0E", SI = "\x0F";
using Doc = std::vector<std::string>;

std::vector<int32_t> target_lengths(const Batch& b, int64_t row = 0) {
  auto t = b.target_lengths[row].contiguous();
  return std::vector<int32_t>(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + t.numel());
}
}  // namespace

TEST_CASE("prefix blocks: labels inside a block are ignored, the closing ShiftIn keeps its own") {
  Words w;
  // 0 BOS, 1 "p ", 2 SO, 3 "x ", 4 "y ", 5 SI, 6 "q": block [2, 6).
  const Doc d = {"p ", SO, "x ", "y ", SI, "q"};
  Batch b = w.batch_of_words({{d}});
  // BOS -> "p " (2 + EOS), "p " -> SO (1 + EOS), SO/x/y: none, SI -> "q" (1 + EOS), "q" -> end (EOS).
  CHECK(target_lengths(b) == std::vector<int32_t>{3, 2, 0, 0, 0, 2, 1});
  CHECK(b.labels == 4);
  CHECK(b.words == 7);
  CHECK(b.label_bytes == 2 + 1 + 1);
  CHECK(b.decoder_input[0][3].sum().item<int64_t>() == 0);  // an ignored row is all PAD
  CHECK(b.decoder_target[0][5][0].item<uint8_t>() == 'q');

  SECTION("next-chars labels: the same positions") {
    Batch c = w.batch_of_words({{d}}, LabelMode::NextChars);
    auto t = target_lengths(c);
    CHECK((t[2] == 0 && t[3] == 0 && t[4] == 0));
    CHECK((t[0] > 0 && t[1] > 0 && t[5] == 2 && t[6] == 1));
  }
  SECTION("a block never closed is no block: every label counts, read causally") {
    Batch c = w.batch_of_words({{{"p ", SO, "x ", "y "}}});
    for (int32_t t : target_lengths(c)) CHECK(t > 0);
    CHECK(c.prefix_ids.max().item<int32_t>() == -1);
  }
  SECTION("a block cut by an example boundary: each piece ignores its labels, ShiftIn keeps its own") {
    // L = 4: [BOS p SO x] [y SI q]; blocks [2, 4) and [0, 2).
    auto exs = w.examples_of_words({{d}}, LabelMode::NextWord, 4);
    REQUIRE(exs.size() == 2);
    Batch c = w.make(exs);
    CHECK(target_lengths(c, 0) == std::vector<int32_t>{3, 2, 0, 0});
    CHECK(target_lengths(c, 1) == std::vector<int32_t>{0, 2, 1, 0});  // last: padding
    // L = 3: [BOS p SO] [x y SI] [q]: a block piece of one word (SO) is an ordinary causal
    // position; its label (the block's first word) is one it cannot see, so it counts.
    exs = w.examples_of_words({{d}}, LabelMode::NextWord, 3);
    REQUIRE(exs.size() == 3);
    c = w.make(exs);
    CHECK(target_lengths(c, 0) == std::vector<int32_t>{3, 2, 3});
    CHECK(target_lengths(c, 1) == std::vector<int32_t>{0, 0, 2});
    CHECK(target_lengths(c, 2) == std::vector<int32_t>{1, 0, 0});
  }
}

TEST_CASE("prefix blocks: ignored labels add nothing to loss, bpb or accuracy") {
  torch::set_num_threads(1);
  torch::manual_seed(2);
  ImageLatentTransformer m(test_config());
  m->eval();
  Words w;
  const Doc d = {"p ", SO, "x ", "y ", SI, "q"};
  auto exs = w.examples_of_words({{d}});
  auto other = exs;
  other[0].labels[3] = "anything else ";  // an ignored position's stored label
  other[0].labels[2] = "";
  torch::NoGradGuard g;
  ForwardOptions fo;
  fo.accuracy = true;
  Batch a = w.make(exs), b = w.make(other);
  auto oa = m->forward(a, fo), ob = m->forward(b, fo);
  CHECK(oa.nats.item<double>() == ob.nats.item<double>());
  CHECK(oa.target_bytes == ob.target_bytes);
  CHECK(a.label_bytes == b.label_bytes);
  CHECK(oa.target_bytes == 3 + 2 + 2 + 1);
  for (int l : {2, 3, 4}) {
    CHECK(oa.word_nats[0][l].item<double>() == 0);
    CHECK(oa.word_correct[0][l].item<int64_t>() == 0);
    CHECK_FALSE(oa.word_exact[0][l].item<bool>());
  }
  // A counted label does change them (the comparison above can fail).
  other[0].labels[5] = "r";
  CHECK(m->forward(w.make(other), fo).nats.item<double>() != oa.nats.item<double>());
}

// Documents of random words wrapped in blocks: [SO a b SI c] repeated. Every label the
// format does not fix is a random word, unknowable from what its position may see; after
// training, the loss there stays at chance (ln K per word) on new documents. Three arms:
//   blocks   the rule: only ShiftIn's label counts inside a block;
//   control  the same texts with plain bracket words instead of the markers, all causal;
//   leak     the blocks' two-way mask with every label counted (ilt before the rule): SO and
//            a see their next word, so their slots fall below chance; the check can fail.
TEST_CASE("prefix blocks: no label leaks, random words stay at chance with and without blocks") {
  torch::set_num_threads(2);
  const int K = 16;
  std::vector<std::string> vocab;
  for (int k = 0; k < K; ++k) vocab.push_back(std::string(1, char('a' + k)) + char('a' + (k * 7) % K) + " ");
  auto documents = [&](uint64_t seed, int n, bool blocks) {
    std::mt19937_64 rng(seed);
    std::vector<std::vector<Doc>> rows;
    for (int i = 0; i < n; ++i) {
      Doc d;
      for (int g = 0; g < 6; ++g) {
        d.push_back(blocks ? SO : "[ ");
        d.push_back(vocab[rng() % K]);
        d.push_back(vocab[rng() % K]);
        d.push_back(blocks ? SI : "] ");
        d.push_back(vocab[rng() % K]);
      }
      rows.push_back({d});
    }
    return rows;
  };
  for (const std::string arm : {"blocks", "control", "leak"}) {
    INFO(arm);
    const bool blocks = arm != "control";
    Words w;
    // The batch of the arm's examples; for "leak", every label counted under the block mask.
    auto batch = [&](const std::vector<Example>& exs) {
      if (arm != "leak") return w.make(exs);
      std::vector<Example> open = exs;
      for (Example& ex : open) ex.prefix_blocks.clear();
      Batch b = w.make(open);
      b.prefix_ids = w.make(exs).prefix_ids;
      return b;
    };
    torch::manual_seed(3);
    ImageLatentTransformer m(test_config());
    m->train();
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
    for (int step = 0; step < 150; ++step) {
      Batch b = batch(w.examples_of_words(documents(100 + uint64_t(step), 8, blocks)));
      opt.zero_grad();
      m->forward(b).loss.backward();
      opt.step();
    }
    m->eval();
    torch::NoGradGuard g;
    auto exs = w.examples_of_words(documents(7, 16, blocks));
    Batch eb = batch(exs);
    auto out = m->forward(eb);
    double random_nats = 0, fixed_nats = 0;
    int random_n = 0, fixed_n = 0;
    std::map<size_t, std::pair<double, int>> by_slot;  // random labels by slot in [SO a b SI c]
    for (size_t r = 0; r < exs.size(); ++r)
      for (size_t l = 0; l < exs[r].size(); ++l) {
        double nats = out.word_nats[int64_t(r)][int64_t(l)].item<double>();
        if (eb.target_lengths[int64_t(r)][int64_t(l)].item<int32_t>() == 0) continue;  // ignored
        const std::string& label = exs[r].labels[l];
        bool random = std::find(vocab.begin(), vocab.end(), label) != vocab.end();
        (random ? random_nats : fixed_nats) += nats;
        (random ? random_n : fixed_n) += 1;
        if (random) by_slot[(l - 1) % 5].first += nats, by_slot[(l - 1) % 5].second += 1;
      }
    const double chance = std::log(double(K));
    double per_random = random_nats / random_n, per_fixed = fixed_nats / fixed_n;
    INFO("random-label positions " << random_n << ": " << per_random << " nats/word (chance " << chance
                                   << "); format-fixed " << fixed_n << ": " << per_fixed);
    CHECK(random_n == 16 * (arm == "blocks" ? 6 : 18));  // blocks: only ShiftIn; else SO/[, a and SI/]
    CHECK(per_fixed < 0.3 * chance);                     // the format was learnt: training worked
    for (const auto& [slot, v] : by_slot) {
      INFO("slot " << slot << ": " << v.first / v.second << " nats/word");
      bool sees_its_label = arm == "leak" && slot < 3;  // SO -> a, a -> b inside the block
      if (sees_its_label) {
        CHECK(v.first / v.second < 0.9 * chance);  // the leak: below chance
      } else {
        CHECK(v.first / v.second > 0.9 * chance);  // no leak: not below chance
        CHECK(v.first / v.second < 1.5 * chance);  // and the word distribution was learnt
      }
    }
  }
}

TEST_CASE("prefix blocks: the cached prefill of a block prompt equals the training forward") {
  torch::set_num_threads(1);
  torch::manual_seed(4);
  ImageLatentTransformer m(test_config());
  m->eval();
  torch::NoGradGuard g;
  Words w;
  // Two rows of different lengths, a block in each: the second row is padded in the prefill.
  std::vector<Doc> prompts = {{"p ", SO, "x ", "y ", SI, "q "}, {SO, "a ", SI, "b "}};
  std::vector<std::vector<Doc>> rows;
  for (const Doc& d : prompts) rows.push_back({d});
  Batch b = w.batch_of_words(rows);
  auto words = m->embed_words(b, {});
  auto full = m->latent_forward(words, b);  // training's mask
  KVCache cache;
  auto cached = m->latent->forward_cached(words, b.positions, &cache, b.word_mask, b.prefix_ids);
  for (int64_t r = 0; r < 2; ++r) {
    int64_t n = b.word_mask[r].sum().item<int64_t>();
    CHECK(torch::allclose(cached[r].narrow(0, 0, n), full[r].narrow(0, 0, n), 1e-5, 1e-5));
  }
  // Read causally instead, the block's first words differ: the mask above was in force.
  KVCache causal;
  auto plain = m->latent->forward_cached(words, b.positions, &causal, b.word_mask);
  CHECK_FALSE(torch::allclose(plain[0][2], full[0][2], 1e-4, 1e-4));
  // One more word per row after the prefill equals the training forward over the whole rows.
  std::vector<std::vector<Doc>> longer;
  for (Doc d : prompts) {
    d.push_back("z ");
    longer.push_back({d});
  }
  Batch bl = w.batch_of_words(longer);
  auto wl = m->embed_words(bl, {});
  auto fl = m->latent_forward(wl, bl);
  std::vector<int64_t> n = {7, 5};  // BOS + words, before "z "
  auto next = torch::stack({wl[0][n[0]], wl[1][n[1]]}).unsqueeze(1);                       // [2, 1, D]
  auto pos = torch::tensor({n[0], n[1]}, torch::kLong).unsqueeze(1);                      // [2, 1]
  auto y = m->latent->forward_cached(next, pos, &cache);
  CHECK(torch::allclose(y[0][0], fl[0][n[0]], 1e-5, 1e-5));
  CHECK(torch::allclose(y[1][0], fl[1][n[1]], 1e-5, 1e-5));
}
