// ilt-eval: measure a checkpoint on examples shards. See --help.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "model/torch_version.h"
#include "common/io.h"
#include "eval/evaluate.h"

using namespace ilt;

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-eval: loss, bits per byte, byte accuracy and next-word exact match of a checkpoint\n"
      "on examples shards, overall, by document length and by tag (e.g. language).\n\n"
      "Exact match: the next word decoded greedily from the gold context equals the gold word\n"
      "(every target byte's argmax right, EOS included). bpb: total nats / ln 2 / text bytes.\n"
      "Refuses data rendered with other settings or fonts than the checkpoint's.\n\n"
      "Example: ilt-eval --checkpoint runs/tiny --data demo.validation.examples --json eval.json"};
  EvalOptions o;
  std::string disable, json_out;
  one_line_errors(app, "ilt-eval");
  add_version_flag(app, "ilt-eval", [] { return std::vector<LibraryVersions>{torch_versions(), zstd_version()}; });
  app.add_option("--checkpoint", o.checkpoint, "Checkpoint directory, or a run directory (uses its latest)")->required();
  app.add_option("--data", o.data, "Examples shards")->required();
  app.add_option("--disable-modality", disable, "Switch an encoder off: image or bytes")
      ->check(CLI::IsMember({"image", "bytes"}));
  app.add_option("--json", json_out, "Also write the report as JSON to this file ('-': stdout)");
  app.add_flag("--allow-render-mismatch", o.allow_render_mismatch, "Evaluate even if renderer settings differ");
  app.add_option("--batch-size", o.batch_size, "Examples per batch")->capture_default_str()->check(Integer(1, 1 << 20));
  app.add_option("--max-batches", o.max_batches, "Stop after N batches (0: all)")->capture_default_str()->check(Integer(0));
  app.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(Integer(0, 1024));
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", o.precision, "fp32, or bf16 (autocast on CUDA or the CPU; LibTorch 2.4 or newer)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  return run_tool("ilt-eval", [&] {
    if (!json_out.empty()) check_not_directory(json_out);  // before the work, not after
    o.use_image = disable != "image";
    o.use_bytes = disable != "bytes";
    auto report = evaluate(o);
    if (json_out != "-") print_stdout(format_report(report));
    if (!json_out.empty()) write_file_atomic(json_out, report.dump(2) + "\n");
    return 0;
  });
}
