// CUDA tests: the model, training, checkpoints and generation on a GPU against the CPU.
// Without a CUDA device (or with a LibTorch built without CUDA) the binary prints why and
// exits 77, which CTest reports as skipped, never as passed. scripts/gpu-check.sh runs it on
// the GPU machine.
//
// ILT_TEST_DEVICE=cpu runs the same cases with the CPU in the GPU's place: a check of the
// tests themselves on machines without a GPU (it proves nothing about CUDA; the CTest entry
// does not set it).
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#endif
#include "torch_catch.h"  // first after the above: see there
#include "generate/generate.h"
#include "model/model.h"
#include "model/bf16_step_check.h"
#include "model/model_helper.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace ilt;
using namespace ilt::test;
namespace fs = std::filesystem;

namespace {

torch::Device test_device() {
  const char* d = std::getenv("ILT_TEST_DEVICE");
  return torch::Device(d && *d ? d : "cuda");
}

// A batch of ordinary text and one with a prefix block (which takes the masked path).
Batch sample_batch(Words& w) {
  return w.batch_of_words({{split_words("the cat sat on the mat "), split_words("a b a b ")},
                           {{"\x0E", "x ", "y ", "\x0F", "z ", "the "}}});
}

// A model trained on one batch until it knows it (on `dev`, TF32 off).
ImageLatentTransformer overfit(const ModelConfig& c, const Batch& b, const torch::Device& dev, int steps) {
  torch::manual_seed(7);
  ImageLatentTransformer m(c);
  m->to(dev);
  m->train();
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
  Batch db = to_device(b, dev);
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    m->forward(db).loss.backward();
    opt.step();
  }
  m->eval();
  return m;
}

// Prompts are split at spaces (no ICU needed); images come from pattern_image (no Pango).
GenerateEnv pattern_env() {
  GenerateEnv env;
  env.render = [](const std::string& w, WordImage* out) { *out = pattern_image(w, Words::H, Words::Wp); };
  env.segment = [](std::string_view text) { return split_words(std::string(text)); };
  env.max_word_length = Words::T;
  return env;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ilt-test-cuda-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("cuda: every preset's forward on the device equals the CPU forward") {
  const torch::Device dev = test_device();
  set_tf32(false);  // full fp32 on both sides: the tolerance below is for reordered sums only
  Words w;
  Batch b = sample_batch(w);
  for (const auto& name : preset_names()) {
    INFO("preset " << name);
    torch::manual_seed(3);
    ImageLatentTransformer m(test_preset(name));
    m->eval();
    torch::NoGradGuard g;
    ForwardOptions o;
    o.accuracy = true;
    ForwardOutput cpu = m->forward(b, o);
    m->to(dev);
    ForwardOutput gpu = m->forward(to_device(b, dev), o);
    CHECK(relative_difference(gpu.latent, cpu.latent) < 1e-3);
    CHECK(relative_difference(gpu.word_nats, cpu.word_nats) < 1e-3);
    CHECK(std::abs(gpu.loss.item<double>() - cpu.loss.item<double>()) < 1e-4 * cpu.loss.item<double>());
    CHECK(gpu.target_bytes == cpu.target_bytes);
  }
}

TEST_CASE("cuda: a bf16 training step's loss is finite and close to fp32's") {
  const torch::Device dev = test_device();
  set_tf32(false);
  torch::manual_seed(1);
  ImageLatentTransformer m(test_config());
  m->to(dev);
  m->train();
  Words w;
  Batch b = to_device(sample_batch(w), dev);
  check_bf16_step(m, b, dev);
}

TEST_CASE("cuda: the packed path (the flash varlen kernel in bf16) equals the padded path") {
  const torch::Device dev = test_device();
  set_tf32(false);
  Words w;
  Batch b = to_device(sample_batch(w), dev);
  for (const char* name : {"tiny", "ref-tiny", "ref-small", "welt-tiny"}) {
    for (const char* precision : {"fp32", "bf16"}) {
      INFO("preset " << name << ", " << precision);
      torch::manual_seed(5);
      ModelConfig c = test_preset(name);
      c.modality_dropout = 0;
      ImageLatentTransformer m(c);
      m->to(dev);
      m->train();
      std::vector<double> loss;
      std::vector<std::vector<torch::Tensor>> grads;
      for (bool packed : {true, false}) {
        m->zero_grad();
        ForwardOptions o;
        o.packed = packed;
        ForwardOutput out;
        {
          Autocast autocast(precision, dev);
          out = m->forward(b, o);
        }
        out.loss.backward();
        loss.push_back(out.loss.item<double>());
        grads.emplace_back();
        for (const auto& p : m->parameters()) grads.back().push_back(p.grad().clone());
      }
      const bool bf16 = std::string(precision) == "bf16";
      CHECK(std::abs(loss[0] - loss[1]) < (bf16 ? 1e-2 : 1e-5) * loss[1]);
      for (size_t i = 0; i < grads[0].size(); ++i) {
        CHECK(torch::isfinite(grads[0][i]).all().item<bool>());
        CHECK(relative_difference(grads[0][i], grads[1][i]) < (bf16 ? 0.1 : 1e-4));
      }
    }
  }
}

TEST_CASE("cuda: generation with the cache equals generation without it, and the CPU's") {
  const torch::Device dev = test_device();
  set_tf32(false);
  Words w(/*patterns=*/true);  // the images pattern_env() renders
  Batch b = w.batch({{"the cat sat on the mat and the dog sat on the log "}, {"one two three four five six "}});
  for (bool image : {false, true}) {  // a bytes-only model, and one reading (pattern) images
    INFO((image ? "image + bytes" : "bytes only"));
    ImageLatentTransformer m = overfit(test_config(image, true), b, dev, 400);
    GenerateOptions o;
    o.max_words = 8;
    const std::vector<std::string> prompts = {"the cat ", "one two ", "the dog sat "};
    std::vector<std::string> cached, uncached;
    {
      Generator g(m, pattern_env(), dev);
      for (const auto& r : g.generate(prompts, o)) cached.push_back(r.text);
    }
    {
      o.use_cache = false;
      Generator g(m, pattern_env(), dev);
      for (const auto& r : g.generate(prompts, o)) uncached.push_back(r.text);
    }
    CHECK(cached == uncached);
    CHECK(cached[0] == "sat on the mat and the dog sat ");  // it learnt the text: the loop is not idle
    // The same weights on the CPU write the same words.
    m->to(torch::kCPU);
    o.use_cache = true;
    Generator g(m, pattern_env(), torch::kCPU);
    std::vector<std::string> cpu;
    for (const auto& r : g.generate(prompts, o)) cpu.push_back(r.text);
    CHECK(cpu == cached);
  }
}

TEST_CASE("cuda: weights and optimizer state saved on the device load on the CPU and back") {
  const torch::Device dev = test_device();
  set_tf32(false);
  TempDir tmp;
  Words w;
  Batch b = sample_batch(w);
  torch::manual_seed(4);
  ImageLatentTransformer m(test_config());
  m->to(dev);
  m->train();
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    m->forward(to_device(b, dev)).loss.backward();
    opt.step();
  }
  save_safetensors(tmp.path + "/model.safetensors", model_tensors(m));
  save_optimizer_state(tmp.path + "/optimizer.safetensors", opt, m);

  // Load on the CPU: every weight and every optimizer moment equal to the device's.
  torch::manual_seed(5);  // other initial weights, so that loading must overwrite them
  ImageLatentTransformer c(test_config());
  load_model_tensors(c, tmp.path + "/model.safetensors");
  torch::optim::AdamW copt(c->parameters(), torch::optim::AdamWOptions(1e-2));
  load_optimizer_state(tmp.path + "/optimizer.safetensors", copt, c);
  auto gp = m->named_parameters(true), cp = c->named_parameters(true);
  for (const auto& p : gp) {
    INFO(p.key());
    const torch::Tensor& cpu_p = cp[p.key()];
    CHECK(cpu_p.device() == torch::Device(torch::kCPU));
    CHECK(p.value().to(torch::kCPU).equal(cpu_p));
  }
  CHECK(copt.state().size() == c->parameters().size());
  for (auto& kv : copt.state()) {
    auto& st = static_cast<torch::optim::AdamWParamState&>(*kv.second);
    CHECK(st.exp_avg().device() == torch::Device(torch::kCPU));
    CHECK(st.step() == 3);
  }
  // One more step on each side from the loaded state: the same weights within fp32 rounding
  // (equal optimizer state; only the kernels differ).
  Batch b2 = w.batch({{"a dog sat "}, {"b a "}});
  c->train();
  opt.zero_grad();
  m->forward(to_device(b2, dev)).loss.backward();
  opt.step();
  copt.zero_grad();
  c->forward(b2).loss.backward();
  copt.step();
  for (const auto& p : gp) {
    INFO(p.key());
    CHECK(relative_difference(p.value(), cp[p.key()]) < 1e-4);
  }

  // And back: the CPU's state loads on the device.
  save_optimizer_state(tmp.path + "/optimizer2.safetensors", copt, c);
  save_safetensors(tmp.path + "/model2.safetensors", model_tensors(c));
  ImageLatentTransformer d(test_config());
  d->to(dev);
  load_model_tensors(d, tmp.path + "/model2.safetensors");
  torch::optim::AdamW dopt(d->parameters(), torch::optim::AdamWOptions(1e-2));
  load_optimizer_state(tmp.path + "/optimizer2.safetensors", dopt, d);
  size_t on_device = 0;
  for (auto& kv : dopt.state()) {
    auto& st = static_cast<torch::optim::AdamWParamState&>(*kv.second);
    on_device += st.exp_avg().device() == dev && st.exp_avg_sq().device() == dev;
  }
  CHECK(on_device == d->parameters().size());
}

int main(int argc, char** argv) {
  const torch::Device dev = test_device();
  if (dev.is_cuda() && !torch::cuda::is_available()) {
#ifdef ILT_TORCH_CUDA_VERSION
    std::printf("skipped: no CUDA device on this machine (LibTorch built with CUDA %s)\n", ILT_TORCH_CUDA_VERSION);
#else
    std::printf("skipped: this LibTorch was built without CUDA\n");
#endif
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
