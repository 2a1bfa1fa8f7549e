// Evaluation of a checkpoint on examples shards (ilt-eval).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ilt {

struct EvalOptions {
  std::string checkpoint;             // checkpoint directory (or run directory: its latest)
  std::vector<std::string> data;      // examples shards
  bool use_image = true, use_bytes = true;  // --disable-modality
  bool allow_render_mismatch = false;
  size_t batch_size = 16;
  int64_t max_batches = 0;            // 0: all
  int threads = 0;
  std::string device = "cpu";
  std::string precision = "fp32";     // fp32, bf16 (autocast; LibTorch 2.4 or newer)
  bool progress = true;
};

// Returns the report: {"overall": {...}, "by_length": {...}, "by_tag": {...}, "checkpoint",
// "data", "modalities"}; each group has words, target_bytes, label_bytes, loss, bpb,
// byte_accuracy, exact_match.
nlohmann::json evaluate(const EvalOptions& options);

// A fixed-width table of the report for terminals.
std::string format_report(const nlohmann::json& report);

}  // namespace ilt
