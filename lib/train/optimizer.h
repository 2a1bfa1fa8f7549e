// The optimizer step without host syncs: gradient clipping and AdamW whose "skip this step"
// decision stays on the device.
//
// A training step used to read the loss and the gradient norm on the host (two syncs) to
// refuse a non-finite step before AdamW ran. Now the decision is a device tensor, found_inf:
// with LibTorch 2.4 or newer one fused AdamW kernel per parameter group (at::_fused_adamw_,
// CUDA and CPU) takes it and leaves weights and moments untouched where it is set; the trainer
// reads it only at log and save steps. On LibTorch 1.13 (CPU builds, where a sync costs
// nothing) torch::optim::AdamW's own step runs after a host check of the same flag.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace ilt {

// A parameter's AdamW state in the optimizer (nullptr: none yet), and setting it; the state
// map's key type differs between LibTorch versions and is handled here only.
torch::optim::AdamWParamState* adamw_state(torch::optim::AdamW& optimizer, const torch::Tensor& p);
void set_adamw_state(torch::optim::AdamW& optimizer, const torch::Tensor& p,
                     std::unique_ptr<torch::optim::AdamWParamState> state);

// Scales the gradients so that their global L2 norm is at most max_norm (as
// torch::nn::utils::clip_grad_norm_: coefficient max_norm / (norm + 1e-6), at most 1) and
// returns that norm before clipping, as a scalar fp32 tensor on the gradients' device.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

// AdamW steps on the state of a torch::optim::AdamW (its parameter groups, options and
// AdamWParamState moments), so that checkpoints keep one format whichever kernel ran.
class SkippableAdamW {
 public:
  explicit SkippableAdamW(torch::optim::AdamW& optimizer);
  // One step over every parameter with a gradient, unless found_inf (scalar, on the
  // parameters' device, non-zero = skip) is set.
  void step(const torch::Tensor& found_inf);
  // Writes the step counts kept on the device back into the AdamW state (before saving it).
  void sync_state();
  bool fused() const { return fused_; }

 private:
  torch::optim::AdamW& opt_;
  bool fused_;
  std::vector<torch::Tensor> steps_;  // fused: per parameter, fp32 scalar on its device
};

}  // namespace ilt
