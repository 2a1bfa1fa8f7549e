// ilt-generate: write with a checkpoint. See --help.
#include <CLI/CLI.hpp>
#include <limits>
#include <fmt/format.h>

#include <map>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "model/torch_version.h"
#include "common/error.h"
#include "common/io.h"
#include "generate/generate.h"
#include "text/input.h"
#include "text/segment.h"
#include "text/utf8.h"
#include "train/checkpoint.h"
#ifdef ILT_HAVE_RENDER
#include "render/renderer.h"
#endif

using namespace ilt;

namespace {

// Writes the outputs in prompt order while streaming the earliest unfinished prompt live.
class OrderedOutput {
 public:
  OrderedOutput(OutputFile* out, bool json, bool echo) : out_(out), json_(json), echo_(echo) {}
  void start(uint64_t i, const std::string& prompt) {
    prompts_[i] = prompt;
    if (i == head_) open_head();
  }
  void text(uint64_t i, const std::string& piece) {
    if (json_) return;
    if (i == head_) {
      out_->write(piece);
      out_->flush();
    } else {
      pending_[i] += piece;
    }
  }
  void done(uint64_t i, const Generation& g) {
    finished_[i] = g;
    while (finished_.count(head_)) {
      const Generation& f = finished_[head_];
      if (json_) {
        nlohmann::json words = nlohmann::json::array();
        for (const auto& w : f.words) words.push_back({{"word", w.text}, {"logprob", w.logprob}});
        nlohmann::json j = {{"prompt", f.prompt}, {"text", f.text},          {"words", words},
                            {"logprob", f.logprob}, {"stop_reason", f.stop_reason}};
        out_->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      } else {
        out_->write("\n");
      }
      out_->flush();
      finished_.erase(head_);
      prompts_.erase(head_);
      ++head_;
      if (prompts_.count(head_)) open_head();
    }
  }

 private:
  void open_head() {
    if (json_) return;
    if (echo_) out_->write(prompts_[head_]);
    auto it = pending_.find(head_);
    if (it != pending_.end()) {
      out_->write(it->second);
      pending_.erase(it);
    }
    out_->flush();
  }
  OutputFile* out_;
  bool json_, echo_;
  uint64_t head_ = 0;
  std::map<uint64_t, std::string> prompts_, pending_;
  std::map<uint64_t, Generation> finished_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-generate: continue prompts with a trained checkpoint.\n\n"
      "The latent transformer predicts the next word's vector; the bytes decoder writes that\n"
      "word until EOS, a complete word (ending in whitespace, or one control character) or the\n"
      "byte limit; the word is rendered with the checkpoint's renderer settings, encoded and\n"
      "read back. The empty word ends the text. Both levels keep KV caches, so each word costs\n"
      "the same whatever the context length. A prompt without trailing whitespace ends\n"
      "mid-word: its last word is continued, not read as finished. A prompt's prefix-LM blocks\n"
      "(ShiftOut \\x0E ... ShiftIn \\x0F) are read both ways, as in training; a block left open\n"
      "at the prompt's end, and blocks the model writes, are read causally.\n\n"
      "Prompts: the arguments, else one per line of --input (default stdin), paragraphs, or\n"
      "JSONL. Output: each prompt's continuation followed by a newline, streamed as it\n"
      "is written (with --echo, the prompt first); with --json, one JSON object per prompt\n"
      "with per-word log-probabilities (natural log). Outputs follow the order of the prompts.\n\n"
      "Examples:\n"
      "  ilt-generate --checkpoint demo-out/run 'All human beings are born '\n"
      "  ilt-generate --checkpoint demo-out/run --beams 4 --max-words 20 < prompts.txt\n"
      "  ilt-generate --checkpoint demo-out/run --temperature 0.8 --top-p 0.95 --seed 1 --json 'Everyone'"};
  one_line_errors(app, "ilt-generate");
  add_version_flag(app, "ilt-generate", [] {
    return std::vector<LibraryVersions>{torch_versions(), icu_version(),
#ifdef ILT_HAVE_RENDER
                                        render_library_versions(),
#endif
                                        zstd_version()};
  });
  std::vector<std::string> prompts;
  std::string checkpoint, input = "-", format, field = "text", output = "-", device = "cpu", disable,
      invalid = "error";
  GenerateOptions o;
  int threads = 0;
  size_t batch_size = 64;
  bool json = false, echo = false, allow_mismatch = false, quiet = false, no_cache = false;
  app.add_option("prompts", prompts, "Prompts (default: read from --input)");
  app.add_option("--checkpoint", checkpoint, "Checkpoint directory, or a run directory (uses its latest)")->required();
  app.add_option("--input", input, "Prompt file, one per line ('-': stdin)")->capture_default_str();
  app.add_option("--format", format,
                 "Prompt input: lines (one per line, empty lines included), paragraphs (separated by blank "
                 "lines) or jsonl (default: jsonl for *.jsonl files, else lines)")
      ->check(CLI::IsMember({"lines", "paragraphs", "jsonl"}));
  app.add_option("--invalid", invalid, "Invalid UTF-8 in a prompt: error, replace (U+FFFD) or skip (no output)")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "replace", "skip"}));
  app.add_option("--field", field, "JSONL field holding the prompt")->capture_default_str();
  app.add_option("-o,--output", output, "Output file ('-': stdout)")->capture_default_str();
  app.add_option("--max-words", o.max_words, "Words to generate per prompt at most")->capture_default_str()->check(Integer(0, 1000000));
  app.add_option("--min-words", o.min_words, "Do not end the text before this many words")->capture_default_str()->check(Integer(0, 1000000));
  app.add_option("--max-word-bytes", o.max_word_bytes,
                 "Bytes per generated word at most (0: the model's max word length - 2, as segmented)")
      ->capture_default_str()
      ->check(Integer(0, 4096));
  app.add_option("--temperature", o.temperature, "Byte sampling temperature (0: greedy)")->capture_default_str()->check(Number(0, 1000));
  app.add_option("--top-k", o.top_k, "Sample among the k likeliest bytes (0: all)")->capture_default_str()->check(Integer(0, 256));
  app.add_option("--top-p", o.top_p, "Sample among the likeliest bytes holding this probability")->capture_default_str()->check(Number(0, 1, true));
  app.add_option("--min-p", o.min_p, "Sample among the bytes at least this fraction as likely as the likeliest one (0: all)")
      ->capture_default_str()
      ->check(Number(0, 1));
  app.add_option("--repetition-penalty", o.repetition_penalty,
                 "Word level: a word the text (prompt included) already holds has its probability divided by "
                 "this when the decoder would complete it (1: none; 1.2-2 typical)")
      ->capture_default_str()
      ->check(Number(1, std::numeric_limits<double>::infinity()));
  app.add_option("--no-repeat-ngram", o.no_repeat_ngram,
                 "Word level: never complete a word that would repeat an N-gram of words of the text, prompt "
                 "included (0: off; 1: no word twice)")
      ->capture_default_str()
      ->check(Integer(0, 1000));
  app.add_option("--seed", o.seed, "Sampling seed (prompt i of the input always draws the same way)")->capture_default_str()->check(Integer(0));
  app.add_option("--beams", o.beams, "Word-level beam search: keep the K best texts by total log-probability (at most 32)")
      ->capture_default_str()
      ->check(Integer(1, kMaxBeams));
  app.add_option("--stop", o.stop, "Stop a text when its continuation contains this string (cut before it); repeatable")
      ->allow_extra_args(false);
  app.add_option("--max-context", o.max_context,
                 "Prompt words read at most, BOS included: a longer prompt keeps its last words, with a warning "
                 "(default: the sequence length the checkpoint was trained on; 0: no limit)")
      ->check(Integer(0, 10000000));
  app.add_flag("--json", json, "One JSON object per prompt: text, words with log-probabilities, stop reason");
  app.add_flag("--echo", echo, "Write each prompt before its continuation (text output)");
  app.add_flag("--no-cache", no_cache, "Recompute everything for every word and byte (slow; for checking the caches)");
  app.add_option("--batch-size", batch_size, "Prompts generated together")->capture_default_str()->check(Integer(1, 4096));
  app.add_option("--disable-modality", disable, "Switch an encoder off: image or bytes")
      ->check(CLI::IsMember({"image", "bytes"}));
  app.add_flag("--allow-render-mismatch", allow_mismatch,
               "Generate even if this machine's fonts or settings differ from the checkpoint's");
  app.add_option("--threads", threads, "CPU threads (default: all cores)")->check(Integer(0, 1024));
  app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", o.precision, "fp32, or bf16 (autocast on CUDA or the CPU; LibTorch 2.4 or newer)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_flag("-q,--quiet", quiet, "No summary on stderr");
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-generate", [&] {
    if (batch_size < 1) fail("--batch-size must be at least 1");
    o.use_cache = !no_cache;
    o.use_image = disable != "image";
    o.use_bytes = disable != "bytes";
    set_cpu_threads(threads > 0 ? threads : default_threads());
    torch::Device dev = parse_device(device);
    check_precision(o.precision, dev);
    std::string dir = resolve_checkpoint(checkpoint);
    LoadedModel m = load_checkpoint(dir, dev);
    GenerateEnv env;
    env.max_word_length = m.model->config.max_word_length;
    if (app.count("--max-context") == 0) {
      const nlohmann::json& params = m.config.value("data", nlohmann::json::object()).value("params", nlohmann::json::object());
      if (params.is_object() && params.contains("max_seq_length") && params["max_seq_length"].is_number_unsigned())
        o.max_context = int(std::min<uint64_t>(params["max_seq_length"].get<uint64_t>(), 10000000));
    }
    auto segmenter = std::make_shared<Segmenter>(SegmentOptions{size_t(env.max_word_length - 2)});
    env.segment = [segmenter](std::string_view text) {
      std::vector<std::string> words;
      for (auto w : segmenter->words(text)) words.emplace_back(w);
      return words;
    };
    if (m.model->config.has_image()) {
#ifdef ILT_HAVE_RENDER
      const nlohmann::json& recorded = m.config.at("render");
      auto diff = render_manifest_differences(recorded);
      if (!diff.empty()) {
        std::string what = fmt::format("{}", fmt::join(diff, ", "));
        if (!allow_mismatch)
          fail("{} was trained on images rendered otherwise than this machine renders (differ: {}); pass "
               "--allow-render-mismatch to generate anyway",
               dir, what);
        fmt::print(stderr, "ilt-generate: warning: renderer settings differ from the checkpoint's ({})\n", what);
      }
      auto renderer = std::make_shared<Renderer>(render_options_from_manifest(recorded));
      env.render = [renderer](const std::string& word, WordImage* out) { renderer->render(word, out); };
#else
      fail("this ilt-generate was built without Pango/Cairo, and {} reads word images", dir);
#endif
    }
    Generator gen(m.model, env, dev);
    OutputFile out(output);
    OrderedOutput ordered(&out, json, echo);
    // Prompt arguments follow --invalid like prompt files do.
    InvalidUtf8 invalid_policy = parse_invalid_policy(invalid);
    const bool from_args = !prompts.empty();
    std::vector<std::string> arg_prompts;
    for (size_t i = 0; i < prompts.size(); ++i) {
      size_t bad = utf8_invalid_offset(prompts[i]);
      if (bad == prompts[i].size()) {
        arg_prompts.push_back(prompts[i]);
      } else if (invalid_policy == InvalidUtf8::Error) {
        fail("prompt argument {}: invalid UTF-8 at byte offset {} (use --invalid replace|skip to continue)", i + 1, bad);
      } else if (invalid_policy == InvalidUtf8::Replace) {
        arg_prompts.push_back(utf8_replace_invalid(prompts[i]));
      }
    }
    prompts = std::move(arg_prompts);
    std::unique_ptr<DocumentReader> reader;
    if (!from_args) {
      DocumentReaderOptions ro;
      ro.format = input_format_for(input, format);
      ro.invalid = invalid_policy;
      ro.text_field = field;
      ro.keep_empty = true;
      reader = std::make_unique<DocumentReader>(input, ro);
    }
    size_t next_arg = 0;
    uint64_t index = 0;
    while (true) {
      std::vector<std::string> batch;
      Document doc;
      while (batch.size() < batch_size) {
        if (reader ? !reader->next(&doc) : next_arg >= prompts.size()) break;
        batch.push_back(reader ? std::move(doc.text) : prompts[next_arg++]);
      }
      if (batch.empty()) break;
      for (size_t i = 0; i < batch.size(); ++i) ordered.start(index + i, batch[i]);
      auto results = gen.generate(
          batch, o, [&](size_t i, const std::string& piece) { ordered.text(index + i, piece); }, index);
      for (size_t i = 0; i < results.size(); ++i) {
        if (results[i].dropped_words > 0 && !quiet)
          fmt::print(stderr, "ilt-generate: warning: prompt {}: read its last {} words only, {} earlier ones dropped (--max-context)\n",
                     index + i + 1, o.max_context, results[i].dropped_words);
        if (results[i].open_block && !quiet)
          fmt::print(stderr, "ilt-generate: warning: prompt {}: ends inside a ShiftOut block (no ShiftIn); read causally, "
                     "as training reads a block never closed\n", index + i + 1);
        ordered.done(index + i, results[i]);
      }
      index += batch.size();
    }
    out.commit();
    const auto& st = gen.stats();
    if (!quiet)
      fmt::print(stderr,
                 "ilt-generate: {} prompts, {} words in {:.3f} s ({:.1f} words/s{}); prompts read in {:.3f} s; "
                 "{} latent and {} decoder steps\n",
                 st.prompts, st.words, st.seconds, st.words / std::max(st.seconds, 1e-9),
                 o.use_cache ? "" : ", without KV caches", st.prompt_seconds, st.latent_steps, st.decoder_steps);
    return 0;
  });
}
