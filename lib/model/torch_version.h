// LibTorch version checks by the version that brought each feature (not by major version:
// 2.0-2.3 lack some of what 2.x code uses).
#pragma once
#include <torch/version.h>

#include <string>

#include "common/version.h"

#define ILT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention taking std::optional<Tensor> (c10::optional became
// std::optional in 2.2).
#define ILT_TORCH_HAS_SDPA ILT_TORCH_AT_LEAST(2, 2)
// The device-generic autocast API (at::autocast::set_autocast_enabled(device_type, ...)), and
// CPU autocast to bfloat16 through it: 2.4.
#define ILT_TORCH_HAS_AUTOCAST ILT_TORCH_AT_LEAST(2, 4)

namespace ilt {
// What this build runs on, for --version (cheap to include: no <torch/torch.h>): "LibTorch
// 2.11.0" and a line on CUDA ("CUDA 13.0: compiled, no device", "... 1 device", or "CUDA: not
// compiled (CPU-only LibTorch)").
LibraryVersions torch_versions();
}  // namespace ilt
