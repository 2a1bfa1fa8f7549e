// ilt-bench: in-process throughput of the library's stages (the figures behind
// scripts/bench-*.sh). Prints one JSON object per measurement on stdout.
#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "common/io.h"
#ifdef ILT_HAVE_ICU
#include "text/segment.h"
#endif
#ifdef ILT_HAVE_RENDER
#include "render/render_words.h"
#include "render/renderer.h"
#endif
#ifdef ILT_HAVE_TORCH
#include "data/loader.h"
#include "model/model.h"
#include "model/torch_version.h"
#include "train/optimizer.h"
#ifdef ILT_TORCH_CUDA_VERSION
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif
#endif

using namespace ilt;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Splits text into lines (documents) as ilt-segment's default input format does.
std::vector<std::string_view> lines_of(const std::string& text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) out.push_back(std::string_view(text).substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}
#ifdef ILT_TORCH_CUDA_VERSION
// Counts the host syncs LibTorch reports in CUDA's sync debug mode ("warn": each operation
// that makes the host wait for the GPU warns once per call); other warnings pass through.
// Counted on the calling thread (the forward pass, the optimizer, the copies).
struct SyncCounter : c10::WarningHandler {
  int64_t syncs = 0;
  void process(const c10::Warning& w) override {
    if (w.msg().find("synchroniz") != std::string::npos) ++syncs;
    else c10::WarningHandler::process(w);
  }
};
#endif
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ilt-bench: measure segmentation and rendering throughput in-process.\n"
               "Example: ilt-bench --text corpus.txt --min-seconds 2"};
  add_version_flag(app, "ilt-bench", [] {
    return std::vector<LibraryVersions>{
#ifdef ILT_HAVE_TORCH
        torch_versions(),
#endif
#ifdef ILT_HAVE_ICU
        icu_version(),
#endif
#ifdef ILT_HAVE_RENDER
        render_library_versions(),
#endif
        zstd_version()};
  });
  std::string text_path;
  double min_seconds = 2.0;
  size_t max_words = 200000;
  std::vector<int> thread_counts;
  std::vector<std::string> examples;
  std::string train_config;
  size_t batch_size = 16;
  std::string device = "cpu", precision = "fp32";
  bool padded = false;
  int steps = 10, threads = 0;
  app.add_option("--train-config", train_config, "With --examples: time training steps of this model preset, by part");
  app.add_option("--steps", steps, "Training steps to time")->capture_default_str();
  app.add_option("--device", device, "With --train-config: cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, "With --train-config: fp32 or bf16 (autocast)")->capture_default_str();
  app.add_flag("--padded", padded, "With --train-config: the padded (bucketed) encoders and decoder instead of the packed ones");
  app.add_option("--threads", threads, "LibTorch threads (default: all cores)");
  app.add_option("--text", text_path, "Plain text, one document per line");
  app.add_option("--examples", examples, "Examples shards: measure the data loader on them");
  app.add_option("--batch-size", batch_size, "Loader batch size (examples)")->capture_default_str();
  app.add_option("--min-seconds", min_seconds, "Repeat each measurement for at least this long")
      ->capture_default_str();
  app.add_option("--max-render-words", max_words, "Distinct words to render at most")->capture_default_str();
  app.add_option("--render-threads", thread_counts, "Thread counts for render scaling (default: 1 and all cores)");
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-bench", [&]() -> int {
    if (!examples.empty() && !train_config.empty()) {
#ifdef ILT_HAVE_TORCH
      // Training step time split by part: forward of each part (timed), backward, optimizer,
      // waiting for data. Model FLOP/s and the machine's own matmul FLOP/s for comparison.
      set_cpu_threads(threads > 0 ? threads : default_threads());
      const torch::Device dev = parse_device(device);
      check_precision(precision, dev);
      const bool cuda = dev.is_cuda();
      if (cuda) set_tf32(true);  // as ilt-train does on CUDA
      // CUDA runs asynchronously: part times need the device drained at each boundary.
      auto sync = [&] {
        if (cuda) torch::cuda::synchronize(dev.index());
      };
      torch::manual_seed(0);
      LoaderOptions lo{batch_size, 0, true, true, 4};
      lo.pin_memory = cuda;  // as ilt-train: batches page-locked, copied without waiting
      DataLoader dl(examples, lo);
      ModelConfig mc = model_config(train_config);
      mc.max_word_length = int(dl.max_word_length());
      ImageLatentTransformer model(mc);
      model->to(dev);
      model->train();
      torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
      SkippableAdamW stepper(opt);  // the trainer's step: clipping and AdamW, a skip flag on the device
      // One training step as ilt-train takes it (summed nats backpropagated, gradients divided
      // by the target bytes, clipped, AdamW skipping a non-finite step on the device).
      auto train_step = [&](const Batch& batch, Timing* tp, const std::function<void()>& boundary, double* t_backward,
                            double* t_optim) {
        opt.zero_grad();
        ForwardOutput out;
        {
          Autocast autocast(precision, dev);
          ForwardOptions fo;
          fo.packed = !padded;
          out = model->forward(batch, fo, tp);
        }
        boundary();
        auto t2 = Clock::now();
        if (auto objective = training_nats(out, model->config); objective.defined()) objective.backward();
        boundary();
        auto t3 = Clock::now();
        {
          torch::NoGradGuard no_grad;
          for (auto& p : model->parameters())
            if (p.grad().defined()) p.grad().div_(double(std::max<int64_t>(1, out.target_bytes)));
        }
        auto norm = clip_grad_norm(model->parameters(), 1.0);
        stepper.step((out.nats.detach().isfinite() & norm.isfinite()).logical_not().to(torch::kFloat));
        boundary();
        if (t_backward) *t_backward += std::chrono::duration<double>(t3 - t2).count();
        if (t_optim) *t_optim += seconds_since(t3);
        return out;
      };
      Timing t;
      t.sync = cuda;
      double wait = 0, backward = 0, optim = 0, flops = 0, total = 0;
      int64_t words = 0, bytes = 0, slots = 0, real = 0;
      for (int i = -2; i < steps; ++i) {  // two warm-up steps
        bool timed = i >= 0;
        Timing* tp = timed ? &t : nullptr;
        auto t0 = Clock::now();
        auto b = dl.next();
        Batch batch = to_device(*b, dev);
        sync();
        auto t1 = Clock::now();
        ForwardOutput out = train_step(batch, tp, sync, timed ? &backward : nullptr, timed ? &optim : nullptr);
        auto t4 = Clock::now();
        if (!timed) continue;
        wait += std::chrono::duration<double>(t1 - t0).count();
        total += std::chrono::duration<double>(t4 - t0).count();
        flops += 3 * model->forward_flops(*b, false, /*training=*/true);
        words += b->words;
        bytes += b->label_bytes;
        slots += out.decoder_slots;
        real += out.decoder_real;
      }
      // Host syncs per step, counted in CUDA's sync debug mode over steps run as the trainer runs
      // them (no timing boundaries); the loss is read after them, as at a log step.
      int64_t sync_steps = 0;
      double syncs_per_step = 0;
#ifdef ILT_TORCH_CUDA_VERSION
      if (cuda) {
        SyncCounter counter;
        c10::WarningUtils::WarningHandlerGuard guard(&counter);
        c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
        sync_steps = std::max(1, std::min(steps, 5));
        for (int i = 0; i < sync_steps; ++i) {
          auto b = dl.next();
          train_step(to_device(*b, dev), nullptr, [] {}, nullptr, nullptr);
        }
        c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
        syncs_per_step = double(counter.syncs) / double(sync_steps);
        sync();
      }
#endif
      // The machine's matmul rate: square fp32 matmuls of the model's width class.
      // On CUDA: 8192^3 in the run's precision (bf16, or fp32 with TF32), as a peak to compare with.
      const int64_t n = cuda ? 8192 : 1024;
      auto mo = torch::TensorOptions().device(dev).dtype(cuda && precision == "bf16" ? torch::kBFloat16 : torch::kFloat);
      auto a = torch::randn({n, n}, mo), c = torch::randn({n, n}, mo);
      torch::matmul(a, c);
      sync();
      auto m0 = Clock::now();
      int reps = 0;
      do {
        torch::matmul(a, c);
        ++reps;
        sync();
      } while (seconds_since(m0) < 1.0);
      double matmul = 2.0 * double(n) * n * n * reps / seconds_since(m0);
      double peak_gib = 0;
#ifdef ILT_TORCH_CUDA_VERSION
      if (cuda) {
        auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index() < 0 ? 0 : dev.index());
        peak_gib = double(st.allocated_bytes[0].peak) / (1 << 30);  // [0]: all pools together
      }
#endif
      int64_t params = 0;
      for (const auto& p : model->parameters()) params += p.numel();
      nlohmann::json r = {{"bench", "train"}, {"config", train_config}, {"parameters", params},
                          {"device", device}, {"precision", precision}, {"peak_memory_gib", peak_gib}, {"packed", !padded},
                          {"threads", torch::get_num_threads()}, {"batch_size", batch_size}, {"steps", steps},
                          {"step_s", total / steps}, {"words_per_s", words / total}, {"bytes_per_s", bytes / total},
                          {"flops_per_s", flops / total}, {"matmul_flops_per_s", matmul},
                          {"fraction_of_matmul", flops / total / matmul},
                          {"decoder_padded_fraction", slots ? 1.0 - double(real) / slots : 0.0},
                          {"host_syncs_per_step", cuda ? nlohmann::json(syncs_per_step) : nlohmann::json()},
                          {"sync_steps_counted", sync_steps},
                          {"split", {{"image_encoder", t.image / total}, {"bytes_encoder", t.bytes / total},
                                     {"latent", t.latent / total}, {"decoder", t.decoder / total},
                                     {"backward", backward / total}, {"optimizer", optim / total},
                                     {"data_wait", wait / total}}}};
      fmt::print("{}\n", r.dump());
      return 0;
#else
      fail("built without LibTorch");
#endif
    }
    if (!examples.empty()) {
#ifdef ILT_HAVE_TORCH
      // Loader throughput: words delivered as tensors per second, prefetch thread included.
      DataLoader dl(examples, LoaderOptions{batch_size, 0, true, true, 4});
      for (int i = 0; i < 3; ++i) dl.next();  // warm-up
      int64_t words = 0, batches = 0;
      auto t0 = Clock::now();
      do {
        words += dl.next()->words;
        ++batches;
      } while (seconds_since(t0) < min_seconds);
      double s = seconds_since(t0);
      nlohmann::json r = {{"bench", "loader"}, {"file", examples.size() == 1 ? nlohmann::json(examples[0]) : nlohmann::json(examples)}, {"batch_size", batch_size},
                          {"batches", batches}, {"seconds", s}, {"words_per_s", double(words) / s}};
      VocabCacheStats vs = dl.vocab_stats();
      r["vocab_cache"] = {{"hits", vs.hits}, {"misses", vs.misses}, {"entries", vs.entries}, {"bytes", vs.bytes}};
      fmt::print("{}\n", r.dump());
#else
      fail("built without LibTorch: no data loader to measure");
#endif
      if (text_path.empty()) return 0;
    }
    if (text_path.empty()) fail("give --text and/or --examples");
    std::string text = read_all(text_path);
    auto docs = lines_of(text);
    size_t doc_bytes = 0;
    for (auto d : docs) doc_bytes += d.size();
    std::vector<std::string> distinct;
#ifdef ILT_HAVE_ICU
    {
      Segmenter seg(SegmentOptions{30});
      std::vector<uint32_t> lens;
      size_t words = 0, reps = 0;
      auto t0 = Clock::now();
      do {
        for (auto d : docs) {
          lens.clear();
          seg.segment(d, &lens);
          words += lens.size();
        }
        ++reps;
      } while (seconds_since(t0) < min_seconds);
      double s = seconds_since(t0);
      nlohmann::json r = {{"bench", "segment"}, {"file", text_path}, {"threads", 1},
                          {"bytes", doc_bytes * reps}, {"seconds", s},
                          {"mb_per_s", double(doc_bytes) * reps / s / 1e6},
                          {"words_per_s", double(words) / s}};
      fmt::print("{}\n", r.dump());
      std::unordered_set<std::string_view> seen;
      for (auto d : docs) {
        lens.clear();
        seg.segment(d, &lens);
        size_t at = 0;
        for (uint32_t l : lens) {
          auto w = d.substr(at, l);
          at += l;
          if (distinct.size() < max_words && seen.insert(w).second) distinct.emplace_back(w);
        }
      }
    }
#else
    fmt::print(stderr, "ilt-bench: segmentation skipped (built without ICU)\n");
#endif
#ifdef ILT_HAVE_RENDER
    if (thread_counts.empty()) thread_counts = {1, default_threads()};
    for (int threads : thread_counts) {
      RenderPool pool(RenderOptions{}, threads);
      std::vector<WordImage> images;
      // Warm-up on a slice: font loading and first glyphs are start-up, not throughput.
      std::vector<std::string> warm(distinct.begin(), distinct.begin() + std::min<size_t>(distinct.size(), 2000));
      pool.render(warm, &images, nullptr);
      size_t rendered = 0, reps = 0;
      auto t0 = Clock::now();
      do {
        pool.render(distinct, &images, nullptr);
        rendered += distinct.size();
        ++reps;
      } while (seconds_since(t0) < min_seconds);
      double s = seconds_since(t0);
      nlohmann::json r = {{"bench", "render"}, {"file", text_path}, {"threads", threads},
                          {"distinct_words", distinct.size()}, {"seconds", s},
                          {"words_per_s", double(rendered) / s},
                          {"words_per_s_per_thread", double(rendered) / s / threads}};
      fmt::print("{}\n", r.dump());
    }
#else
    fmt::print(stderr, "ilt-bench: rendering skipped (built without Pango/Cairo)\n");
#endif
    return 0;
  });
}
