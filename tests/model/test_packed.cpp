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
