// bfloat16 autocast on the CPU (LibTorch 2.4 or newer; CMake registers this binary only there,
// and a skipped test in its place elsewhere). CUDA autocast is checked by scripts/gpu-check.sh.
#include "torch_catch.h"  // first: see there
#include "model/model.h"
#include "model/safetensors.h"
#include "bf16_step_check.h"
#include "model_helper.h"
#include "train/checkpoint.h"

using namespace ilt;
using namespace ilt::test;

namespace {
// The model's forward pass under CPU bf16 autocast; a backward pass after it, outside the
// autocast, follows the dtypes the forward pass recorded (as in ilt-train).
ForwardOutput bf16_forward(ImageLatentTransformer& m, const Batch& b) {
  Autocast autocast("bf16", torch::kCPU);
  return m->forward(b);
}
}  // namespace

TEST_CASE("bf16: a training step's loss is finite and close to fp32's, gradients finite") {
  torch::set_num_threads(2);
  torch::manual_seed(1);
  ImageLatentTransformer m(test_config());
  m->train();
  Words w;
  Batch b = w.batch({{"the cat sat on the mat", "x y"}, {"a b"}});
  check_bf16_step(m, b, torch::kCPU);
}

TEST_CASE("bf16: overfit on four tiny texts under autocast") {
  torch::set_num_threads(2);
  torch::manual_seed(2);
  ImageLatentTransformer m(test_config());
  m->train();
  Words w;
  Batch b = w.batch({{"a b"}, {"b a"}, {"a cat"}, {"a dog"}});
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
  double first = 0, last = 0;
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    ForwardOutput out = bf16_forward(m, b);
    out.loss.backward();
    opt.step();
    (i == 0 ? first : last) = out.loss.item<double>();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.1 * first);
  // The seen continuation beats a changed one, read in fp32 from the bf16-trained weights.
  m->eval();
  torch::NoGradGuard g;
  auto nats = [&](const std::string& text) { return m->forward(w.batch({{text}})).nats.item<double>(); };
  CHECK(nats("a cat") < nats("a cot"));
  CHECK(nats("a dog") < nats("a dig"));
}

TEST_CASE("bf16: weights trained under bf16 load for fp32 and the other way round") {
  torch::set_num_threads(2);
  torch::manual_seed(3);
  ImageLatentTransformer m(test_config());
  m->eval();
  save_safetensors("bf16-test.safetensors", model_tensors(m));
  for (const auto& t : load_safetensors("bf16-test.safetensors")) CHECK(t.second.scalar_type() == torch::kFloat);
  torch::manual_seed(4);
  ImageLatentTransformer m2(test_config());
  m2->eval();
  load_model_tensors(m2, "bf16-test.safetensors");
  Words w;
  Batch b = w.batch({{"the cat sat on the mat"}});
  torch::NoGradGuard g;
  auto a = m->forward(b).word_nats;
  torch::Tensor c = bf16_forward(m2, b).word_nats;
  CHECK(torch::allclose(a, c, 0.05, 0.05));  // the same weights read in bf16: close, not equal
  CHECK(m2->forward(b).word_nats.equal(a));  // and in fp32: the same
}
