// One bf16 training step checked against fp32, for the CPU (test_bf16) and CUDA (test_cuda)
// tests. Include after torch_catch.h.
#pragma once
#include <cmath>

#include "model/model.h"

namespace ilt::test {

// On `dev`: the loss of a forward pass under bf16 autocast is finite, within 2% of the fp32
// loss and not equal to it (autocast really ran); after backward every gradient is fp32,
// finite and on `dev`. Both passes start from the same random state (modality dropout).
inline void check_bf16_step(ImageLatentTransformer& m, const Batch& b, const torch::Device& dev) {
  torch::manual_seed(2);
  double fp32 = m->forward(b).loss.item<double>();
  torch::manual_seed(2);
  ForwardOutput out;
  {
    Autocast autocast("bf16", dev);  // the forward pass only; backward follows its dtypes
    out = m->forward(b);
  }
  out.loss.backward();
  double bf16 = out.loss.item<double>();
  INFO("fp32 " << fp32 << " bf16 " << bf16);
  CHECK(std::isfinite(bf16));
  CHECK(std::abs(bf16 - fp32) < 0.02 * fp32);
  CHECK(bf16 != fp32);
  for (const auto& p : m->parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().dtype() == torch::kFloat);
    CHECK(p.grad().device() == dev);
    CHECK(torch::isfinite(p.grad()).all().item<bool>());
  }
}

}  // namespace ilt::test
