#include "torch_catch.h"  // first: see there
#include "model/model.h"
#include "model/safetensors.h"
#include "model_helper.h"
#include "train/checkpoint.h"

using namespace ilt;
using namespace ilt::test;

namespace {
ImageLatentTransformer make_model(const ModelConfig& c, uint64_t seed = 0) {
  torch::manual_seed(seed);
  ImageLatentTransformer m(c);
  m->eval();
  return m;
}
bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-5) {
  return a.sizes() == b.sizes() && torch::allclose(a, b, tol, tol);
}
// Total nats of one text under the model (its row alone).
double score(ImageLatentTransformer& m, Words& w, const std::string& text, const ForwardOptions& o = {}) {
  torch::NoGradGuard g;
  return m->forward(w.batch({{text}}), o).nats.item<double>();
}
}  // namespace

TEST_CASE("model: no look-ahead, later words leave earlier losses and latents unchanged") {
  torch::set_num_threads(1);
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  // Positions: 0 BOS, 1 the, 2 cat, 3 sat, 4.. differ.
  auto a = m->forward(w.batch({{"the cat sat on the mat"}}));
  auto b = m->forward(w.batch({{"the cat sat under a red hat"}}));
  const int64_t k = 3;
  CHECK(close(a.latent.narrow(1, 0, k + 1), b.latent.narrow(1, 0, k + 1)));
  // Word j predicts word j + 1: positions < k have the same labels and the same loss.
  CHECK(close(a.word_nats.narrow(1, 0, k), b.word_nats.narrow(1, 0, k)));
  // Position k predicts the changed word: its loss differs.
  CHECK_FALSE(close(a.word_nats.narrow(1, k, 1), b.word_nats.narrow(1, k, 1)));
}

TEST_CASE("model: look-back, an earlier word changes later predictions") {
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  auto a = m->forward(w.batch({{"the cat sat on the mat"}}));
  auto b = m->forward(w.batch({{"the dog sat on the mat"}}));
  CHECK_FALSE(close(a.latent.narrow(1, 4, 1), b.latent.narrow(1, 4, 1)));
  CHECK_FALSE(close(a.word_nats.narrow(1, 4, 2), b.word_nats.narrow(1, 4, 2)));
}

TEST_CASE("model: an example's loss is the same alone and in a batch with longer ones") {
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  auto alone = m->forward(w.batch({{"a b c"}}));
  auto batched = m->forward(w.batch({{"a much longer example with many more words than the first one"}, {"a b c"}}));
  const int64_t L = alone.word_nats.size(1);
  CHECK(close(alone.word_nats[0], batched.word_nats[1].narrow(0, 0, L), 1e-4));
  CHECK(batched.word_nats[1].narrow(0, L, batched.word_nats.size(1) - L).abs().sum().item<double>() == 0);
}

TEST_CASE("model: two documents packed in one sequence score as they do separately") {
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  auto one = m->forward(w.batch({{"the cat sat"}}));
  auto two = m->forward(w.batch({{"a dog ran far"}}));
  auto packed = m->forward(w.batch({{"the cat sat", "a dog ran far"}}));
  int64_t n1 = one.word_nats.size(1), n2 = two.word_nats.size(1);
  CHECK(close(packed.word_nats[0].narrow(0, 0, n1), one.word_nats[0], 1e-4));
  CHECK(close(packed.word_nats[0].narrow(0, n1, n2), two.word_nats[0], 1e-4));
}

TEST_CASE("model: an image encodes the same alone and next to wider images") {
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  Batch alone = w.batch({{"hi"}});
  Batch mixed = w.batch({{"a-much-wider-word-image-indeed hi"}});
  auto ea = m->image_encoder(alone.image_patches, alone.image_patch_counts);
  auto em = m->image_encoder(mixed.image_patches, mixed.image_patch_counts);
  // "hi" is the last distinct image in both batches (BOS comes first).
  CHECK(close(ea[ea.size(0) - 1], em[em.size(0) - 1], 1e-5));
  CHECK(mixed.image_patch_counts.max().item<int64_t>() > alone.image_patch_counts.max().item<int64_t>());
}

TEST_CASE("model: every parameter gets a gradient, parts switched off have none") {
  Words w;
  for (auto [image, bytes] : {std::pair{true, true}, std::pair{true, false}, std::pair{false, true}}) {
    auto m = make_model(test_config(image, bytes));
    m->train();
    m->forward(w.batch({{"the cat sat on the mat", "x y"}, {"a b"}})).loss.backward();
    for (const auto& p : m->named_parameters(true)) {
      INFO(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    }
    CHECK(bool(m->image_encoder) == image);
    CHECK(bool(m->bytes_encoder) == bytes);
  }
}

TEST_CASE("model: the decoder works on real label lengths, not B x L x T") {
  Words w;
  auto m = make_model(test_config());
  torch::NoGradGuard g;
  Batch b = w.batch({{"a b c d e f"}, {"x"}});
  auto out = m->forward(b);
  int64_t real = b.target_lengths.sum().item<int64_t>();
  CHECK(out.decoder_real == real);
  CHECK(out.decoder_slots >= real);
  CHECK(out.decoder_slots < b.word_mask.numel() * b.decoder_input.size(2) / 2);
}

TEST_CASE("model: byte embedding with bit bias adds the vectors of the set bits") {
  ByteEmbedding e(8, true);
  torch::NoGradGuard g;
  auto v = e(torch::tensor({5}, torch::kUInt8));  // bits 0 and 2
  auto expect = e->byte_table[5] + e->bit_table[0] + e->bit_table[2];
  CHECK(close(v[0], expect));
}

TEST_CASE("model: same seed, same weights, and bit-identical training steps on one thread") {
  torch::set_num_threads(1);
  Words w;
  Batch b = w.batch({{"a b", "b a"}, {"a cat", "a dog"}});
  auto run = [&] {
    auto m = make_model(test_config(), 7);
    m->train();
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2));
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      m->forward(b).loss.backward();
      opt.step();
    }
    return m;
  };
  auto a = run(), c = run();
  auto pa = a->parameters(), pc = c->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].equal(pc[i]));
}

TEST_CASE("model: save then load gives the same outputs") {
  Words w;
  auto m = make_model(test_config(), 3);
  save_safetensors("model-test.safetensors", model_tensors(m), {{"format", "ilt"}});
  auto m2 = make_model(test_config(), 99);
  load_model_tensors(m2, "model-test.safetensors");
  torch::NoGradGuard g;
  Batch b = w.batch({{"the cat sat on the mat"}});
  CHECK(m->forward(b).word_nats.equal(m2->forward(b).word_nats));
  auto m3 = make_model(test_config(false, true));  // another architecture: refused by name
  CHECK(ILT_ERROR_OF(load_model_tensors(m3, "model-test.safetensors")).find("shape") != std::string::npos);
}

TEST_CASE("model: overfit on four tiny texts, full, image-only and bytes-only") {
  torch::set_num_threads(2);
  const std::vector<std::string> seen = {"a b", "b a", "a cat", "a dog"};
  for (auto [image, bytes] : {std::pair{true, true}, std::pair{true, false}, std::pair{false, true}}) {
    Words w;
    auto m = make_model(test_config(image, bytes), 1);
    m->train();
    Batch b = w.batch({{seen[0]}, {seen[1]}, {seen[2]}, {seen[3]}});
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
    double loss = 0;
    for (int i = 0; i < 300; ++i) {
      opt.zero_grad();
      auto out = m->forward(b);
      out.loss.backward();
      opt.step();
      loss = out.loss.item<double>();
    }
    m->eval();
    INFO("image " << image << " bytes " << bytes << " final loss " << loss);
    CHECK(loss < 0.3);
    // The seen text scores better than the same text with one character, word or byte changed.
    CHECK(score(m, w, "a cat") < score(m, w, "a cet"));   // character
    CHECK(score(m, w, "a dog") < score(m, w, "a fish"));  // word
    CHECK(score(m, w, "b a") < score(m, w, "b A"));       // byte
    CHECK(score(m, w, "a b") < score(m, w, "a c"));
    // Overfit: greedy decoding from the gold context gives back every word that its context
    // determines: the end of each text, and "a" after "b ". (After BOS or "a " the seen
    // continuations differ, so those positions cannot all be exact.)
    torch::NoGradGuard g;
    ForwardOptions acc;
    acc.accuracy = true;
    auto out = m->forward(b, acc);
    for (int64_t row = 0; row < 4; ++row) CHECK(out.word_exact[row][2].item<bool>());
    CHECK(out.word_exact[1][1].item<bool>());  // "b " -> "a"
    double exact = out.word_exact.masked_select(b.word_mask).to(torch::kFloat).mean().item<double>();
    CHECK(exact >= 0.6);
    CHECK(out.word_correct.sum().item<int64_t>() <= b.target_lengths.sum().item<int64_t>());
  }
}

TEST_CASE("model: a stack with a KV cache equals the full causal pass, rows of any length") {
  torch::set_num_threads(1);
  torch::manual_seed(7);
  Stack s(StackConfig{2, 32, 2, 64});
  s->eval();
  torch::NoGradGuard g;
  const int64_t R = 3, S = 7;
  auto x = torch::randn({R, S, 32});
  auto pos = torch::arange(S).unsqueeze(0).expand({R, S});
  auto full = s->forward(x, torch::Tensor(), true, pos);  // [R, S, 32]
  // Prefill rows with 3, 1 and 4 positions (right-padded), then one position per call.
  std::vector<int64_t> start = {3, 1, 4};
  KVCache cache;
  auto valid = torch::arange(4).unsqueeze(0) < torch::tensor(start).unsqueeze(1);
  auto y = s->forward_cached(x.narrow(1, 0, 4), pos.narrow(1, 0, 4), &cache, valid);
  for (int64_t r = 0; r < R; ++r)
    CHECK(torch::allclose(y[r].narrow(0, 0, start[size_t(r)]), full[r].narrow(0, 0, start[size_t(r)]), 1e-5, 1e-5));
  CHECK(cache.length == std::vector<int64_t>{3, 1, 4});
  for (int64_t t = 0; t < 3; ++t) {
    std::vector<torch::Tensor> xs, ps;
    for (int64_t r = 0; r < R; ++r) {
      xs.push_back(x[r][start[size_t(r)] + t].view({1, 1, 32}));
      ps.push_back(torch::full({1, 1}, start[size_t(r)] + t, torch::kLong));
    }
    auto step = s->forward_cached(torch::cat(xs), torch::cat(ps), &cache);
    for (int64_t r = 0; r < R; ++r) {
      INFO("row " << r << " position " << start[size_t(r)] + t);
      CHECK(torch::allclose(step[r][0], full[r][start[size_t(r)] + t], 1e-5, 1e-5));
    }
  }
  // Dropping row 2 and swapping rows 0 and 1 keeps each row's past.
  cache.keep({1, 0});
  CHECK(cache.length == std::vector<int64_t>{4, 6});
  auto step = s->forward_cached(torch::stack({x[1][4], x[0][6]}).unsqueeze(1), torch::tensor({{4L}, {6L}}), &cache);
  CHECK(torch::allclose(step[0][0], full[1][4], 1e-5, 1e-5));
  CHECK(torch::allclose(step[1][0], full[0][6], 1e-5, 1e-5));
}
