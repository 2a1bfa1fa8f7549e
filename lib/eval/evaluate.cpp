#include "eval/evaluate.h"

#include <sys/stat.h>

#include <cmath>
#include <map>

#include <fmt/ranges.h>

#include "common/cli.h"
#include "common/error.h"
#include "common/io.h"
#include "common/json_diff.h"
#include "data/loader.h"
#include "model/model.h"
#include "train/checkpoint.h"

namespace ilt {

namespace {

struct Acc {
  double nats = 0, targets = 0, label_bytes = 0, correct = 0, words = 0, exact = 0;
  nlohmann::json json() const {
    auto div = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    return {{"words", words},
            {"target_bytes", targets},
            {"label_bytes", label_bytes},
            {"loss", div(nats, targets)},
            {"bpb", div(nats, kLn2 * label_bytes)},
            {"byte_accuracy", div(correct, targets)},
            {"exact_match", div(exact, words)}};
  }
};

// Document-length buckets in words (BOS included).
std::string length_bucket(int64_t n) {
  if (n <= 16) return "1-16";
  if (n <= 64) return "17-64";
  if (n <= 256) return "65-256";
  return "257+";
}
}  // namespace

nlohmann::json evaluate(const EvalOptions& o) {
  set_cpu_threads(o.threads > 0 ? o.threads : default_threads());
  torch::Device dev = parse_device(o.device);
  check_precision(o.precision, dev);
  std::string dir = resolve_checkpoint(o.checkpoint);
  LoadedModel m = load_checkpoint(dir, dev);
  DataLoader dl(o.data, LoaderOptions{o.batch_size, 0, false, false, 4});
  const nlohmann::json& render_model = m.config.at("render");
  const nlohmann::json& render_data = dl.meta().at("render");
  if (render_model != render_data) {
    std::vector<std::string> diff = differing_keys(render_model, render_data);
    std::string what = fmt::format("{}", fmt::join(diff, ", "));
    if (!o.allow_render_mismatch)
      fail("{} was trained on images rendered with other settings than {} (differ: {}); re-render the data "
           "with the checkpoint's settings, or pass --allow-render-mismatch",
           dir, o.data.at(0), what);
    fmt::print(stderr, "ilt-eval: warning: renderer settings differ from the checkpoint's ({})\n", what);
  }
  if (dl.max_word_length() != int64_t(m.model->config.max_word_length))
    fail("{}: packed with max word length {}, the model has {}", o.data.at(0), dl.max_word_length(),
         int64_t(m.model->config.max_word_length));

  torch::NoGradGuard no_grad;
  ForwardOptions fo;
  fo.use_image = o.use_image;
  fo.use_bytes = o.use_bytes;
  fo.accuracy = true;
  Acc all;
  std::map<std::string, Acc> by_len, by_tag;
  Progress progress("ilt-eval", (dl.num_examples() + o.batch_size - 1) / o.batch_size, false);
  int64_t batches = 0;
  while (auto b = dl.next()) {
    if (o.max_batches > 0 && batches >= o.max_batches) break;
    ForwardOutput out;
    {
      Autocast autocast(o.precision, dev);
      out = m.model->forward(to_device(*b, dev), fo);
    }
    auto nats = out.word_nats.to(torch::kCPU), correct = out.word_correct.to(torch::kCPU);
    auto exact = out.word_exact.to(torch::kCPU);
    // Targets per word: label + EOS, or what the model says (the bytes-lm predicts no EOS per word).
    auto targets = (out.word_targets.defined() ? out.word_targets : b->target_lengths).to(torch::kCPU).to(torch::kLong);
    auto tg_a = targets.accessor<int64_t, 2>();
    auto tl = b->target_lengths, mask = b->word_mask, dw = b->doc_words, di = b->doc_ids;
    const int64_t B = mask.size(0), L = mask.size(1);
    auto nats_a = nats.accessor<float, 2>();
    auto corr_a = correct.accessor<int64_t, 2>();
    auto ex_a = exact.accessor<bool, 2>();
    auto tl_a = tl.accessor<int32_t, 2>();
    auto m_a = mask.accessor<bool, 2>();
    auto dw_a = dw.accessor<int32_t, 2>();
    auto di_a = di.accessor<int32_t, 2>();
    for (int64_t i = 0; i < B; ++i)
      for (int64_t l = 0; l < L; ++l) {
        if (!m_a[i][l] || tl_a[i][l] == 0) continue;  // padding, or no label (inside a prefix block)
        Acc one;
        one.nats = nats_a[i][l];
        one.targets = double(tg_a[i][l]);
        one.label_bytes = tl_a[i][l] - 1;
        one.correct = double(corr_a[i][l]);
        one.words = 1;
        one.exact = ex_a[i][l] ? 1 : 0;
        for (Acc* a : {&all, &by_len[length_bucket(dw_a[i][l])], &by_tag[b->doc_tags[size_t(i)].at(size_t(di_a[i][l]))]}) {
          a->nats += one.nats;
          a->targets += one.targets;
          a->label_bytes += one.label_bytes;
          a->correct += one.correct;
          a->words += one.words;
          a->exact += one.exact;
        }
      }
    ++batches;
    if (o.progress) progress.update(uint64_t(batches), "batches");
  }
  nlohmann::json report = {{"checkpoint", dir},
                           {"data", o.data},
                           {"modalities", {{"image", o.use_image && m.model->config.has_image()},
                                           {"bytes", o.use_bytes && m.model->config.has_bytes()}}},
                           {"overall", all.json()}};
  for (auto& [k, v] : by_len) report["by_length"][k] = v.json();
  bool tagged = by_tag.size() > 1 || (by_tag.size() == 1 && !by_tag.begin()->first.empty());
  if (tagged)
    for (auto& [k, v] : by_tag) report["by_tag"][k.empty() ? "(none)" : k] = v.json();
  if (o.progress) progress.finish(fmt::format("{} words", all.words));
  return report;
}

std::string format_report(const nlohmann::json& r) {
  std::string out = fmt::format("checkpoint {}\nmodalities: image {}, bytes {}\n\n", r["checkpoint"].get<std::string>(),
                                r["modalities"]["image"].get<bool>() ? "on" : "off",
                                r["modalities"]["bytes"].get<bool>() ? "on" : "off");
  out += fmt::format("{:<22} {:>9} {:>8} {:>7} {:>9} {:>9}\n", "group", "words", "loss", "bpb", "byte acc", "exact");
  auto row = [&](const std::string& name, const nlohmann::json& g) {
    out += fmt::format("{:<22} {:>9.0f} {:>8.4f} {:>7.3f} {:>8.2f}% {:>8.2f}%\n", name, g["words"].get<double>(),
                       g["loss"].get<double>(), g["bpb"].get<double>(), 100 * g["byte_accuracy"].get<double>(),
                       100 * g["exact_match"].get<double>());
  };
  row("overall", r["overall"]);
  if (r.contains("by_length"))
    for (const char* k : {"1-16", "17-64", "65-256", "257+"})
      if (r["by_length"].contains(k)) row(std::string("doc words ") + k, r["by_length"][k]);
  if (r.contains("by_tag"))
    for (auto it = r["by_tag"].begin(); it != r["by_tag"].end(); ++it) row("tag " + it.key(), it.value());
  return out;
}

}  // namespace ilt
