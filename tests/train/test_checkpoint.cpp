// Checkpoint pieces: the optimizer state file (both formats), checkpoint folders by step, and
// the model config's format_version.
#include "torch_catch.h"  // first: see there
#include "model/model_helper.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"

#include <filesystem>
#include <fstream>

using namespace ilt;
using namespace ilt::test;
namespace fs = std::filesystem;

namespace {
// A model and an AdamW that took two steps (so that every state tensor is non-trivial).
struct Trained {
  ImageLatentTransformer model{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt;
};
Trained trained(uint64_t seed, int steps = 2) {
  torch::manual_seed(seed);
  Trained t;
  t.model = ImageLatentTransformer(test_config(true, true));
  t.model->train();
  t.opt = std::make_unique<torch::optim::AdamW>(t.model->parameters(), torch::optim::AdamWOptions(1e-2));
  Words w;
  Batch b = w.batch({{"a b", "b a"}, {"a cat"}});
  for (int i = 0; i < steps; ++i) {
    t.opt->zero_grad();
    t.model->forward(b).loss.backward();
    t.opt->step();
  }
  return t;
}
// One more step of both, from the same weights and batch: equal weights after it iff the
// optimizer states were equal.
bool same_next_step(Trained& a, Trained& b) {
  {
    torch::NoGradGuard g;
    auto pa = a.model->parameters(), pb = b.model->parameters();
    for (size_t i = 0; i < pa.size(); ++i) pb[i].copy_(pa[i]);
  }
  Words w;
  Batch batch = w.batch({{"a dog"}, {"b a"}});
  for (Trained* t : {&a, &b}) {
    t->opt->zero_grad();
    t->model->forward(batch).loss.backward();
    t->opt->step();
  }
  auto pa = a.model->parameters(), pb = b.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!pa[i].equal(pb[i])) return false;
  return true;
}
}  // namespace

TEST_CASE("checkpoint: optimizer state saved by parameter name loads back exactly") {
  torch::set_num_threads(1);
  auto a = trained(1);
  fs::create_directories("ckpt-opt");
  save_optimizer_state("ckpt-opt/optimizer.safetensors", *a.opt, a.model);
  std::map<std::string, std::string> meta;
  auto tensors = load_safetensors("ckpt-opt/optimizer.safetensors", &meta);
  CHECK(meta["format"] == "ilt-adamw");
  CHECK(meta["format_version"] == "2");
  CHECK(tensors.count("exp_avg/latent.norm.weight") == 1);
  CHECK(tensors.at("step/latent.norm.weight").item<int64_t>() == 2);
  auto b = trained(2, 0);  // fresh optimizer, other weights
  CHECK(ILT_ERROR_OF(load_optimizer(".", 2, *b.opt, b.model)).find("optimizer.safetensors: missing") !=
        std::string::npos);
  load_optimizer("ckpt-opt", 2, *b.opt, b.model);
  CHECK(same_next_step(a, b));
  // Without the state, the next step differs: the check above can fail.
  auto c = trained(1), d = trained(3, 0);
  CHECK_FALSE(same_next_step(c, d));
  // Another model's state is refused by name or shape.
  torch::manual_seed(4);
  ImageLatentTransformer other(test_config(false, true));
  torch::optim::AdamW other_opt(other->parameters(), torch::optim::AdamWOptions(1e-2));
  CHECK(ILT_ERROR_OF(load_optimizer("ckpt-opt", 2, other_opt, other)).find("'exp_avg/fuse.weight' is Float 48x64") !=
        std::string::npos);
}

TEST_CASE("checkpoint: format 1 optimizer.pt (a LibTorch archive) still loads") {
  torch::set_num_threads(1);
  auto a = trained(5);
  fs::create_directories("ckpt-v1");
  torch::save(*a.opt, "ckpt-v1/optimizer.pt");  // what format 1 checkpoints hold
  auto b = trained(6, 0);
  load_optimizer("ckpt-v1", 1, *b.opt, b.model);
  CHECK(same_next_step(a, b));
  std::ofstream("ckpt-v1/optimizer.pt", std::ios::trunc) << "not an archive";
  CHECK(ILT_ERROR_OF(load_optimizer("ckpt-v1", 1, *b.opt, b.model)).find("not a valid optimizer state") !=
        std::string::npos);
}

TEST_CASE("checkpoint: folders sort by step number past 9,999,999") {
  CHECK(step_dir_name(42) == "step-0000042");
  CHECK(step_dir_name(12345678) == "step-12345678");
  fs::remove_all("run-sort");
  for (const char* d : {"step-9999999", "step-10000000", "step-0000005", "step-0000007.tmp", "step-x", "other"})
    fs::create_directories(fs::path("run-sort") / d);
  std::ofstream("run-sort/step-0000001");  // a file, not a checkpoint
  auto list = list_checkpoints("run-sort");
  REQUIRE(list.size() == 3);
  CHECK(list[0].first == 5);
  CHECK(list[1].first == 9999999);
  CHECK(list[2].first == 10000000);
  CHECK(fs::path(list[2].second).filename() == "step-10000000");
}

TEST_CASE("model config: format_version, options and their errors") {
  ModelConfig c = model_config_from_json({{"preset", "tiny"}});
  CHECK(c.format_version == kModelFormatVersion);
  auto j = to_json(c);
  CHECK(j.at("format_version") == kModelFormatVersion);
  for (const char* k : {"modality_dropout_mode", "encoder_norm", "decoder_norm", "bytes_pooling", "image_pooling",
                        "bit_bias_init", "tie_head"})
    CHECK(j.contains(k));
  // A checkpoint's config without format_version reads as version 1, with today's behaviour.
  nlohmann::json old = j;
  for (const char* k : {"format_version", "modality_dropout_mode", "encoder_norm", "decoder_norm", "bytes_pooling",
                        "image_pooling", "bit_bias_init", "tie_head"})
    old.erase(k);
  ModelConfig v1 = model_config_from_json(old, "old/config.json", 1);
  CHECK(v1.format_version == 1);
  CHECK(v1.modality_dropout_mode == "word");
  CHECK_FALSE(v1.encoder_norm);
  CHECK(v1.bytes_pooling == "mean");
  CHECK_FALSE(v1.tie_head);
  nlohmann::json future = j;
  future["format_version"] = kModelFormatVersion + 1;
  CHECK(ILT_ERROR_OF(model_config_from_json(future, "new/config.json")).find("newer ilt") != std::string::npos);
  nlohmann::json bad = j;
  bad["bytes_pooling"] = "max";
  CHECK(ILT_ERROR_OF(model_config_from_json(bad, "x.json")).find("key /bytes_pooling: 'max' is not one of mean, bos") !=
        std::string::npos);
  ModelConfig w = model_config("welt-tiny");
  CHECK(w.encoder_norm);
  CHECK(w.decoder_norm);
  CHECK(w.bytes_pooling == "bos");
  CHECK(w.image_pooling == "cls");
  CHECK(w.modality_dropout_mode == "call");
  CHECK(w.bit_bias_init == "zero");
  CHECK(w.tie_head);
  CHECK(w.latent.dim == model_config("ref-tiny").latent.dim);
  // A stack's MLP: written, read back, absent = SwiGLU (configs before version 3), checked.
  ModelConfig rs = model_config("ref-small");
  CHECK(rs.latent.mlp == "gelu");
  CHECK(to_json(rs).at("latent").at("mlp") == "gelu");
  CHECK(model_config_from_json(to_json(rs)).latent.mlp == "gelu");
  nlohmann::json no_mlp = to_json(rs);
  no_mlp["latent"].erase("mlp");
  CHECK(model_config_from_json(no_mlp, "old/config.json", 2).latent.mlp == "swiglu");
  // autoencode (version 5): written, read back; a config of an older version that lacks it has
  // the loss off, whatever today's preset default; a negative weight and a bytes-lm refused.
  CHECK(j.contains("autoencode"));
  CHECK(model_config_from_json({{"preset", "tiny"}, {"autoencode", 2.5}}).autoencode == 2.5);
  CHECK(model_config_from_json(to_json(model_config_from_json({{"autoencode", 2.5}}))).autoencode == 2.5);
  nlohmann::json v4 = j;
  v4.erase("autoencode");
  v4["format_version"] = 4;
  CHECK(model_config_from_json(v4, "old/config.json").autoencode == 0);
  CHECK(ILT_ERROR_OF(model_config_from_json({{"autoencode", -1}}, "x.json")).find("autoencode must be in") !=
        std::string::npos);
  CHECK(ILT_ERROR_OF(model_config_from_json({{"preset", "bytes-lm-tiny"}, {"autoencode", 1}}, "x.json"))
            .find("autoencode needs an ILT") != std::string::npos);
  nlohmann::json bad_mlp = to_json(rs);
  bad_mlp["latent"]["mlp"] = "relu";
  CHECK(ILT_ERROR_OF(model_config_from_json(bad_mlp, "x.json")).find("key /latent/mlp: 'relu' is not one of swiglu, gelu") !=
        std::string::npos);
}

TEST_CASE("model config: ref presets match the reference's parameter counts within 5%") {
  auto params = [](const char* name) {
    ImageLatentTransformer m(model_config(name));
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    return double(n);
  };
  const double small = params("ref-small"), tiny = params("ref-tiny");
  INFO("ref-small " << small << ", ref-tiny " << tiny);
  CHECK(std::abs(small / 30.9e6 - 1) < 0.05);  // the reference's 30.9M (bytes only, GELU MLPs)
  CHECK(std::abs(tiny / 13.0e6 - 1) < 0.05);   // and 13M (ViT image encoder)
}
