// The current reference's architecture choices, each a config option (docs/design.md).
#include "torch_catch.h"  // first: see there
#include "model/model.h"
#include "model/safetensors.h"
#include "model_helper.h"
#include "train/checkpoint.h"

using namespace ilt;
using namespace ilt::test;
namespace F = torch::nn::functional;

namespace {
// The welt-tiny preset's choices (every current-reference option on) at test_config()'s sizes.
ModelConfig welt_config() {
  ModelConfig c = model_config("welt-tiny"), small = test_config();
  c.image_encoder = small.image_encoder;
  c.bytes_encoder = small.bytes_encoder;
  c.latent = small.latent;
  c.bytes_decoder = small.bytes_decoder;
  c.max_word_length = small.max_word_length;
  c.modality_dropout = small.modality_dropout;
  return c;
}
ImageLatentTransformer make(const ModelConfig& c, uint64_t seed = 0) {
  torch::manual_seed(seed);
  ImageLatentTransformer m(c);
  m->eval();
  return m;
}
// Copies every parameter both models name alike (same shapes).
void copy_shared(ImageLatentTransformer& from, ImageLatentTransformer& to) {
  torch::NoGradGuard g;
  auto src = from->named_parameters(true);
  for (auto& p : to->named_parameters(true))
    if (auto* s = src.find(p.key())) p.value().copy_(*s);
}
double rms(const torch::Tensor& x) { return x.pow(2).mean(-1).sqrt().mean().item<double>(); }
}  // namespace

TEST_CASE("options: every choice on, every parameter gets a gradient, save and load agree") {
  torch::set_num_threads(1);
  Words w;
  auto m = make(welt_config(), 1);
  m->train();
  Batch b = w.batch({{"the cat sat on the mat", "x y"}, {"a b"}});
  m->forward(b).loss.backward();
  for (const auto& p : m->named_parameters(true)) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().abs().sum().item<double>() > 0);
  }
  auto names = m->named_parameters(true);
  for (const char* n : {"encoder_norm.weight", "decoder_norm.weight", "image_encoder.cls", "image_encoder.pool.weight"})
    CHECK(names.find(n) != nullptr);
  CHECK(names.find("head.weight") == nullptr);  // tied
  m->eval();
  save_safetensors("options.safetensors", model_tensors(m));
  auto m2 = make(welt_config(), 2);
  load_model_tensors(m2, "options.safetensors");
  torch::NoGradGuard g;
  CHECK(m->forward(b).word_nats.equal(m2->forward(b).word_nats));
  // Today's default model cannot read it: the names differ.
  auto plain = make(test_config(), 3);
  CHECK_FALSE(ILT_ERROR_OF(load_model_tensors(plain, "options.safetensors")).empty());
}

TEST_CASE("options: encoder_norm and decoder_norm give unit-RMS vectors") {
  Words w;
  Batch b = w.batch({{"the cat sat on the mat"}});
  torch::NoGradGuard g;
  ModelConfig c = test_config();
  c.encoder_norm = c.decoder_norm = true;
  auto m = make(c, 4), off = make(test_config(), 4);
  auto words = m->embed_words(b, {}), latent = m->latent_forward(words, b);
  CHECK(std::abs(rms(words) - 1) < 1e-3);
  CHECK(std::abs(rms(m->to_decoder(latent)) - 1) < 1e-3);
  CHECK(std::abs(rms(off->embed_words(b, {})) - 1) > 0.05);  // not so without them
}

TEST_CASE("options: bytes_pooling bos reads the BOS state, mean the average over bytes") {
  ModelConfig c = test_config(false, true);
  auto mean = make(c, 5);
  c.bytes_pooling = "bos";
  auto bos = make(c, 6);
  copy_shared(mean, bos);
  torch::NoGradGuard g;
  Words w;
  Batch b = w.batch({{"ab cde"}});
  auto bytes = b.unique_word_bytes;  // [N, T]
  auto vm = mean->bytes_encoder(bytes), vb = bos->bytes_encoder(bytes);
  // By hand: the stack over one word's real bytes, then position 0 or the mean.
  for (int64_t n = 0; n < bytes.size(0); ++n) {
    int64_t len = bytes[n].ne(0).nonzero().max().item<int64_t>() + 1;
    auto x = bytes[n].narrow(0, 0, len).unsqueeze(0);
    auto h = bos->bytes_encoder->stack(bos->bytes_encoder->embed(x), torch::Tensor(), false,
                                       torch::arange(len, torch::kLong).unsqueeze(0))[0];
    CHECK(torch::allclose(vb[n], h[0], 1e-5, 1e-5));
    CHECK(torch::allclose(vm[n], h.mean(0), 1e-5, 1e-5));
  }
}

TEST_CASE("options: image_pooling cls, an image still encodes alone as in any batch") {
  ModelConfig c = test_config(true, false);
  c.image_pooling = "cls";
  auto m = make(c, 7);
  torch::NoGradGuard g;
  Words w;
  Batch alone = w.batch({{"a"}}), mixed = w.batch({{"a", "a much wider word here"}});
  auto va = m->image_encoder(alone.image_patches, alone.image_patch_counts);
  auto vm = m->image_encoder(mixed.image_patches, mixed.image_patch_counts);
  CHECK(torch::allclose(va[1], vm[1], 1e-5, 1e-5));  // "a " (index 0 is BOS)
  CHECK(va.abs().max().item<double>() <= 1.0);       // tanh
  auto mean = make(test_config(true, false), 7);
  copy_shared(m, mean);
  CHECK_FALSE(torch::allclose(va, mean->image_encoder(alone.image_patches, alone.image_patch_counts), 1e-3, 1e-3));
}

TEST_CASE("options: bit_bias_init zero and tie_head") {
  ModelConfig c = test_config();
  c.bit_bias_init = "zero";
  c.tie_head = true;
  auto m = make(c, 8);
  CHECK(m->decoder_embed->bit_table.abs().sum().item<double>() == 0);
  CHECK(m->bytes_encoder->embed->bit_table.abs().sum().item<double>() == 0);
  CHECK(make(test_config(), 8)->decoder_embed->bit_table.abs().sum().item<double>() > 0);
  torch::NoGradGuard g;
  auto y = torch::randn({3, c.bytes_decoder.dim});
  CHECK(torch::allclose(m->byte_logits(y), torch::matmul(y, m->decoder_embed->table().t()), 1e-5, 1e-5));
  CHECK(!m->head);
}

TEST_CASE("options: modality dropout per call drops whole parts and rescales the survivors") {
  torch::set_num_threads(1);
  ModelConfig c = test_config();
  c.modality_dropout_mode = "call";
  c.modality_dropout = 0.5;
  auto m = make(c, 9);
  Words w;
  Batch b = w.batch({{"the cat sat"}, {"a b"}});
  torch::NoGradGuard g;
  // The four outcomes, computed in evaluation mode: a part switched off counts as dropped.
  auto bias = m->fuse->bias;
  ForwardOptions only_image, only_bytes;
  only_image.use_bytes = false;
  only_bytes.use_image = false;
  auto both = m->embed_words(b, {}), img = m->embed_words(b, only_image), byt = m->embed_words(b, only_bytes);
  // Survivors x2: the fused input of one part alone is twice its share.
  auto plain = make(test_config(), 9);  // "word" mode, same weights: no rescale
  copy_shared(m, plain);
  CHECK(torch::allclose(img - bias, 2 * (plain->embed_words(b, only_image) - bias), 1e-5, 1e-5));
  CHECK(torch::allclose(byt - bias, 2 * (plain->embed_words(b, only_bytes) - bias), 1e-5, 1e-5));
  // Training: every call is one of the four, the same for every word of the batch.
  m->train();
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    auto x = m->embed_words(b, {});
    std::string kind = torch::allclose(x, both, 1e-5, 1e-5)  ? "both"
                       : torch::allclose(x, img, 1e-5, 1e-5) ? "image"
                       : torch::allclose(x, byt, 1e-5, 1e-5) ? "bytes"
                       : torch::allclose(x, bias.expand_as(x), 1e-5, 1e-5) ? "none"
                                                                          : "other";
    ++seen[kind];
  }
  std::string counts;
  for (const auto& [k, v] : seen) counts += k + " " + std::to_string(v) + " ";
  INFO(counts);
  CHECK(seen.count("other") == 0);
  for (const char* k : {"both", "image", "bytes", "none"}) CHECK(seen.count(k) == 1);  // each happens at p = 0.5
}

TEST_CASE("options: autoencode spells each distinct word from its own vector, in training only") {
  torch::set_num_threads(1);
  ModelConfig c = test_config();
  c.modality_dropout = 0;  // the distinct vectors equal the occurrences'
  c.autoencode = 0.5;
  auto m = make(c, 10);
  auto off = make(test_config(), 10);  // same weights, no autoencoding
  Words w;
  Batch b = w.batch({{"the cat sat on the mat", "x y"}, {"a b the"}});
  torch::NoGradGuard g;
  CHECK_FALSE(m->forward(b).autoencode_nats.defined());  // evaluation: the next-word loss only
  m->train();
  off->train();
  ForwardOutput out = m->forward(b), plain = off->forward(b);
  REQUIRE(out.autoencode_nats.defined());
  CHECK_FALSE(plain.autoencode_nats.defined());
  CHECK(torch::allclose(out.nats, plain.nats, 1e-5, 1e-5));  // the next-word loss is unchanged
  // By hand, word by word: the decoder over [to_decoder(norm(fuse(encoders))), BOS, word] (the
  // padded path, one word at a time), targets the word and EOS.
  auto bytes = b.unique_word_bytes;  // [N, T]: BOS + word + EOS
  auto parts = torch::cat({m->image_encoder(b.image_patches, b.image_patch_counts), m->bytes_encoder(bytes)}, 1);
  auto h = m->to_decoder(m->latent->norm(m->fuse(parts)));  // [N, Dd]
  double nats = 0;
  int64_t targets = 0;
  for (int64_t n = 0; n < bytes.size(0); ++n) {
    int64_t len = bytes[n].ne(0).nonzero().max().item<int64_t>() + 1;
    auto x = torch::cat({h[n].unsqueeze(0), m->decoder_embed(bytes[n].narrow(0, 0, len - 1))}).unsqueeze(0);
    auto y = m->decoder(x, torch::Tensor(), true, torch::arange(len, torch::kLong).unsqueeze(0))[0];
    auto logits = m->byte_logits(y.narrow(0, 1, len - 1));
    nats += F::cross_entropy(logits, bytes[n].narrow(0, 1, len - 1).to(torch::kLong),
                             F::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
    targets += len - 1;
  }
  CHECK(out.autoencode_targets == targets);
  CHECK(std::abs(out.autoencode_nats.item<double>() - nats) < 1e-4 * nats);
  // The objective adds it with its weight; FLOPs count its decoder pass in training only.
  CHECK(std::abs(training_nats(out, c).item<double>() - (plain.nats.item<double>() + 0.5 * nats)) < 1e-4 * nats);
  CHECK(torch::allclose(training_nats(plain, test_config()), plain.nats));
  CHECK(m->forward_flops(b, false, true) > m->forward_flops(b));
  CHECK(m->forward_flops(b) == off->forward_flops(b, false, true));
}

TEST_CASE("options: autoencode's loss reaches the encoders and the decoder, not the latent's blocks") {
  torch::set_num_threads(1);
  ModelConfig c = test_config();
  c.modality_dropout = 0;
  c.autoencode = 1;
  auto m = make(c, 11);
  m->train();
  Words w;
  ForwardOutput out = m->forward(w.batch({{"the cat sat on the mat"}}));
  out.autoencode_nats.backward();
  auto grads = m->named_parameters(true);
  for (const char* n : {"fuse.weight", "latent.norm.weight", "latent_to_decoder.weight", "bytes_encoder.embed.byte_table",
                        "image_encoder.patch_embed.weight", "decoder.blocks.0.qkv.weight"}) {
    INFO(n);
    REQUIRE(grads.find(n) != nullptr);
    REQUIRE(grads[n].grad().defined());
    CHECK(grads[n].grad().abs().sum().item<double>() > 0);
  }
  auto q = grads["latent.blocks.0.qkv.weight"].grad();
  CHECK((!q.defined() || q.abs().sum().item<double>() == 0));
}
