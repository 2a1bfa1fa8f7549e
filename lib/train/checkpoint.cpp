#include "train/checkpoint.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/io.h"
#include "common/json_error.h"
#include "model/safetensors.h"

namespace ilt {

std::vector<std::pair<std::string, torch::Tensor>> model_tensors(ImageLatentTransformer& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model->named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

void load_model_tensors(ImageLatentTransformer& model, const std::string& path) {
  auto tensors = load_safetensors(path);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters(true)) {
    auto it = tensors.find(p.key());
    if (it == tensors.end()) fail("{}: no tensor '{}' (checkpoint of another model?)", path, p.key());
    if (it->second.scalar_type() != p.value().scalar_type())
      fail("{}: tensor '{}' is {}, the model wants {}", path, p.key(), c10::toString(it->second.scalar_type()),
           c10::toString(p.value().scalar_type()));
    if (it->second.sizes() != p.value().sizes())
      fail("{}: tensor '{}' has shape {}, the model wants {}", path, p.key(), fmt::join(it->second.sizes(), "x"),
           fmt::join(p.value().sizes(), "x"));
    p.value().copy_(it->second);
  }
}

LoadedModel load_checkpoint(const std::string& dir, const torch::Device& device) {
  LoadedModel m;
  const std::string file = dir + "/config.json";
  m.config = read_json_file(file);
  if (!m.config.is_object() || !m.config.contains("model")) fail("{}: no key /model (not an ilt checkpoint?)", file);
  if (!m.config.contains("render") || !m.config["render"].is_object())
    fail("{}: no object under key /render (renderer settings)", file);
  m.model = ImageLatentTransformer(model_config_from_json(m.config["model"], file));
  load_model_tensors(m.model, dir + "/model.safetensors");
  m.model->to(device);
  m.model->eval();
  return m;
}

void commit_directory(const std::string& tmp, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir)) {
    std::string old = dir + ".old";
    fs::remove_all(old, ec);
    fs::rename(dir, old, ec);
    if (ec) fail("{}: cannot move aside: {}", dir, ec.message());
    fs::rename(tmp, dir, ec);
    if (ec) fail("{}: cannot rename from {}: {}", dir, tmp, ec.message());
    sync_directory(fs::path(dir).parent_path().string());
    fs::remove_all(old, ec);
    return;
  }
  fs::rename(tmp, dir, ec);
  if (ec) fail("{}: cannot rename from {}: {}", dir, tmp, ec.message());
  sync_directory(fs::path(dir).parent_path().string());
}

}  // namespace ilt
