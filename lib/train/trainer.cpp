#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/ranges.h>

#include "common/cli.h"
#include "common/error.h"
#include "common/io.h"
#include "common/json_diff.h"
#include "common/json_error.h"
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

// Validation over the first max_batches batches (0: all), in shard order. The loader was
// opened (and every shard checked) at start-up; batches are built here, without its thread.
EvalResult evaluate(ImageLatentTransformer& model, const DataLoader& dl, size_t batch_size, int64_t max_batches,
                    const torch::Device& dev) {
  torch::NoGradGuard no_grad;
  model->eval();
  double nats = 0, targets = 0, label_bytes = 0;
  const uint64_t n = dl.num_examples();
  std::vector<uint64_t> ids;
  for (int64_t i = 0; max_batches <= 0 || i < max_batches; ++i) {
    uint64_t first = uint64_t(i) * batch_size;
    if (first >= n) break;
    ids.clear();
    for (uint64_t k = first; k < std::min<uint64_t>(n, first + batch_size); ++k) ids.push_back(k);
    Batch b = dl.build(ids);
    auto out = model->forward(to_device(b, dev));
    nats += out.nats.item<double>();
    targets += double(out.target_bytes);
    label_bytes += double(b.label_bytes);
  }
  model->train();
  return {nats / std::max(1.0, targets), nats / kLn2 / std::max(1.0, label_bytes), targets};
}

// LibTorch's own messages end in a C++ stack trace: keep the first line.
std::string torch_message(const c10::Error& e) { return first_line(e.what_without_backtrace()); }

void save_rng(const std::string& path) {
  std::vector<torch::Tensor> states{at::detail::getDefaultCPUGenerator().get_state()};
  try {
    torch::save(states, path);
  } catch (const c10::Error& e) {
    fail("{}: cannot write the RNG state: {}", path, torch_message(e));
  }
}
void require_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("{}: missing (an incomplete checkpoint?)", path);
}

void load_rng(const std::string& path) {
  require_file(path);
  std::vector<torch::Tensor> states;
  try {
    torch::load(states, path);
    if (states.empty()) fail("{}: no RNG state", path);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(states[0]);
  } catch (const c10::Error& e) {
    fail("{}: not a valid RNG state: {}", path, torch_message(e));
  }
}

void check_options(const TrainOptions& o) {
  if (o.output.empty()) fail("--output is required");
  if (o.train.empty()) fail("--train is required");
  if (o.batch_size < 1) fail("--batch-size must be at least 1");
  if (o.grad_accum < 1) fail("--grad-accum must be at least 1");
  if (o.max_steps < 1) fail("--max-steps must be at least 1");
  if (o.eval_every < 1) fail("--eval-every must be at least 1");
  if (o.save_every < 1) fail("--save-every must be at least 1");
  if (o.log_every < 1) fail("--log-every must be at least 1");
  if (o.eval_batches < 0) fail("--eval-batches must not be negative");
  if (o.keep_last < 1) fail("--keep-last must be at least 1");
  if (o.warmup < 0) fail("--warmup must not be negative");
  if (o.threads < 0) fail("--threads must not be negative");
  auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (!in(o.lr, 0, 1e300) || o.lr == 0) fail("--lr {} must be a positive number", o.lr);
  if (!in(o.min_lr_ratio, 0, 1)) fail("--min-lr-ratio {} must be in [0, 1]", o.min_lr_ratio);
  if (!in(o.weight_decay, 0, 1e9)) fail("--weight-decay {} must be a non-negative number", o.weight_decay);
  if (!in(o.beta1, 0, 1) || o.beta1 == 1) fail("--beta1 {} must be in [0, 1)", o.beta1);
  if (!in(o.beta2, 0, 1) || o.beta2 == 1) fail("--beta2 {} must be in [0, 1)", o.beta2);
  if (!in(o.clip, 0, 1e300) || o.clip == 0) fail("--clip {} must be a positive number", o.clip);
  if (!in(o.max_minutes, 0, 1e12)) fail("--max-minutes {} must be a non-negative number", o.max_minutes);
  if (o.schedule != "cosine" && o.schedule != "linear" && o.schedule != "constant")
    fail("unknown schedule '{}' (cosine, linear, constant)", o.schedule);
  if (o.precision != "fp32" && o.precision != "bf16") fail("--precision must be fp32 or bf16");
}

// What a checkpoint holds besides weights and optimizer state.
struct ResumePoint {
  int64_t step = 0;
  double elapsed = 0;
  LoaderState loader;
  ModelConfig model;
};

ResumePoint read_resume_point(const std::string& dir) {
  ResumePoint r;
  const std::string tj = dir + "/trainer.json", cj = dir + "/config.json";
  nlohmann::json st = read_json_file(tj);
  try {
    r.step = json_get<int64_t>(st, "step");
    r.elapsed = json_value(st, "elapsed", 0.0);
    const nlohmann::json& l = st.contains("loader") ? st["loader"] : nlohmann::json();
    r.loader.epoch = json_get<uint64_t>(l, "epoch", "/loader");
    r.loader.cursor = json_get<uint64_t>(l, "cursor", "/loader");
  } catch (const Error& e) {
    fail("{}: {}", tj, e.what());
  }
  if (r.step < 0) fail("{}: key /step: {} is negative", tj, r.step);
  if (!std::isfinite(r.elapsed) || r.elapsed < 0) fail("{}: key /elapsed: {} is not a duration", tj, r.elapsed);
  nlohmann::json config = read_json_file(cj);
  if (!config.is_object() || !config.contains("model")) fail("{}: no key /model (not an ilt checkpoint?)", cj);
  r.model = model_config_from_json(config["model"], cj);
  return r;
}

std::string step_dir(const std::string& out, int64_t step) { return fmt::format("{}/step-{:07d}", out, step); }

}  // namespace

int train(const TrainOptions& opt_in) {
  TrainOptions o = opt_in;
  check_options(o);
  set_cpu_threads(o.threads > 0 ? o.threads : default_threads());
  torch::manual_seed(o.seed);
  torch::Device dev = parse_device(o.device);
  bool bf16 = o.precision == "bf16";
  if (bf16 && !dev.is_cuda()) fail("--precision bf16 is for CUDA devices (autocast); use fp32 on CPU");

  // Every input is opened and checked before any work: a wrong path must not end a run
  // after hours of training.
  ResumePoint resume;
  if (!o.resume.empty()) resume = read_resume_point(o.resume);
  DataLoader loader(o.train, LoaderOptions{o.batch_size, o.seed, true, true, 4}, resume.loader);
  const nlohmann::json& data_meta = loader.meta();
  std::unique_ptr<DataLoader> validation;
  if (!o.validation.empty()) {
    validation = std::make_unique<DataLoader>(o.validation, LoaderOptions{o.batch_size, 0, false, false, 0});
    if (validation->max_word_length() != loader.max_word_length())
      fail("{}: packed with max word length {}, the training data ({}) with {}", o.validation[0],
           validation->max_word_length(), o.train[0], loader.max_word_length());
    if (validation->meta().value("render", nlohmann::json()) != data_meta.value("render", nlohmann::json()))
      fail("{}: its images were rendered with other settings than the training data's ({})", o.validation[0],
           o.train[0]);
  }

  // The model's geometry comes from the packed data.
  ModelConfig mc;
  if (!o.resume.empty()) {
    mc = resume.model;
    if (o.config_given) {
      ModelConfig asked = model_config(o.config);
      asked.max_word_length = mc.max_word_length;
      asked.image_height = mc.image_height;
      asked.patch_width = mc.patch_width;
      asked.max_patches = mc.max_patches;
      auto diff = differing_keys(to_json(asked), to_json(mc));
      if (!diff.empty())
        fail("--config {} is not the model of {}/config.json (differ: {}); leave --config out to resume that model",
             o.config, o.resume, fmt::join(diff, ", "));
    }
  } else {
    mc = model_config(o.config);
    try {
      mc.max_word_length = int(loader.max_word_length());
      mc.image_height = data_meta.at("render").at("height").get<int>();
      mc.patch_width = data_meta.at("render").at("patch_width").get<int>();
      mc.max_patches = data_meta.at("render").at("max_width").get<int>() / mc.patch_width;
    } catch (const nlohmann::json::exception& e) {
      fail_json(o.train[0] + " (header)", e);
    }
    mc.validate();
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
    const std::string opt_file = o.resume + "/optimizer.pt";
    require_file(opt_file);
    try {
      torch::load(optimizer, opt_file);
    } catch (const c10::Error& e) {
      fail("{}: not a valid optimizer state: {}", opt_file, torch_message(e));
    }
    load_rng(o.resume + "/rng.pt");
    step = resume.step;
    elapsed_before = resume.elapsed;
  }
  model->train();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  std::error_code ec;
  fs::create_directories(o.output, ec);
  if (ec || !fs::is_directory(o.output)) fail("{}: cannot create the run directory: {}", o.output, ec ? ec.message() : "a file is in the way");
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
  // metrics.jsonl is opened at its first line, so a run that fails before leaves none.
  const std::string metrics_path = o.output + "/metrics.jsonl";
  std::ofstream metrics;
  auto log_metrics = [&](const nlohmann::json& m) {
    if (!metrics.is_open()) {
      metrics.open(metrics_path, std::ios::app);
      if (!metrics) fail("{}: cannot open: {}", metrics_path, std::strerror(errno));
    }
    metrics << m.dump() << "\n" << std::flush;
    if (!metrics) fail("{}: write failed: {}", metrics_path, std::strerror(errno));
  };
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(o.output))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0 &&
        e.path().extension().string().empty())
      kept.push_back(e.path().string());
  std::sort(kept.begin(), kept.end());

  // A checkpoint is written into DIR.tmp, which is removed if anything fails (or a signal
  // kills the run), then renamed to DIR; the previous complete checkpoint is never touched.
  auto save = [&](int64_t at_step, double elapsed) {
    std::string dir = step_dir(o.output, at_step);
    TemporaryDirectory tmp(dir + ".tmp");
    write_file_atomic(tmp.path() + "/config.json", config.dump(2) + "\n");
    save_safetensors(tmp.path() + "/model.safetensors", model_tensors(model),
                     {{"format", "ilt"}, {"step", std::to_string(at_step)}});
    try {
      torch::save(optimizer, tmp.path() + "/optimizer.pt");
    } catch (const c10::Error& e) {
      fail("{}/optimizer.pt: cannot write: {}", tmp.path(), torch_message(e));
    }
    save_rng(tmp.path() + "/rng.pt");
    nlohmann::json st = {{"step", at_step}, {"loader", loader.state().to_json()}, {"elapsed", elapsed}};
    write_file_atomic(tmp.path() + "/trainer.json", st.dump(2) + "\n");
    sync_directory(tmp.path());
    commit_directory(tmp.path(), dir);
    tmp.release();
    if (std::find(kept.begin(), kept.end(), dir) == kept.end()) kept.push_back(dir);
    while (int(kept.size()) > std::max(1, o.keep_last)) {
      fs::remove_all(kept.front());
      kept.erase(kept.begin());
    }
    write_file_atomic(o.output + "/latest", fs::path(dir).filename().string() + "\n");
    sync_directory(o.output);
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
  // SIGINT/SIGTERM (Ctrl-C, Slurm's preemption) end the run at the end of the step, with a
  // checkpoint; a second signal aborts at once.
  stop_gracefully_on_signals();
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
      log_metrics(m);
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
    const int stop_sig = stop_signal();
    if (validation && (step % o.eval_every == 0 || step == o.max_steps || out_of_time)) {
      auto r = evaluate(model, *validation, o.batch_size, o.eval_batches, dev);
      nlohmann::json m = {{"step", step}, {"split", "validation"}, {"loss", r.loss}, {"bpb", r.bpb}, {"elapsed", elapsed}};
      log_metrics(m);
      fmt::print(stderr, "{}step {} validation loss {:.4f} bpb {:.3f}\n", tty ? "\n" : "", step, r.loss, r.bpb);
    }
    if (step % o.save_every == 0 || step == o.max_steps || out_of_time || stop_sig) save(step, elapsed);
    if (stop_sig) {
      fmt::print(stderr, "{}ilt-train: stopped by signal {} at step {}; checkpoint {}\n", tty ? "\n" : "", stop_sig, step,
                 step_dir(o.output, step));
      status = 128 + stop_sig;
      break;
    }
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
