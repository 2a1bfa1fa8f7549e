// The sync-free optimizer step: clipping on the device, AdamW that skips a flagged step (fused
// kernel on LibTorch 2.4+, torch::optim::AdamW after a host check on 1.13).
#include "torch_catch.h"  // first: see there
#include "model/model_helper.h"
#include "train/optimizer.h"

using namespace ilt;
using namespace ilt::test;

namespace {

// Two groups, as the trainer makes them: weight decay on matrices only.
std::vector<torch::optim::OptimizerParamGroup> groups(ImageLatentTransformer& m) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : m->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(3e-3).weight_decay(0.1)));
  g.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(3e-3).weight_decay(0)));
  return g;
}

void gradients(ImageLatentTransformer& m, const Batch& b) {
  m->zero_grad();
  m->forward(b).loss.backward();
}

double largest_difference(ImageLatentTransformer& a, ImageLatentTransformer& b) {
  double worst = 0;
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, relative_difference(pa[i], pb[i]));
  return worst;
}

ImageLatentTransformer model(uint64_t seed) {
  torch::manual_seed(seed);
  ImageLatentTransformer m(test_config());
  m->train();
  return m;
}

}  // namespace

TEST_CASE("optimizer: clip_grad_norm equals LibTorch's clip_grad_norm_, as a device tensor") {
  torch::set_num_threads(1);
  Words w;
  Batch b = w.batch({{"a cat sat"}, {"b a"}});
  auto m1 = model(1), m2 = model(1);
  gradients(m1, b);
  gradients(m2, b);
  for (double max_norm : {1e-3, 1e6}) {  // clipping, and not
    INFO("max_norm " << max_norm);
    auto ours = clip_grad_norm(m1->parameters(), max_norm);
    double theirs = torch::nn::utils::clip_grad_norm_(m2->parameters(), max_norm);
    CHECK(ours.dim() == 0);
    CHECK(std::abs(ours.item<double>() - theirs) <= 1e-5 * theirs);
    auto p1 = m1->parameters(), p2 = m2->parameters();
    for (size_t i = 0; i < p1.size(); ++i) CHECK(relative_difference(p1[i].grad(), p2[i].grad()) < 1e-5);
  }
}

TEST_CASE("optimizer: SkippableAdamW follows torch::optim::AdamW and skips a flagged step entirely") {
  torch::set_num_threads(1);
  Words w;
  Batch b1 = w.batch({{"a cat sat"}, {"b a"}}), b2 = w.batch({{"the dog"}, {"a b c"}});
  auto ref = model(2), ours = model(2);
  torch::optim::AdamW ref_opt(groups(ref)), our_opt(groups(ours));
  SkippableAdamW stepper(our_opt);
  auto go = torch::zeros({}), skip = torch::ones({});
  for (int i = 0; i < 4; ++i) {
    const Batch& b = i % 2 ? b2 : b1;
    gradients(ref, b);
    ref_opt.step();
    gradients(ours, b);
    stepper.step(go);
    if (i == 1) {  // a flagged step in between changes nothing
      std::vector<torch::Tensor> before;
      for (auto& p : ours->parameters()) before.push_back(p.detach().clone());
      auto m_before = adamw_state(our_opt, ours->parameters()[0])->exp_avg().clone();
      gradients(ours, b2);
      stepper.step(skip);
      auto after = ours->parameters();
      for (size_t k = 0; k < before.size(); ++k) CHECK(after[k].equal(before[k]));
      CHECK(adamw_state(our_opt, ours->parameters()[0])->exp_avg().equal(m_before));
    }
  }
  INFO("fused kernel: " << stepper.fused());
  CHECK(largest_difference(ours, ref) < 1e-5);
  // The skipped step did not count: bias correction and the saved state say 4 steps.
  stepper.sync_state();
  for (auto& p : ours->parameters()) {
    auto* st = adamw_state(our_opt, p);
    REQUIRE(st != nullptr);
    CHECK(st->step() == 4);
  }
  CHECK(adamw_state(ref_opt, ref->parameters()[0])->step() == 4);
}

TEST_CASE("optimizer: a step flagged from the start creates no state and moves nothing") {
  torch::set_num_threads(1);
  Words w;
  auto m = model(3);
  torch::optim::AdamW opt(groups(m));
  SkippableAdamW stepper(opt);
  std::vector<torch::Tensor> before;
  for (auto& p : m->parameters()) before.push_back(p.detach().clone());
  gradients(m, w.batch({{"a b"}}));
  stepper.step(torch::ones({}));
  auto after = m->parameters();
  for (size_t k = 0; k < before.size(); ++k) CHECK(after[k].equal(before[k]));
  stepper.sync_state();
  for (auto& p : m->parameters()) {
    auto* st = adamw_state(opt, p);
    CHECK((st == nullptr || st->step() == 0));  // fused: zero moments, no step counted
  }
}
