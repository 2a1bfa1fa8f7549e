// Checkpoints: a directory written atomically (DIR.tmp, then renamed):
//   config.json        model, data and training settings; renderer settings and fonts
//   model.safetensors  weights under their module paths (e.g. "latent.blocks.0.qkv.weight")
//   optimizer.pt       optimizer state (LibTorch archive)
//   trainer.json       step, loader position, metrics so far
//   rng.pt             random generator states
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

// Replaces DIR by the contents of DIR.tmp (written by the caller) in one rename.
void commit_directory(const std::string& tmp, const std::string& dir);

}  // namespace ilt
