#include "train/optimizer.h"

#include <sstream>
#include <type_traits>

#include "model/torch_version.h"

namespace ilt {

namespace {
// The optimizer's key for a parameter's state: the map's own key type decides (LibTorch 2.2 on
// keys by TensorImpl pointer; before, by that pointer printed, as c10::guts::to_string did).
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << static_cast<const void*>(p.unsafeGetTensorImpl());
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}
}  // namespace

torch::optim::AdamWParamState* adamw_state(torch::optim::AdamW& optimizer, const torch::Tensor& p) {
  auto& state = optimizer.state();
  auto it = state.find(state_key(state, p));
  return it == state.end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
}

void set_adamw_state(torch::optim::AdamW& optimizer, const torch::Tensor& p,
                     std::unique_ptr<torch::optim::AdamWParamState> st) {
  auto& state = optimizer.state();
  state[state_key(state, p)] = std::move(st);
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  torch::NoGradGuard no_grad;
  auto total = torch::stack(at::_foreach_norm(grads, 2)).to(torch::kFloat).norm();  // fp32 scalar
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
#if ILT_TORCH_AT_LEAST(2, 1)
  at::_foreach_mul_(grads, coef);
#else
  for (auto& g : grads) g.mul_(coef);
#endif
  return total;
}

SkippableAdamW::SkippableAdamW(torch::optim::AdamW& optimizer) : opt_(optimizer), fused_(ILT_TORCH_AT_LEAST(2, 4)) {
  if (!fused_) return;
  for (auto& group : opt_.param_groups()) {
    if (static_cast<torch::optim::AdamWOptions&>(group.options()).amsgrad())
      fused_ = false;  // (ilt never sets it; the fused path below passes no max moments)
    for (auto& p : group.params()) {
      auto* st = adamw_state(opt_, p);
      steps_.push_back(torch::full({}, st ? double(st->step()) : 0.0, p.options().dtype(torch::kFloat)));
    }
  }
}

void SkippableAdamW::step(const torch::Tensor& found_inf) {
  torch::NoGradGuard no_grad;
  if (!fused_) {
    if (found_inf.item<float>() == 0) opt_.step();  // LibTorch 1.13: its own AdamW, after a host check
    return;
  }
#if ILT_TORCH_AT_LEAST(2, 4)
  auto skip = found_inf.to(torch::kFloat).reshape({});
  size_t k = 0;
  for (auto& group : opt_.param_groups()) {
    const auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq, steps;
    for (auto& p : group.params()) {
      const size_t i = k++;
      if (!p.grad().defined()) continue;
      auto* st = adamw_state(opt_, p);
      if (!st) {  // first step of this parameter: zero moments, as torch::optim::AdamW starts them
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st = fresh.get();
        set_adamw_state(opt_, p, std::move(fresh));
      }
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avg.push_back(st->exp_avg());
      exp_avg_sq.push_back(st->exp_avg_sq());
      steps.push_back(steps_[i]);
    }
    if (params.empty()) continue;
    const auto [beta1, beta2] = o.betas();
    at::_foreach_add_(steps, 1);
    at::_fused_adamw_(params, grads, exp_avg, exp_avg_sq, {}, steps, o.lr(), beta1, beta2, o.weight_decay(), o.eps(),
                      /*amsgrad=*/false, /*maximize=*/false, std::nullopt, skip);
    at::_foreach_add_(steps, skip, -1);  // a skipped step does not count
  }
#endif
}

void SkippableAdamW::sync_state() {
  if (!fused_) return;
  size_t k = 0;
  for (auto& group : opt_.param_groups())
    for (auto& p : group.params()) {
      const size_t i = k++;
      if (auto* st = adamw_state(opt_, p)) st->step(int64_t(steps_[i].item<float>()));
    }
}

}  // namespace ilt
