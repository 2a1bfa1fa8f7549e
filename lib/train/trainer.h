// The training loop behind ilt-train.
#pragma once
#include <set>
#include <string>
#include <vector>

namespace ilt {

struct TrainOptions {
  std::vector<std::string> train, validation;  // examples shards (on resume: the checkpoint's if empty)
  std::string config = "tiny";                 // preset or JSON file
  std::string output;                          // run directory
  std::string resume;                          // checkpoint (or run) directory to continue from;
                                               // "auto": --output's latest checkpoint, or a new run
  // Flags given on the command line (long names without dashes). On resume, the training
  // settings (batch size, accumulation, schedule, optimizer, seed, data) come from the
  // checkpoint; a given flag that differs is refused, or taken with `override_settings` and
  // recorded in metrics.jsonl. --max-steps and --precision may always change.
  std::set<std::string> given;
  bool override_settings = false;
  size_t batch_size = 16;                      // examples per micro-batch
  int grad_accum = 1;                          // micro-batches per optimizer step
  int64_t max_steps = 1000;
  double max_minutes = 0;                      // stop (and save) after this long; 0 = no limit
  double lr = 2e-3, min_lr_ratio = 0.1, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, clip = 1.0;
  int64_t warmup = 50;
  std::string schedule = "cosine";             // cosine, linear, constant
  int64_t eval_every = 100, eval_batches = 20, save_every = 500, log_every = 10;
  int keep_last = 3;
  uint64_t seed = 0;
  size_t shuffle_buffer = 16384;               // examples shuffled together (LoaderOptions)
  size_t vocab_cache_mb = 256;                 // decoded word images kept in memory
  int threads = 0;                             // 0: all cores
  std::string device = "cpu";                  // cpu, cuda, cuda:N
  std::string precision = "fp32";             // fp32, bf16 (autocast; LibTorch 2.4 or newer)
  bool tf32 = true;                            // TF32 matmuls on CUDA (set_tf32)
  bool progress = true;
  // Data parallelism (ranks from torchrun's or Slurm's environment, lib/parallel/env.h): how long a
  // collective call waits for the other ranks before the run stops with an error.
  double dist_timeout = 600;
  double bucket_mb = 25;                       // gradient all-reduce buckets (overlapped with backward)
};

// Runs training; returns the process exit status. Throws ilt::Error on bad input.
int train(const TrainOptions& options);

// Learning rate at `step` (0-based) for the options' schedule.
double learning_rate(const TrainOptions& o, int64_t step);

}  // namespace ilt
