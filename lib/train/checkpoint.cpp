#include "train/checkpoint.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/io.h"
#include "common/json_error.h"
#include "model/safetensors.h"
#include "train/optimizer.h"

#include <map>

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
  m.model = ImageLatentTransformer(model_config_from_json(m.config["model"], file, 1));  // no format_version: the first
  load_model_tensors(m.model, dir + "/model.safetensors");
  m.model->to(device);
  m.model->eval();
  return m;
}

std::string resolve_checkpoint(const std::string& given) {
  std::string path = given;  // "run/step-0000004/" (tab completion) names run/step-0000004
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  struct stat st;
  if (::stat((path + "/config.json").c_str(), &st) == 0) return path;
  if (::stat((path + "/latest").c_str(), &st) == 0) {
    std::string name = read_all(path + "/latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    return path + "/" + name;
  }
  fail("{}: not a checkpoint (no config.json) nor a run directory (no latest)", path);
}

std::string step_dir_name(int64_t step) { return fmt::format("step-{:07d}", step); }

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 6 || name.size() > 5 + 18 || name.compare(0, 5, "step-") != 0) continue;
    if (name.find_first_not_of("0123456789", 5) != std::string::npos) continue;  // step-N.tmp, .old
    std::error_code dir_ec;
    if (!e.is_directory(dir_ec)) continue;
    out.emplace_back(std::stoll(name.substr(5)), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_optimizer_state(const std::string& path, torch::optim::AdamW& optimizer, ImageLatentTransformer& model) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters(true)) {
    auto* found = adamw_state(optimizer, p.value());
    if (!found) continue;
    auto& st = *found;
    tensors.emplace_back("exp_avg/" + p.key(), st.exp_avg().to(torch::kCPU, torch::kFloat));
    tensors.emplace_back("exp_avg_sq/" + p.key(), st.exp_avg_sq().to(torch::kCPU, torch::kFloat));
    if (st.max_exp_avg_sq().defined())
      tensors.emplace_back("max_exp_avg_sq/" + p.key(), st.max_exp_avg_sq().to(torch::kCPU, torch::kFloat));
    tensors.emplace_back("step/" + p.key(), torch::tensor({int64_t(st.step())}, torch::kLong));
  }
  save_safetensors(path, tensors, {{"format", "ilt-adamw"}, {"format_version", "2"}});
}

void load_optimizer_state(const std::string& path, torch::optim::AdamW& optimizer, ImageLatentTransformer& model) {
  std::map<std::string, std::string> meta;
  auto tensors = load_safetensors(path, &meta);
  if (meta["format"] != "ilt-adamw") fail("{}: not an ilt optimizer state (metadata format '{}')", path, meta["format"]);
  if (meta["format_version"] != "2")
    fail("{}: optimizer state format_version '{}' is not one this ilt reads (2)", path, meta["format_version"]);
  size_t used = 0;
  for (const auto& p : model->named_parameters(true)) {
    auto take = [&](const std::string& kind, bool required) -> torch::Tensor {
      auto it = tensors.find(kind + "/" + p.key());
      if (it == tensors.end()) {
        if (required) fail("{}: no tensor '{}/{}'", path, kind, p.key());
        return {};
      }
      ++used;
      return it->second;
    };
    auto step = take("step", false);
    if (!step.defined()) continue;  // never stepped
    if (step.scalar_type() != torch::kLong || step.numel() != 1) fail("{}: 'step/{}' is not one I64", path, p.key());
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step.item<int64_t>());
    for (auto [kind, set] : {std::pair<const char*, int>{"exp_avg", 0}, {"exp_avg_sq", 1}, {"max_exp_avg_sq", 2}}) {
      auto t = take(kind, set < 2);
      if (!t.defined()) continue;
      if (t.scalar_type() != torch::kFloat || t.sizes() != p.value().sizes())
        fail("{}: '{}/{}' is {} {}, the parameter {} {}", path, kind, p.key(), c10::toString(t.scalar_type()),
             fmt::join(t.sizes(), "x"), c10::toString(p.value().scalar_type()), fmt::join(p.value().sizes(), "x"));
      t = t.to(p.value().options());
      if (set == 0) st->exp_avg(t);
      else if (set == 1) st->exp_avg_sq(t);
      else st->max_exp_avg_sq(t);
    }
    set_adamw_state(optimizer, p.value(), std::move(st));
  }
  if (used != tensors.size()) fail("{}: {} tensors name no parameter of this model", path, tensors.size() - used);
}

void require_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: missing (an incomplete checkpoint?)", path);
}

void load_optimizer(const std::string& dir, int format_version, torch::optim::AdamW& optimizer,
                    ImageLatentTransformer& model) {
  if (format_version >= 2) {
    const std::string file = dir + "/optimizer.safetensors";
    require_file(file);
    load_optimizer_state(file, optimizer, model);
    return;
  }
  const std::string file = dir + "/optimizer.pt";
  require_file(file);
  try {
    torch::load(optimizer, file);
  } catch (const c10::Error& e) {
    fail("{}: not a valid optimizer state: {}", file, first_line(e.what_without_backtrace()));
  }
  // The archive restores tensors to the device they were saved from: move them to the model's.
  for (const auto& p : model->parameters()) {
    auto* found = adamw_state(optimizer, p);
    if (!found) continue;
    auto& st = *found;
    st.exp_avg(st.exp_avg().to(p.options()));
    st.exp_avg_sq(st.exp_avg_sq().to(p.options()));
    if (st.max_exp_avg_sq().defined()) st.max_exp_avg_sq(st.max_exp_avg_sq().to(p.options()));
  }
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
