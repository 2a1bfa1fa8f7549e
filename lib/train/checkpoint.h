// Checkpoints: a directory RUN/step-NNNNNNN written atomically (DIR.tmp, then renamed):
//   config.json            model, data and training settings; renderer settings and fonts
//   model.safetensors      weights under their module paths (e.g. "latent.blocks.0.qkv.weight")
//   optimizer.safetensors  AdamW state by parameter name (format_version 2; see below)
//   trainer.json           format_version, step, loader position, elapsed time
//   rng.pt                 random generator states
// Format version 1 (before trainer.json had one) kept the optimizer in optimizer.pt, a
// LibTorch archive tied to the parameter order; it still loads.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "model/model.h"

namespace ilt {

// The model's tensors with their stable names (parameters only; buffers are derived).
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(ImageLatentTransformer& model);
// Loads weights by name; every parameter must be present with its shape.
void load_model_tensors(ImageLatentTransformer& model, const std::string& safetensors_path);

// Loads a checkpoint's config and weights onto a device.
struct LoadedModel {
  nlohmann::json config;  // the whole config.json
  ImageLatentTransformer model{nullptr};
};
LoadedModel load_checkpoint(const std::string& dir, const torch::Device& device);

// The checkpoint directory for a path that may be a run directory (with a `latest` file).
std::string resolve_checkpoint(const std::string& path);

// trainer.json's format_version written today; 1 = a trainer.json without one.
inline constexpr int kTrainerFormatVersion = 2;

// "step-0000042": seven digits at least, more past step 9,999,999 (so names alone do not sort
// by step past there: list_checkpoints() does).
std::string step_dir_name(int64_t step);
// The checkpoint directories of a run (step-N, any number of digits), by step, ascending.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir);

// The optimizer state, one rule for every device and every later optimizer layout: saved whole
// (every parameter's state, gathered if it was ever sharded), as fp32 CPU tensors named by
// parameter ("exp_avg/latent.norm.weight", "exp_avg_sq/...", "step/..." as I64 [1]), with
// {"format": "ilt-adamw", "format_version": "2"} metadata. Loading puts each tensor on its
// parameter's device; a parameter without state (never stepped) stays without.
void save_optimizer_state(const std::string& path, torch::optim::AdamW& optimizer, ImageLatentTransformer& model);
void load_optimizer_state(const std::string& path, torch::optim::AdamW& optimizer, ImageLatentTransformer& model);

// The optimizer state of checkpoint DIR written with trainer format `format_version`: 2 reads
// DIR/optimizer.safetensors, 1 DIR/optimizer.pt (a LibTorch archive of the same optimizer).
void load_optimizer(const std::string& dir, int format_version, torch::optim::AdamW& optimizer,
                    ImageLatentTransformer& model);

// Fails with "PATH: missing (an incomplete checkpoint?)" unless PATH is a regular file.
void require_file(const std::string& path);

// Replaces DIR by the contents of DIR.tmp (written by the caller) in one rename.
void commit_directory(const std::string& tmp, const std::string& dir);

}  // namespace ilt
