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
#include "parallel/data_parallel.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"


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
// opened (and every shard checked) at start-up. A bounded validation (max_batches > 0) keeps
// its batches after the first evaluation (they are the same every time); the summed loss
// stays on the device until the end (one sync per evaluation, not one per batch).
struct Validation {
  std::unique_ptr<DataLoader> loader;
  std::vector<Batch> cached;
};

EvalResult evaluate(ImageLatentTransformer& model, Validation& val, size_t batch_size, int64_t max_batches,
                    const torch::Device& dev, DataParallel& dp) {
  torch::NoGradGuard no_grad;
  model->eval();
  torch::Tensor nats = torch::zeros({}, torch::dtype(torch::kFloat).device(dev));
  double targets = 0, label_bytes = 0;
  const DataLoader& dl = *val.loader;
  const uint64_t n = dl.num_examples();
  const bool keep = max_batches > 0 && val.cached.empty();
  std::vector<uint64_t> ids;
  size_t mine = 0;  // this rank's batches so far: batch i is rank (i mod world)'s
  for (int64_t i = dp.rank(); max_batches <= 0 || i < max_batches; i += dp.world(), ++mine) {
    const Batch* b = nullptr;
    Batch built;
    if (max_batches > 0 && mine < val.cached.size()) {
      b = &val.cached[mine];
    } else {
      uint64_t first = uint64_t(i) * batch_size;
      if (first >= n) break;
      ids.clear();
      for (uint64_t k = first; k < std::min<uint64_t>(n, first + batch_size); ++k) ids.push_back(k);
      built = dl.build(ids);
      if (keep) {
        val.cached.push_back(std::move(built));
        b = &val.cached.back();
      } else {
        b = &built;
      }
    }
    auto out = model->forward(to_device(*b, dev));
    nats += out.nats.detach().to(torch::kFloat);
    targets += double(out.target_bytes);
    label_bytes += double(b->label_bytes);
  }
  model->train();
  auto sums = torch::tensor({nats.item<double>(), targets, label_bytes}, torch::kDouble);
  dp.allreduce(sums);  // every rank's batches (Gloo: host values)
  const double total = sums[0].item<double>();
  targets = sums[1].item<double>();
  label_bytes = sums[2].item<double>();
  return {total / std::max(1.0, targets), total / kLn2 / std::max(1.0, label_bytes), targets};
}

// LibTorch's own messages end in a C++ stack trace: keep the first line.
std::string torch_message(const c10::Error& e) { return first_line(e.what_without_backtrace()); }

// The CPU generator's state as bytes (sent between ranks) and back.
std::string rng_bytes() {
  auto st = at::detail::getDefaultCPUGenerator().get_state().contiguous();
  return std::string(reinterpret_cast<const char*>(st.data_ptr<uint8_t>()), size_t(st.numel()));
}
torch::Tensor rng_tensor(const std::string& bytes) {
  auto t = torch::empty({int64_t(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

void save_rng(const std::string& path, const torch::Tensor& state = at::detail::getDefaultCPUGenerator().get_state()) {
  std::vector<torch::Tensor> states{state};
  try {
    torch::save(states, path);
  } catch (const c10::Error& e) {
    fail("{}: cannot write the RNG state: {}", path, torch_message(e));
  }
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
  if (o.train.empty() && o.resume.empty()) fail("--train is required (or --resume, which names its data)");
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
  std::string dir;       // the checkpoint directory
  int format_version = 1;
  int64_t step = 0;
  double elapsed = 0;
  LoaderState loader;
  ModelConfig model;
  nlohmann::json config;  // its config.json
};

ResumePoint read_resume_point(const std::string& dir) {
  ResumePoint r;
  r.dir = dir;
  const std::string tj = dir + "/trainer.json", cj = dir + "/config.json";
  nlohmann::json st = read_json_file(tj);
  try {
    r.format_version = json_value(st, "format_version", 1);
    r.step = json_get<int64_t>(st, "step");
    r.elapsed = json_value(st, "elapsed", 0.0);
    const nlohmann::json& l = st.contains("loader") ? st["loader"] : nlohmann::json();
    r.loader.epoch = json_get<uint64_t>(l, "epoch", "/loader");
    r.loader.cursor = json_get<uint64_t>(l, "cursor", "/loader");
  } catch (const Error& e) {
    fail("{}: {}", tj, e.what());
  }
  if (r.format_version < 1 || r.format_version > kTrainerFormatVersion)
    fail("{}: key /format_version: {} is not one this ilt reads (1 to {}); written by a newer ilt?", tj,
         r.format_version, kTrainerFormatVersion);
  if (r.step < 0) fail("{}: key /step: {} is negative", tj, r.step);
  if (!std::isfinite(r.elapsed) || r.elapsed < 0) fail("{}: key /elapsed: {} is not a duration", tj, r.elapsed);
  r.config = read_json_file(cj);
  if (!r.config.is_object() || !r.config.contains("model")) fail("{}: no key /model (not an ilt checkpoint?)", cj);
  r.model = model_config_from_json(r.config["model"], cj, 1);  // no format_version: the first
  return r;
}

// The settings that shape a run's trajectory, as config.json's "training" records them. On
// resume they come from the checkpoint; `free` ones may change without --override.
struct Setting {
  const char* key;
  std::vector<const char*> flags;
  bool free;
  std::function<nlohmann::json(const TrainOptions&)> get;
  std::function<void(TrainOptions&, const nlohmann::json&)> set;
};

const std::vector<Setting>& training_settings() {
  using J = nlohmann::json;
  using O = TrainOptions;
  static const std::vector<Setting> s = {
      {"batch_size", {"batch-size"}, false, [](const O& o) { return J(o.batch_size); },
       [](O& o, const J& v) { o.batch_size = v.get<size_t>(); }},
      {"grad_accum", {"grad-accum"}, false, [](const O& o) { return J(o.grad_accum); },
       [](O& o, const J& v) { o.grad_accum = v.get<int>(); }},
      {"max_steps", {"max-steps"}, true, [](const O& o) { return J(o.max_steps); },
       [](O& o, const J& v) { o.max_steps = v.get<int64_t>(); }},
      {"lr", {"lr"}, false, [](const O& o) { return J(o.lr); }, [](O& o, const J& v) { o.lr = v.get<double>(); }},
      {"min_lr_ratio", {"min-lr-ratio"}, false, [](const O& o) { return J(o.min_lr_ratio); },
       [](O& o, const J& v) { o.min_lr_ratio = v.get<double>(); }},
      {"weight_decay", {"weight-decay"}, false, [](const O& o) { return J(o.weight_decay); },
       [](O& o, const J& v) { o.weight_decay = v.get<double>(); }},
      {"betas", {"beta1", "beta2"}, false, [](const O& o) { return J{o.beta1, o.beta2}; },
       [](O& o, const J& v) {
         o.beta1 = v.at(0).get<double>();
         o.beta2 = v.at(1).get<double>();
       }},
      {"clip", {"clip"}, false, [](const O& o) { return J(o.clip); }, [](O& o, const J& v) { o.clip = v.get<double>(); }},
      {"warmup", {"warmup"}, false, [](const O& o) { return J(o.warmup); },
       [](O& o, const J& v) { o.warmup = v.get<int64_t>(); }},
      {"schedule", {"schedule"}, false, [](const O& o) { return J(o.schedule); },
       [](O& o, const J& v) { o.schedule = v.get<std::string>(); }},
      {"seed", {"seed"}, false, [](const O& o) { return J(o.seed); }, [](O& o, const J& v) { o.seed = v.get<uint64_t>(); }},
      {"shuffle_buffer", {"shuffle-buffer"}, false, [](const O& o) { return J(o.shuffle_buffer); },
       [](O& o, const J& v) { o.shuffle_buffer = v.get<size_t>(); }},
      {"precision", {"precision"}, true, [](const O& o) { return J(o.precision); },
       [](O& o, const J& v) { o.precision = v.get<std::string>(); }},
  };
  return s;
}

nlohmann::json training_json(const TrainOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  for (const Setting& s : training_settings()) j[s.key] = s.get(o);
  return j;
}

std::vector<std::string> absolute_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    std::error_code ec;
    auto a = fs::weakly_canonical(fs::absolute(p, ec), ec);
    out.push_back(ec ? p : a.string());
  }
  return out;
}

bool same_files(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    std::error_code ec1, ec2;
    auto x = fs::weakly_canonical(a[i], ec1), y = fs::weakly_canonical(b[i], ec2);
    if (ec1 || ec2 ? a[i] != b[i] : x != y) return false;
  }
  return true;
}

// Takes the checkpoint's training settings and data into `o` where no flag was given; checks
// given flags against them. Returns {key: [checkpoint's, now]} for every change; sets
// *restart_data when the training data changed (its order cannot continue).
nlohmann::json apply_checkpoint_settings(TrainOptions* o, const ResumePoint& r, bool* restart_data) {
  const std::string cj = r.dir + "/config.json";
  nlohmann::json changed = nlohmann::json::object();
  const nlohmann::json saved = r.config.value("training", nlohmann::json::object());
  auto given = [&](const Setting& s) {
    return std::any_of(s.flags.begin(), s.flags.end(), [&](const char* f) { return o->given.count(f) > 0; });
  };
  for (const Setting& s : training_settings()) {
    if (!saved.is_object() || !saved.contains(s.key)) continue;  // an older checkpoint: flag or default
    const nlohmann::json& before = saved[s.key];
    if (!given(s)) {
      try {
        s.set(*o, before);
      } catch (const nlohmann::json::exception& e) {
        fail_json(fmt::format("{}: key /training/{}", cj, s.key), e);
      }
      continue;
    }
    nlohmann::json now = s.get(*o);
    if (now == before) continue;
    if (!s.free && !o->override_settings)
      fail("--{} {} differs from the checkpoint's {} ({}); leave it out to continue as saved, or add --override to "
           "change it (recorded in metrics.jsonl)",
           s.flags.size() == 1 ? s.flags[0] : "beta1/--beta2", now.dump(), before.dump(), cj);
    changed[s.key] = {before, now};
    // Another seed or shuffle window, another order.
    if (std::string(s.key) == "seed" || std::string(s.key) == "shuffle_buffer") *restart_data = true;
  }
  const nlohmann::json& data = r.config.contains("data") ? r.config["data"] : nlohmann::json::object();
  // The shards as given, and as absolute paths (so that a resume from another working
  // directory finds them; checkpoints before train_paths have the given ones only).
  std::vector<std::string> saved_train, saved_validation;
  try {
    saved_train = json_value(data, "train_paths", json_value(data, "train", saved_train, "/data"), "/data");
    saved_validation =
        json_value(data, "validation_paths", json_value(data, "validation", saved_validation, "/data"), "/data");
  } catch (const Error& e) {
    fail("{}: {}", cj, e.what());
  }
  if (o->train.empty()) {
    if (saved_train.empty()) fail("{}: names no training data; give --train", cj);
    o->train = saved_train;
  } else if (!saved_train.empty() && !same_files(o->train, saved_train)) {
    if (!o->override_settings)
      fail("--train {} is not the checkpoint's training data ({}, in {}); its order cannot continue on other data: "
           "leave --train out, or add --override to start the new data from its beginning",
           fmt::join(o->train, " "), fmt::join(saved_train, " "), cj);
    changed["train"] = {saved_train, o->train};
    *restart_data = true;
  }
  if (o->validation.empty() && o->given.count("validation") == 0) o->validation = saved_validation;
  return changed;
}

// metrics.jsonl lines at or before `step` (later ones belong to a history the resume
// abandons; a line cut short by a crash is dropped too).
// A resume line at `step` itself goes too: the resume about to be logged replaces it.
std::string metrics_until(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return {};
  std::string all = read_all(path), out;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) break;  // no newline: cut short
    std::string_view line(all.data() + start, end - start);
    start = end + 1;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    const int64_t at = j["step"].get<int64_t>();
    if (at < step || (at == step && j.value("split", "") != "resume")) out.append(line).push_back('\n');
  }
  return out;
}

}  // namespace

int train(const TrainOptions& opt_in) {
  TrainOptions o = opt_in;
  check_options(o);

  // Every input is opened and checked before any work: a wrong path must not end a run
  // after hours of training. Nothing in the output changes before all of it is read.
  ResumePoint resume;
  nlohmann::json changed = nlohmann::json::object();
  bool restart_data = false;
  if (o.resume == "auto")  // a requeued Slurm job or restarted torchrun: the run's latest checkpoint, if any
    o.resume = list_checkpoints(o.output).empty() ? std::string() : o.output;
  if (!o.resume.empty()) {
    o.resume = resolve_checkpoint(o.resume);
    resume = read_resume_point(o.resume);
    changed = apply_checkpoint_settings(&o, resume, &restart_data);
    check_options(o);
    if (o.max_steps <= resume.step)
      fail("--max-steps {}: {} is at step {} already; raise --max-steps to train further", o.max_steps, o.resume,
           resume.step);
  }
  // Data parallelism: this process's rank from torchrun's or Slurm's environment (or the
  // --nproc-per-node launcher's); one rank without. Ranks on one machine share its cores.
  const DistEnv denv = dist_env();
  set_cpu_threads(o.threads > 0 ? o.threads : std::max(1, default_threads() / std::max(1, denv.local_world)));
  torch::manual_seed(o.seed);
  torch::Device dev = parse_device(o.device);
  if (denv.distributed() && dev.is_cuda() && !dev.has_index()) dev = torch::Device(torch::kCUDA, int8_t(denv.local_rank));
  check_precision(o.precision, dev);
  if (dev.is_cuda()) set_tf32(o.tf32);
  // Joined before anything is written: a rank that fails from here on ends the others' next
  // collective call at once (its connections close) instead of leaving them waiting.
  DataParallel dp(denv, dev, std::chrono::seconds(int64_t(o.dist_timeout)));
  const bool lead = dp.rank() == 0;  // rank 0 writes checkpoints and metrics, and speaks

  LoaderOptions train_loading{o.batch_size, o.seed, true, true, 4};
  train_loading.shuffle_buffer = o.shuffle_buffer;
  train_loading.vocab_cache_bytes = o.vocab_cache_mb << 20;
  train_loading.pin_memory = dev.is_cuda();  // batches copied to the GPU without the host waiting
  train_loading.part = size_t(dp.rank());      // each rank builds its part of every global batch
  train_loading.parts = size_t(dp.world());
  auto loader = std::make_unique<DataLoader>(o.train, train_loading, restart_data ? LoaderState{} : resume.loader);
  if (!o.resume.empty() && !restart_data) {
    // Same files, other contents (re-packed)? The saved position would mean other examples.
    const nlohmann::json saved = resume.config.value("data", nlohmann::json::object()).value("train_examples", nlohmann::json());
    if (saved.is_number_unsigned() && saved.get<uint64_t>() != loader->num_examples()) {
      if (!o.override_settings)
        fail("{}: {} training examples, the checkpoint's data had {} (packed again?); its order cannot continue: "
             "add --override to start the data from its beginning",
             o.train[0], loader->num_examples(), saved.get<uint64_t>());
      changed["train_examples"] = {saved, loader->num_examples()};
      loader = std::make_unique<DataLoader>(o.train, train_loading, LoaderState{});
    }
  }
  const nlohmann::json& data_meta = loader->meta();
  std::unique_ptr<Validation> validation;
  if (!o.validation.empty()) {
    validation = std::make_unique<Validation>();
    LoaderOptions vo{o.batch_size, 0, false, false, 0};
    vo.vocab_cache_bytes = std::max<size_t>(1, o.vocab_cache_mb / 4) << 20;
    validation->loader = std::make_unique<DataLoader>(o.validation, vo);
    if (validation->loader->max_word_length() != loader->max_word_length())
      fail("{}: packed with max word length {}, the training data ({}) with {}", o.validation[0],
           validation->loader->max_word_length(), o.train[0], loader->max_word_length());
    if (validation->loader->meta().value("render", nlohmann::json()) != data_meta.value("render", nlohmann::json()))
      fail("{}: its images were rendered with other settings than the training data's ({})", o.validation[0],
           o.train[0]);
  }

  // The model's geometry comes from the packed data.
  ModelConfig mc;
  if (!o.resume.empty()) {
    mc = resume.model;
    if (o.given.count("config")) {
      ModelConfig asked = model_config(o.config);
      asked.max_word_length = mc.max_word_length;
      asked.image_height = mc.image_height;
      asked.patch_width = mc.patch_width;
      asked.max_patches = mc.max_patches;
      asked.format_version = mc.format_version;
      auto diff = differing_keys(to_json(asked), to_json(mc));
      if (!diff.empty())
        fail("--config {} is not the model of {}/config.json (differ: {}); leave --config out to resume that model",
             o.config, o.resume, fmt::join(diff, ", "));
    }
  } else {
    mc = model_config(o.config);
    try {
      mc.max_word_length = int(loader->max_word_length());
      mc.image_height = data_meta.at("render").at("height").get<int>();
      mc.patch_width = data_meta.at("render").at("patch_width").get<int>();
      mc.max_patches = data_meta.at("render").at("max_width").get<int>() / mc.patch_width;
    } catch (const nlohmann::json::exception& e) {
      fail_json(o.train[0] + " (header)", e);
    }
    mc.validate();
  }
  if (mc.max_word_length != loader->max_word_length())
    fail("the checkpoint was trained with max word length {}, the data has {}", mc.max_word_length,
         loader->max_word_length());
  ImageLatentTransformer model(mc);
  model->to(dev);
  auto optimizer = torch::optim::AdamW(param_groups(model, o));
  int64_t step = 0;
  double elapsed_before = 0;
  if (!o.resume.empty()) {
    load_model_tensors(model, o.resume + "/model.safetensors");
    load_optimizer(o.resume, resume.format_version, optimizer, model);
    // Each rank continues its own random stream (dropout); a checkpoint of fewer ranks has
    // none for this one: it starts a new stream.
    const std::string rng = lead ? o.resume + "/rng.pt" : fmt::format("{}/rng-rank{}.pt", o.resume, dp.rank());
    std::error_code rng_ec;
    if (lead || fs::exists(rng, rng_ec)) load_rng(rng);
    else torch::manual_seed(o.seed + 7919 * uint64_t(dp.rank()) + uint64_t(resume.step));
    step = resume.step;
    elapsed_before = resume.elapsed;
  }
  if (dp.active()) {
    // Every rank starts from rank 0's weights (initialised or loaded); then each draws its own
    // random numbers (dropout): rank 0's stream is the single-process one.
    std::vector<torch::Tensor> state = model->parameters();
    for (const auto& b : model->buffers()) state.push_back(b);
    dp.broadcast(state);
    if (o.resume.empty() && !lead) torch::manual_seed(o.seed + 7919 * uint64_t(dp.rank()));
    dp.watch_gradients(model->parameters(), o.bucket_mb);
  }
  // Skips a non-finite step on the device; the trainer reads the outcome at sync points only.
  SkippableAdamW stepper(optimizer);
  model->train();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  // The run directory. A new run needs one without a run in it; a resumed run continues its
  // own directory (metrics cut back to the checkpoint) or starts a new one with the history
  // up to the checkpoint.
  const std::string metrics_path = o.output + "/metrics.jsonl";
  std::error_code ec;
  const fs::path ckpt_run = o.resume.empty() ? fs::path() : fs::path(o.resume).parent_path().empty() ? fs::path(".") : fs::path(o.resume).parent_path();
  const bool same_run = !o.resume.empty() && fs::exists(o.output, ec) && fs::equivalent(ckpt_run, o.output, ec);
  std::vector<std::string> kept;  // this run's checkpoints, oldest first
  nlohmann::json abandoned = nlohmann::json::array();
  if (lead) {  // ---- the run directory is rank 0's
  if (!same_run && fs::is_directory(o.output, ec) &&
      (fs::exists(metrics_path, ec) || !list_checkpoints(o.output).empty()))
    fail("{}: already holds a training run (metrics.jsonl or step-N); continue it with --resume {}, or choose another "
         "--output",
         o.output, o.output);
  fs::create_directories(o.output, ec);
  if (ec || !fs::is_directory(o.output)) fail("{}: cannot create the run directory: {}", o.output, ec ? ec.message() : "a file is in the way");
  if (same_run) {
    // Checkpoints after the resumed step belong to the history this resume abandons: renamed
    // (kept, never taken for this run's), as metrics.jsonl is cut back below.
    for (const auto& [n, dir] : list_checkpoints(o.output)) {
      if (n <= step) {
        kept.push_back(dir);
        continue;
      }
      std::string to = dir + ".abandoned";
      for (int k = 2; fs::exists(to, ec); ++k) to = fmt::format("{}.abandoned-{}", dir, k);
      fs::rename(dir, to, ec);
      if (ec) fail("{}: cannot rename to {}: {}", dir, to, ec.message());
      abandoned.push_back(fs::path(to).filename().string());
      fmt::print(stderr, "ilt-train: {} is after the resumed step {}: renamed {}\n", dir, step, to);
    }
    write_file_atomic(o.output + "/latest", fs::path(o.resume).filename().string() + "\n");
    sync_directory(o.output);
  }
  if (!o.resume.empty())  // no step twice: the history up to the checkpoint, nothing after
    write_file_atomic(metrics_path, metrics_until((ckpt_run / "metrics.jsonl").string(), step));
  }  // lead

  nlohmann::json config = {{"model", to_json(mc)},
                           {"data",
                            {{"train", o.train},
                             {"validation", o.validation},
                             {"train_paths", absolute_paths(o.train)},
                             {"validation_paths", absolute_paths(o.validation)},
                             {"train_examples", loader->num_examples()},
                             {"params", data_meta.at("params")}}},
                           {"render", data_meta.at("render")},
                           {"training", training_json(o)},
                           {"parameters", params},
                           {"ranks", dp.world()},
                           {"tool", "ilt-train"},
                           {"version", ILT_VERSION}};
  // metrics.jsonl is opened at its first line, so a new run that fails before leaves none
  // (a resumed one has it written above, with the history up to the checkpoint).
  std::ofstream metrics;
  auto log_metrics = [&](const nlohmann::json& m) {
    if (!lead) return;
    if (!metrics.is_open()) {
      metrics.open(metrics_path, std::ios::app);
      if (!metrics) fail("{}: cannot open: {}", metrics_path, std::strerror(errno));
    }
    metrics << m.dump() << "\n" << std::flush;
    if (!metrics) fail("{}: write failed: {}", metrics_path, std::strerror(errno));
  };
  if (!o.resume.empty() && lead) {
    nlohmann::json line = {{"step", step}, {"split", "resume"}, {"checkpoint", o.resume}, {"changed", changed}};
    if (!abandoned.empty()) line["abandoned"] = abandoned;
    log_metrics(line);
    for (auto& [k, v] : changed.items())
      fmt::print(stderr, "ilt-train: {}: {} -> {} (recorded in {})\n", k, v[0].dump(), v[1].dump(), metrics_path);
  }

  // A checkpoint is written into DIR.tmp, which is removed if anything fails (or a signal
  // kills the run), then renamed to DIR; the previous complete checkpoint is never touched.
  auto save = [&](int64_t at_step, double elapsed) {
    // Every rank's random state goes with the checkpoint (rank r > 0: rng-rank<r>.pt).
    std::vector<std::string> rngs = dp.gather_to_zero(fmt::format("rng/{}", at_step), rng_bytes());
    if (!lead) return;
    std::string dir = o.output + "/" + step_dir_name(at_step);
    TemporaryDirectory tmp(dir + ".tmp");
    write_file_atomic(tmp.path() + "/config.json", config.dump(2) + "\n");
    save_safetensors(tmp.path() + "/model.safetensors", model_tensors(model),
                     {{"format", "ilt"}, {"step", std::to_string(at_step)}});
    stepper.sync_state();
    save_optimizer_state(tmp.path() + "/optimizer.safetensors", optimizer, model);
    save_rng(tmp.path() + "/rng.pt");
    for (size_t r = 1; r < rngs.size(); ++r) save_rng(fmt::format("{}/rng-rank{}.pt", tmp.path(), r), rng_tensor(rngs[r]));
    nlohmann::json st = {{"format_version", kTrainerFormatVersion},
                         {"step", at_step},
                         {"loader", loader->state().to_json()},
                         {"elapsed", elapsed}};
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

  if (lead)
    fmt::print(stderr, "ilt-train: {} parameters, {} training examples, device {}, {} threads{}\n", human(double(params)),
               loader->num_examples(), o.device, torch::get_num_threads(),
               dp.active() ? fmt::format(" per rank, {} ranks ({}), {} examples per rank per micro-batch", dp.world(),
                                         denv.source, double(o.batch_size) / dp.world())
                           : std::string());
  const auto t_start = Clock::now();
  auto since = [&](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  double window_wait = 0, window_time = 0, window_flops = 0, window_model_flops = 0;
  int64_t window_words = 0, window_bytes = 0;
  Progress progress("ilt-train", uint64_t(o.max_steps), false);
  bool tty = lead && o.progress && isatty(2);
  int status = 0;
  // SIGINT/SIGTERM (Ctrl-C, Slurm's preemption) end the run at the end of the step, with a
  // checkpoint; a second signal aborts at once.
  stop_gracefully_on_signals();
  torch::Tensor first_bad = torch::full({}, -1, torch::dtype(torch::kLong).device(dev));  // first non-finite step
  while (step < o.max_steps) {
    auto t_step = Clock::now();
    double lr = learning_rate(o, step);
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer.zero_grad();
    // The step's loss is the mean over all its target bytes, whatever micro-batch they are in:
    // each micro-batch's summed nats are backpropagated, the gradients divided once at the end
    // (data-parallel ranks add theirs before that division). The loss, the gradient norm
    // and whether the step was finite stay on the device until a sync point (below).
    torch::Tensor nats = torch::zeros({}, torch::dtype(torch::kFloat).device(dev));
    torch::Tensor ae_nats = torch::zeros({}, torch::dtype(torch::kFloat).device(dev));  // autoencoding loss
    double ae_targets = 0;
    double label_bytes = 0, targets = 0, step_words = 0, step_bytes = 0, step_flops = 0, step_model_flops = 0;
    for (int micro = 0; micro < o.grad_accum; ++micro) {
      auto t_wait = Clock::now();
      auto b = loader->next();
      window_wait += since(t_wait);
      Batch batch = to_device(*b, dev);
      ForwardOutput out;
      {
        Autocast autocast(o.precision, dev);  // the forward pass only; backward follows its dtypes
        out = model->forward(batch);
      }
      // The last micro-batch's backward pass all-reduces gradient buckets as they fill.
      if (micro == o.grad_accum - 1) dp.arm_gradients();
      if (auto objective = training_nats(out, model->config); objective.defined()) objective.backward();
      if (out.autoencode_nats.defined()) {
        ae_nats = ae_nats + out.autoencode_nats.detach().to(torch::kFloat);
        ae_targets += double(out.autoencode_targets);
      }
      nats = nats + out.nats.detach().to(torch::kFloat);
      targets += double(out.target_bytes);
      label_bytes += double(b->label_bytes);
      step_words += double(b->words);
      step_bytes += double(b->label_bytes);
      step_flops += 3 * model->forward_flops(*b, false, /*training=*/true);
      step_model_flops += 3 * model->forward_flops(*b, /*every_occurrence=*/true, /*training=*/true);
    }
    if (dp.active()) {
      // Gradients and loss summed over ranks; counts too (host values, over Gloo), so that the
      // division below is by the global number of target bytes: the step equals one process
      // taking the whole batch. A rank's non-finite loss makes the sum non-finite: every rank
      // then skips the step alike.
      dp.reduce_gradients();
      dp.allreduce(nats);
      if (model->config.autoencode > 0) dp.allreduce(ae_nats);
      auto counts = torch::tensor({targets, label_bytes, step_words, step_bytes, step_flops, step_model_flops, ae_targets},
                                  torch::kDouble);
      dp.allreduce(counts);
      ae_targets = counts[6].item<double>();
      targets = counts[0].item<double>();
      label_bytes = counts[1].item<double>();
      step_words = counts[2].item<double>();
      step_bytes = counts[3].item<double>();
      step_flops = counts[4].item<double>();
      step_model_flops = counts[5].item<double>();
    }
    window_words += int64_t(step_words);
    window_bytes += int64_t(step_bytes);
    window_flops += step_flops;
    window_model_flops += step_model_flops;
    if (targets > 0) {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters())
        if (p.grad().defined()) p.grad().div_(targets);
    }
    torch::Tensor grad_norm = clip_grad_norm(model->parameters(), o.clip);
    // A non-finite loss or gradient norm skips the step on the device (weights and moments
    // untouched); the first such step is remembered and reported at the next sync point.
    auto found_inf = (nats.isfinite() & grad_norm.isfinite()).logical_not();
    first_bad = torch::where(found_inf & first_bad.lt(0), torch::full_like(first_bad, step + 1), first_bad);
    stepper.step(found_inf.to(torch::kFloat));
    ++step;
    window_time += since(t_step);
    double elapsed = elapsed_before + since(t_start);
    bool out_of_time = o.max_minutes > 0 && since(t_start) > o.max_minutes * 60;
    int stop_sig = stop_signal();
    if (dp.active()) {  // decided together: a rank that stopped alone would leave the others waiting
      const std::vector<int64_t> agreed = dp.max({out_of_time ? 1 : 0, stop_sig});
      out_of_time = agreed[0] != 0;
      stop_sig = int(agreed[1]);
    }
    // The last step of a run is always logged, also one cut short by --max-minutes or a signal.
    const bool log_now = step % o.log_every == 0 || step == o.max_steps || out_of_time || stop_sig;
    const bool eval_now = validation && (step % o.eval_every == 0 || step == o.max_steps || out_of_time);
    const bool save_now = step % o.save_every == 0 || step == o.max_steps || out_of_time || stop_sig;
    if (log_now || eval_now || save_now) {  // a sync point: nothing is logged or saved after a bad step
      const int64_t bad = first_bad.item<int64_t>();
      if (bad >= 0) {
        std::string last = kept.empty() ? std::string("none saved yet") : kept.back();
        if (lead)
        fmt::print(stderr,
                   "{}ilt-train: error: step {}: non-finite loss or gradient norm (the step was skipped); stopping at "
                   "step {}. Last good checkpoint: {}\n",
                   tty ? "\n" : "", bad, step, last);
        status = 2;
        break;
      }
    }
    if (log_now) {
      const double loss = nats.item<double>() / std::max(1.0, targets);
      nlohmann::json m = {{"step", step}, {"split", "train"}, {"loss", loss},
                          {"bpb", loss * targets / kLn2 / std::max(1.0, label_bytes)}, {"lr", lr},
                          {"grad_norm", grad_norm.item<double>()},
                          {"words_per_s", window_words / window_time}, {"bytes_per_s", window_bytes / window_time},
                          {"flops_per_s", window_flops / window_time}, {"data_wait_fraction", window_wait / window_time},
                          {"elapsed", elapsed},
                          // Totals since the last record (sum them for a run's training FLOPs and
                          // text seen): model FLOPs with the encoders on every word occurrence.
                          {"model_flops", window_model_flops}, {"text_bytes", window_bytes}, {"words", window_words}};
      // Share of the last step's gradient buckets whose all-reduce started during backward.
      if (dp.active()) m["allreduce_overlap"] = dp.gradient_overlap();
      // The autoencoding loss of the step (nats per spelled byte), where the model has one.
      if (model->config.autoencode > 0) m["autoencode_loss"] = ae_nats.item<double>() / std::max(1.0, ae_targets);
      log_metrics(m);
      if (!lead) {
      } else if (tty) {
        double eta = (o.max_steps - step) * window_time / std::max<int64_t>(1, o.log_every);
        fmt::print(stderr, "\rstep {}/{} loss {:.4f} bpb {:.3f} lr {:.2e} {:.0f} words/s eta {:.0f}s\033[K", step,
                   o.max_steps, loss, m["bpb"].get<double>(), lr, m["words_per_s"].get<double>(), eta);
      } else {
        fmt::print(stderr, "step {} loss {:.4f} bpb {:.3f} lr {:.2e} {:.0f} words/s\n", step, loss,
                   m["bpb"].get<double>(), lr, m["words_per_s"].get<double>());
      }
      window_wait = window_time = window_flops = window_model_flops = 0;
      window_words = window_bytes = 0;
    }
    if (eval_now) {
      auto r = evaluate(model, *validation, o.batch_size, o.eval_batches, dev, dp);
      nlohmann::json m = {{"step", step}, {"split", "validation"}, {"loss", r.loss}, {"bpb", r.bpb}, {"elapsed", elapsed}};
      log_metrics(m);
      if (lead) fmt::print(stderr, "{}step {} validation loss {:.4f} bpb {:.3f}\n", tty ? "\n" : "", step, r.loss, r.bpb);
    }
    if (save_now) save(step, elapsed);
    if (stop_sig) {
      if (lead)
      fmt::print(stderr, "{}ilt-train: stopped by signal {} at step {}; checkpoint {}\n", tty ? "\n" : "", stop_sig, step,
                 o.output + "/" + step_dir_name(step));
      status = 128 + stop_sig;
      break;
    }
    if (out_of_time) {
      if (lead) fmt::print(stderr, "{}ilt-train: --max-minutes reached at step {}\n", tty ? "\n" : "", step);
      break;
    }
  }
  if (tty) fmt::print(stderr, "\n");
  dp.barrier();  // nobody leaves while rank 0 is still writing
  if (status == 0 && lead) progress.finish(fmt::format("{} steps -> {}", step, o.output));
  return status;
}

}  // namespace ilt
