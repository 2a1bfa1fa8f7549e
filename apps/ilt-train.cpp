// ilt-train: train an Image Latent Transformer on examples shards. See --help.
#include <CLI/CLI.hpp>
#include <fmt/ranges.h>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "parallel/env.h"
#include "parallel/launch.h"
#include "model/config.h"
#include "model/torch_version.h"
#include "train/trainer.h"

using namespace ilt;

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-train: train an Image Latent Transformer on examples shards (ilt-pack).\n\n"
      "Writes DIR/metrics.jsonl (one JSON object per log step and per evaluation) and\n"
      "checkpoints DIR/step-NNNNNNN/ (config.json, model.safetensors, optimizer.safetensors,\n"
      "trainer.json, rng.pt), each written atomically; DIR/latest names the newest. A new\n"
      "run needs a DIR without a run in it.\n\n"
      "--resume DIR/step-N (or DIR: its latest) continues exactly where that checkpoint left\n"
      "off: the model, the data and its order, and the training settings (batch size,\n"
      "accumulation, schedule, optimizer, seed) come from it. A flag that differs from them is\n"
      "refused unless --override is given (the change is then recorded in metrics.jsonl; another\n"
      "seed or other data restart the data order). --max-steps may change freely while it stays\n"
      "past the checkpoint's step (the schedule then spans the new length, so the learning rate\n"
      "moves at once). Into the checkpoint's own DIR, metrics.jsonl is cut back to its step and\n"
      "later checkpoints are renamed step-N.abandoned; into another (new) DIR, the history up to\n"
      "the checkpoint is copied there. --resume auto: DIR's latest checkpoint if it has one,\n"
      "else a new run (for Slurm requeues and torchrun restarts).\n\n"
      "Data parallelism: one process per device, each taking its part of every batch\n"
      "(--batch-size is the global batch: the result does not depend on the number of ranks).\n"
      "Ranks come from torchrun (torchrun --nproc-per-node 2 --no-python ilt-train ...), from\n"
      "Slurm (srun, one task per device), or --nproc-per-node N on one machine. Gradients are\n"
      "summed over c10d (Gloo on the CPU, NCCL on GPUs); rank 0 writes the run directory.\n"
      "docs/distributed.md has the details and an sbatch example.\n\n"
      "Example: ilt-train --train demo.train.examples --validation demo.validation.examples \\\n"
      "           --config tiny --output runs/tiny --max-steps 300"};
  one_line_errors(app, "ilt-train");
  add_version_flag(app, "ilt-train", [] { return std::vector<LibraryVersions>{torch_versions(), zstd_version()}; });
  TrainOptions o;
  app.add_option("--train", o.train, "Training examples shards (required, except on --resume)");
  app.add_option("--validation", o.validation, "Validation examples shards");
  app.add_option("--config", o.config, fmt::format("Model preset ({}) or JSON file", fmt::join(model_presets(), ", ")))->capture_default_str();
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "Print --config as a JSON file (every key, to edit and pass back as --config) and exit");
  app.add_option("-o,--output", o.output, "Run directory (required)");
  app.add_option("--resume", o.resume, "Checkpoint directory (or run directory: its latest) to continue from; auto: --output's latest, or a new run");
  app.add_flag("--override", o.override_settings,
               "On --resume, take flags that differ from the checkpoint's settings or data (recorded in metrics.jsonl)");
  app.add_option("--batch-size", o.batch_size, "Examples per micro-batch (all ranks together)")->capture_default_str()->check(Integer(1, 1 << 20));
  app.add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step")->capture_default_str()->check(Integer(1, 1 << 20));
  app.add_option("--max-steps", o.max_steps, "Optimizer steps")->capture_default_str()->check(Integer(1));
  app.add_option("--max-minutes", o.max_minutes, "Stop and save after this many minutes (0: no limit)")->capture_default_str()->check(Number(0));
  app.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str()->check(Number(0, std::numeric_limits<double>::infinity(), true));
  app.add_option("--min-lr-ratio", o.min_lr_ratio, "Final learning rate / peak (cosine, linear)")->capture_default_str()->check(Number(0, 1));
  app.add_option("--warmup", o.warmup, "Linear warmup steps")->capture_default_str()->check(Integer(0));
  app.add_option("--schedule", o.schedule, "cosine, linear or constant after warmup")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "linear", "constant"}));
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (not on norms, biases, embeddings)")->capture_default_str()->check(Number(0));
  app.add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str()->check(Number(0, 1, false, true));
  app.add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str()->check(Number(0, 1, false, true));
  app.add_option("--clip", o.clip, "Gradient norm clipping")->capture_default_str()->check(Number(0, std::numeric_limits<double>::infinity(), true));
  app.add_option("--eval-every", o.eval_every, "Evaluate every N steps")->capture_default_str()->check(Integer(1));
  app.add_option("--eval-batches", o.eval_batches, "Validation batches per evaluation (0: all)")->capture_default_str()->check(Integer(0));
  app.add_option("--save-every", o.save_every, "Save a checkpoint every N steps")->capture_default_str()->check(Integer(1));
  app.add_option("--keep-last", o.keep_last, "Checkpoints to keep")->capture_default_str()->check(Integer(1, 1000000));
  app.add_option("--log-every", o.log_every, "Log metrics every N steps")->capture_default_str()->check(Integer(1));
  app.add_option("--seed", o.seed, "Seed of initialisation, data order and dropout")->capture_default_str()->check(Integer(0));
  app.add_option("--shuffle-buffer", o.shuffle_buffer,
                 "Training examples shuffled together: each epoch walks the shards and their blocks in a seeded "
                 "order and shuffles windows of this many examples (their records are held in memory, ~1-2 KB each)")
      ->capture_default_str()
      ->check(Integer(1));
  app.add_option("--vocab-cache-mb", o.vocab_cache_mb,
                 "Memory for decoded word images, read on demand from the vocabulary shards (validation's "
                 "loader gets a quarter of it besides)")
      ->capture_default_str()
      ->check(Integer(1, 1 << 20));
  app.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(Integer(0, 1024));
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", o.precision, "fp32, or bf16 (autocast on CUDA or the CPU; LibTorch 2.4 or newer)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  int nproc = 0;
  app.add_option("--nproc-per-node", nproc, "Start N ranks on this machine (data parallelism without torchrun)")
      ->check(Integer(1, 1024));
  app.add_option("--dist-timeout", o.dist_timeout,
                 "Seconds a rank waits for the others (joining, each collective) before stopping with an error")
      ->capture_default_str()
      ->check(Number(1));
  app.add_option("--bucket-mb", o.bucket_mb,
                 "Data parallelism: gradients are all-reduced in flat buckets of about this many MB, each started "
                 "during the backward pass as soon as it is full (smaller: more overlap, more calls)")
      ->capture_default_str()
      ->check(Number(0.001, 1e6));
  bool no_tf32 = false;
  app.add_flag("--no-tf32", no_tf32, "On CUDA, fp32 matmuls at full fp32 precision (default: TF32, ~8x faster)");
  CLI11_PARSE(app, argc, argv);
  if (print_config)
    return run_tool("ilt-train", [&] {
      fmt::print("{}\n", to_json(model_config(o.config)).dump(2));
      return 0;
    });
  if (o.output.empty())
    return run_tool("ilt-train", []() -> int { fail("--output is required (see --help)"); });
  if (nproc > 0)
    return run_tool("ilt-train", [&] {
      return launch_local(nproc, without_option(std::vector<std::string>(argv, argv + argc), "--nproc-per-node"));
    });
  o.tf32 = !no_tf32;
  for (const CLI::Option* opt : app.get_options())
    if (opt->count() > 0)
      for (const std::string& name : opt->get_lnames()) o.given.insert(name);
  return run_tool("ilt-train", [&] {
    try {
      return train(o);
    } catch (const Error& e) {
      // The ranks of a data-parallel job fail together: each says which it is.
      std::string message = e.what();
      int rank = -1;
      try {
        const DistEnv env = dist_env();
        if (env.source != "single") rank = env.rank;
      } catch (const Error&) {
      }
      if (rank < 0 || message.rfind("rank ", 0) == 0) throw;
      throw Error(fmt::format("rank {}: {}", rank, message));
    }
  });
}
