#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/cli.h"
#include "common/error.h"
#include "common/io.h"
#include "data/loader.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/autocast_mode.h>
#endif

namespace ilt {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double learning_rate(const TrainOptions& o, int64_t step) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  if (o.schedule == "constant") return o.lr;
  double span = std::max<double>(1, double(o.max_steps - o.warmup));
  double p = std::min(1.0, double(step - o.warmup) / span);
  double floor = o.lr * o.min_lr_ratio;
  if (o.schedule == "linear") return floor + (o.lr - floor) * (1 - p);
  if (o.schedule == "cosine") return floor + (o.lr - floor) * 0.5 * (1 + std::cos(M_PI * p));
  fail("unknown schedule '{}' (cosine, linear, constant)", o.schedule);
}

namespace {


// AdamW groups: weight decay on matrices of Linear layers only, not on norms, biases or
// embedding tables.
std::vector<torch::optim::OptimizerParamGroup> param_groups(ImageLatentTransformer& model, const TrainOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model->named_parameters(true)) {
    const std::string& n = p.key();
    bool is_table = n.find("byte_table") != std::string::npos || n.find("bit_table") != std::string::npos;
    if (p.value().dim() >= 2 && !is_table)
      decay.push_back(p.value());
    else
      no_decay.push_back(p.value());
  }
  auto opts = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(wd).eps(1e-8));
  };
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(decay, opts(o.weight_decay));
  g.emplace_back(no_decay, opts(0.0));
  return g;
}

struct EvalResult {
  double loss = 0, bpb = 0, byte_tokens = 0;
};

EvalResult evaluate(ImageLatentTransformer& model, const std::vector<std::string>& shards, size_t batch_size,
                    int64_t max_batches, const torch::Device& dev) {
  torch::NoGradGuard no_grad;
  model->eval();
  DataLoader dl(shards, LoaderOptions{batch_size, 0, false, false, 2});
  double nats = 0, targets = 0, label_bytes = 0;
  for (int64_t i = 0; max_batches <= 0 || i < max_batches; ++i) {
    auto b = dl.next();
    if (!b) break;
    auto out = model->forward(to_device(*b, dev));
    nats += out.nats.item<double>();
    targets += double(out.target_bytes);
    label_bytes += double(b->label_bytes);
  }
  model->train();
  return {nats / std::max(1.0, targets), nats / kLn2 / std::max(1.0, label_bytes), targets};
}

void save_rng(const std::string& path) {
  std::vector<torch::Tensor> states{at::detail::getDefaultCPUGenerator().get_state()};
  torch::save(states, path);
}
void load_rng(const std::string& path) {
  std::vector<torch::Tensor> states;
  torch::load(states, path);
  if (states.empty()) fail("{}: no RNG state", path);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(states[0]);
}

std::string step_dir(const std::string& out, int64_t step) { return fmt::format("{}/step-{:07d}", out, step); }

}  // namespace

int train(const TrainOptions& opt_in) {
  TrainOptions o = opt_in;
  if (o.output.empty()) fail("--output is required");
  if (o.train.empty()) fail("--train is required");
  if (o.grad_accum < 1) fail("--grad-accum must be at least 1");
  set_cpu_threads(o.threads > 0 ? o.threads : default_threads());
  torch::manual_seed(o.seed);
  torch::Device dev(o.device);
  if (dev.is_cuda() && !torch::cuda::is_available()) fail("--device {}: CUDA is not available", o.device);
  bool bf16 = o.precision == "bf16";
  if (o.precision != "fp32" && !bf16) fail("--precision must be fp32 or bf16");
  if (bf16 && !dev.is_cuda()) fail("--precision bf16 is for CUDA devices (autocast); use fp32 on CPU");

  // Data first: the model's geometry comes from the packed data.
  LoaderState start;
  nlohmann::json resume_state;
  if (!o.resume.empty()) resume_state = nlohmann::json::parse(read_all(o.resume + "/trainer.json"));
  if (!resume_state.is_null()) start = LoaderState::from_json(resume_state.at("loader"));
  DataLoader loader(o.train, LoaderOptions{o.batch_size, o.seed, true, true, 4}, start);
  const nlohmann::json& data_meta = loader.meta();

  ModelConfig mc;
  if (!o.resume.empty()) {
    mc = model_config_from_json(nlohmann::json::parse(read_all(o.resume + "/config.json")).at("model"));
  } else {
    mc = model_config(o.config);
    mc.max_word_length = int(loader.max_word_length());
    mc.image_height = data_meta.at("render").at("height").get<int>();
    mc.patch_width = data_meta.at("render").at("patch_width").get<int>();
    mc.max_patches = data_meta.at("render").at("max_width").get<int>() / mc.patch_width;
  }
  if (mc.max_word_length != loader.max_word_length())
    fail("the checkpoint was trained with max word length {}, the data has {}", mc.max_word_length,
         loader.max_word_length());
  ImageLatentTransformer model(mc);
  model->to(dev);
  auto optimizer = torch::optim::AdamW(param_groups(model, o));
  int64_t step = 0;
  double elapsed_before = 0;
  if (!o.resume.empty()) {
    load_model_tensors(model, o.resume + "/model.safetensors");
    torch::load(optimizer, o.resume + "/optimizer.pt");
    load_rng(o.resume + "/rng.pt");
    step = resume_state.at("step").get<int64_t>();
    elapsed_before = resume_state.value("elapsed", 0.0);
  }
  model->train();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  fs::create_directories(o.output);
  nlohmann::json config = {{"model", to_json(mc)},
                           {"data", {{"train", o.train}, {"validation", o.validation}, {"params", data_meta.at("params")}}},
                           {"render", data_meta.at("render")},
                           {"training",
                            {{"batch_size", o.batch_size}, {"grad_accum", o.grad_accum}, {"max_steps", o.max_steps},
                             {"lr", o.lr}, {"min_lr_ratio", o.min_lr_ratio}, {"weight_decay", o.weight_decay},
                             {"betas", {o.beta1, o.beta2}}, {"clip", o.clip}, {"warmup", o.warmup},
                             {"schedule", o.schedule}, {"seed", o.seed}, {"precision", o.precision}}},
                           {"parameters", params},
                           {"tool", "ilt-train"},
                           {"version", ILT_VERSION}};
  std::ofstream metrics(o.output + "/metrics.jsonl", std::ios::app);
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(o.output))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0 &&
        e.path().extension().string().empty())
      kept.push_back(e.path().string());
  std::sort(kept.begin(), kept.end());

  auto save = [&](int64_t at_step, double elapsed) {
    std::string dir = step_dir(o.output, at_step), tmp = dir + ".tmp";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    write_file_atomic(tmp + "/config.json", config.dump(2) + "\n");
    save_safetensors(tmp + "/model.safetensors", model_tensors(model), {{"format", "ilt"}, {"step", std::to_string(at_step)}});
    torch::save(optimizer, tmp + "/optimizer.pt");
    save_rng(tmp + "/rng.pt");
    nlohmann::json st = {{"step", at_step}, {"loader", loader.state().to_json()}, {"elapsed", elapsed}};
    write_file_atomic(tmp + "/trainer.json", st.dump(2) + "\n");
    commit_directory(tmp, dir);
    if (std::find(kept.begin(), kept.end(), dir) == kept.end()) kept.push_back(dir);
    while (int(kept.size()) > std::max(1, o.keep_last)) {
      fs::remove_all(kept.front());
      kept.erase(kept.begin());
    }
    write_file_atomic(o.output + "/latest", fs::path(dir).filename().string() + "\n");
  };

  fmt::print(stderr, "ilt-train: {} parameters, {} training examples, device {}, {} threads\n", human(double(params)),
             loader.num_examples(), o.device, torch::get_num_threads());
  const auto t_start = Clock::now();
  auto since = [&](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  double window_wait = 0, window_time = 0, window_flops = 0;
  int64_t window_words = 0, window_bytes = 0;
  Progress progress("ilt-train", uint64_t(o.max_steps), false);
  bool tty = o.progress && isatty(2);
  int status = 0;
  while (step < o.max_steps) {
    auto t_step = Clock::now();
    double lr = learning_rate(o, step);
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer.zero_grad();
    double loss_sum = 0, nats = 0, label_bytes = 0, targets = 0;
    for (int micro = 0; micro < o.grad_accum; ++micro) {
      auto t_wait = Clock::now();
      auto b = loader.next();
      window_wait += since(t_wait);
      Batch batch = to_device(*b, dev);
#if TORCH_VERSION_MAJOR >= 2
      if (bf16) {
        at::autocast::set_autocast_enabled(at::kCUDA, true);
        at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      }
#endif
      auto out = model->forward(batch);
#if TORCH_VERSION_MAJOR >= 2
      if (bf16) {
        at::autocast::set_autocast_enabled(at::kCUDA, false);
        at::autocast::clear_cache();
      }
#endif
      (out.loss / o.grad_accum).backward();
      loss_sum += out.loss.item<double>();
      nats += out.nats.item<double>();
      targets += double(out.target_bytes);
      label_bytes += double(b->label_bytes);
      window_words += b->words;
      window_bytes += b->label_bytes;
      window_flops += 3 * model->forward_flops(*b);
    }
    double loss = loss_sum / o.grad_accum;
    double grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      std::string last = kept.empty() ? std::string("none saved yet") : kept.back();
      fmt::print(stderr, "{}ilt-train: error: step {}: non-finite {} ({}); stopping. Last good checkpoint: {}\n",
                 tty ? "\n" : "", step + 1, std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? grad_norm : loss, last);
      status = 2;
      break;
    }
    optimizer.step();
    ++step;
    window_time += since(t_step);
    double elapsed = elapsed_before + since(t_start);
    if (step % o.log_every == 0 || step == o.max_steps) {
      nlohmann::json m = {{"step", step}, {"split", "train"}, {"loss", loss},
                          {"bpb", nats / kLn2 / std::max(1.0, label_bytes)}, {"lr", lr}, {"grad_norm", grad_norm},
                          {"words_per_s", window_words / window_time}, {"bytes_per_s", window_bytes / window_time},
                          {"flops_per_s", window_flops / window_time}, {"data_wait_fraction", window_wait / window_time},
                          {"elapsed", elapsed}};
      metrics << m.dump() << "\n" << std::flush;
      if (tty) {
        double eta = (o.max_steps - step) * window_time / std::max<int64_t>(1, o.log_every);
        fmt::print(stderr, "\rstep {}/{} loss {:.4f} bpb {:.3f} lr {:.2e} {:.0f} words/s eta {:.0f}s\033[K", step,
                   o.max_steps, loss, m["bpb"].get<double>(), lr, m["words_per_s"].get<double>(), eta);
      } else {
        fmt::print(stderr, "step {} loss {:.4f} bpb {:.3f} lr {:.2e} {:.0f} words/s\n", step, loss,
                   m["bpb"].get<double>(), lr, m["words_per_s"].get<double>());
      }
      window_wait = window_time = window_flops = 0;
      window_words = window_bytes = 0;
    }
    bool out_of_time = o.max_minutes > 0 && since(t_start) > o.max_minutes * 60;
    if (!o.validation.empty() && (step % o.eval_every == 0 || step == o.max_steps || out_of_time)) {
      auto r = evaluate(model, o.validation, o.batch_size, o.eval_batches, dev);
      nlohmann::json m = {{"step", step}, {"split", "validation"}, {"loss", r.loss}, {"bpb", r.bpb}, {"elapsed", elapsed}};
      metrics << m.dump() << "\n" << std::flush;
      fmt::print(stderr, "{}step {} validation loss {:.4f} bpb {:.3f}\n", tty ? "\n" : "", step, r.loss, r.bpb);
    }
    if (step % o.save_every == 0 || step == o.max_steps || out_of_time) save(step, elapsed);
    if (out_of_time) {
      fmt::print(stderr, "{}ilt-train: --max-minutes reached at step {}\n", tty ? "\n" : "", step);
      break;
    }
  }
  if (tty) fmt::print(stderr, "\n");
  if (status == 0) progress.finish(fmt::format("{} steps -> {}", step, o.output));
  return status;
}

}  // namespace ilt
