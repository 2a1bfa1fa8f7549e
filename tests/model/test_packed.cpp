// The packed (varlen, padding-free) encoders and decoder against the padded path they replace:
// same loss, per-word sums and gradients, for every preset.
#include "torch_catch.h"  // first: see there
#include "model/model.h"
#include "model_helper.h"

using namespace ilt;
using namespace ilt::test;

namespace {

// Words of many lengths (1 to 14 bytes, a NUL word, wide images) and a prefix block.
Batch mixed_batch(Words& w) {
  return w.batch_of_words({{split_words("a bb ccc dddd eeeee ffffff ggggggg hhhhhhhhhhhhhh "), split_words("x y z ")},
                           {{"\x0E", "q ", "rr ", "\x0F", "s ", std::string(1, '\0'), "tt "}},
                           {split_words("the quick brown fox jumps over the lazy dog ")}});
}

struct Pass {
  ForwardOutput out;
  std::vector<torch::Tensor> grads;
};

Pass run(ImageLatentTransformer& m, const Batch& b, bool packed) {
  m->zero_grad();
  ForwardOptions o;
  o.packed = packed;
  o.accuracy = true;
  Pass p;
  p.out = m->forward(b, o);
  p.out.loss.backward();
  for (const auto& param : m->parameters()) p.grads.push_back(param.grad().clone());
  return p;
}

}  // namespace

TEST_CASE("packed: every preset's loss, per-word sums and gradients equal the padded path's") {
  torch::set_num_threads(2);
  Words w;
  Batch b = mixed_batch(w);
  for (const auto& name : preset_names()) {
    INFO("preset " << name);
    torch::manual_seed(11);
    ModelConfig c = test_preset(name);
    c.modality_dropout = 0;  // the two passes must see the same inputs
    ImageLatentTransformer m(c);
    m->train();
    Pass packed = run(m, b, true), padded = run(m, b, false);
    INFO("loss packed " << packed.out.loss.item<double>() << " padded " << padded.out.loss.item<double>());
    CHECK(relative_difference(packed.out.loss, padded.out.loss) < 1e-5);
    CHECK(relative_difference(packed.out.word_nats, padded.out.word_nats) < 1e-5);
    CHECK(packed.out.word_correct.equal(padded.out.word_correct));
    CHECK(packed.out.word_exact.equal(padded.out.word_exact));
    CHECK(packed.out.target_bytes == padded.out.target_bytes);
    // No padding computed in the packed decoder; the padded one pads its buckets.
    CHECK(packed.out.decoder_slots == packed.out.decoder_real);
    CHECK(padded.out.decoder_slots > padded.out.decoder_real);
    auto params = m->named_parameters(true);
    REQUIRE(packed.grads.size() == params.size());
    double worst = 0;
    std::string worst_name;
    for (size_t i = 0; i < params.size(); ++i) {
      double d = relative_difference(packed.grads[i], padded.grads[i]);
      if (d > worst) worst = d, worst_name = params[i].key();
    }
    INFO("largest relative gradient difference " << worst << " in " << worst_name);
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("packed: a change to one word's bytes changes nothing of the other words' encodings") {
  // Packed sequences must not see each other: the varlen masks are per word.
  torch::set_num_threads(2);
  torch::manual_seed(12);
  ImageLatentTransformer m(test_config());
  m->eval();
  torch::NoGradGuard g;
  Words w;
  Batch a = w.batch({{"one two three"}}), b = w.batch({{"one twx three"}});
  auto ea = m->bytes_encoder(a.unique_word_bytes), eb = m->bytes_encoder(b.unique_word_bytes);
  auto ia = m->image_encoder(a.image_patches, a.image_patch_counts), ib = m->image_encoder(b.image_patches, b.image_patch_counts);
  // Positions 0 (BOS), 1 ("one ") and 3 ("three") hold the same words in both; 2 differs.
  auto row = [](const Batch& x, int64_t l) { return x.image_index[0][l].item<int64_t>(); };
  for (int64_t l : {0, 1, 3}) {
    INFO("position " << l);
    CHECK(relative_difference(ea[row(a, l)], eb[row(b, l)]) < 1e-6);
    CHECK(relative_difference(ia[row(a, l)], ib[row(b, l)]) < 1e-6);
  }
  CHECK(relative_difference(ea[row(a, 2)], eb[row(b, 2)]) > 1e-3);
  CHECK(relative_difference(ia[row(a, 2)], ib[row(b, 2)]) > 1e-3);
}

// The host-side layout make_batch fills (what lets the forward pass run without reading the
// device) against the batch's tensors, and a forward pass without it (read from the tensors).
TEST_CASE("packed: the batch's host layout matches its tensors, and the forward pass is the same without it") {
  torch::set_num_threads(2);
  Words w;
  Batch b = mixed_batch(w);
  const BatchLayout& lay = b.layout;
  REQUIRE(lay.filled);
  // Labelled words: every row * L + word with target length > 0, in order.
  auto tl = b.target_lengths.flatten().to(torch::kLong);
  std::vector<int64_t> rows, lengths;
  for (int64_t i = 0; i < tl.numel(); ++i)
    if (tl[i].item<int64_t>() > 0) rows.push_back(i), lengths.push_back(tl[i].item<int64_t>());
  CHECK(lay.label_rows == rows);
  CHECK(lay.label_lengths == lengths);
  CHECK(lay.target_bytes == tl.sum().item<int64_t>());
  // Bytes-encoder lengths: BOS + word + EOS, the NUL word's 0 included.
  REQUIRE(lay.word_lengths.size() == size_t(b.unique_word_bytes.size(0)));
  for (size_t n = 0; n < lay.word_lengths.size(); ++n) {
    auto row = b.unique_word_bytes[int64_t(n)];
    int64_t eos = -1;
    for (int64_t t = 0; t < row.size(0); ++t)
      if (row[t].item<uint8_t>() == kEos) eos = t;
    CHECK(lay.word_lengths[n] == eos + 1);
  }
  CHECK(lay.patch_counts.size() == size_t(b.image_patch_counts.size(0)));
  // Document pieces: the first row holds two documents, the others one each.
  REQUIRE(lay.piece_lengths.size() == 4);
  int64_t words = 0;
  for (int64_t n : lay.piece_lengths) words += n;
  CHECK(words == b.words);

  torch::manual_seed(5);
  ModelConfig c = test_config();
  ImageLatentTransformer m(c);
  m->eval();
  torch::NoGradGuard no_grad;
  auto with = m->forward(b);
  Batch bare = b;
  bare.layout = BatchLayout{};  // not filled: the model reads the tensors
  auto without = m->forward(bare);
  CHECK(with.nats.item<double>() == without.nats.item<double>());
  CHECK(m->forward_flops(b) == m->forward_flops(bare));
}

// Model FLOPs count real tokens only: two batches' FLOPs add up to those of the batch holding
// both (less the one word they share, BOS, encoded once there), whatever padding the longer
// row gives the shorter one.
TEST_CASE("packed: forward FLOPs count real tokens, not padding") {
  Words w;
  Batch x = w.batch({{"a bb ccc dddd eeeee ffffff ggggggg hhhhhhhhhhhhhh"}});
  Batch y = w.batch({{"q r"}});
  Batch xy = w.batch({{"a bb ccc dddd eeeee ffffff ggggggg hhhhhhhhhhhhhh"}, {"q r"}});
  ModelConfig c = test_config(/*image=*/false, /*bytes=*/true);
  ImageLatentTransformer m(c);
  // BOS's bytes-encoder input is [BOS, \x02, EOS]: 3 tokens through the one-layer encoder.
  const double d = c.bytes_encoder.dim, f = c.bytes_encoder.ffn;
  const double bos = c.bytes_encoder.layers * (2 * 3 * (4 * d * d + 3 * d * f) + 2 * 2 * 9 * d);
  const double sum = m->forward_flops(x) + m->forward_flops(y) - bos;
  INFO("x " << m->forward_flops(x) << " y " << m->forward_flops(y) << " xy " << m->forward_flops(xy));
  CHECK(std::abs(m->forward_flops(xy) - sum) < 1e-9 * sum);
  CHECK(m->forward_flops(x) > m->forward_flops(y));
}
