// ilt-segment: text documents -> words shard. See `ilt-segment --help`.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "shard/records.h"
#include "shard/series.h"
#include "text/input.h"
#include "text/segment.h"

using namespace ilt;

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-segment: split text documents into words (lossless) and write a words shard.\n\n"
      "A word is a run of non-space, non-control characters plus at most one trailing\n"
      "whitespace character; other whitespace runs are words of their own; each C0 control\n"
      "character or DEL is a word by itself. Scripts written without spaces (Chinese,\n"
      "Japanese, Thai, Lao, Khmer, Myanmar) are split with ICU's dictionaries. Concatenating\n"
      "a document's words gives its exact bytes back.\n\n"
      "Example: ilt-segment data/demo/udhr.jsonl --tag-field lang -o words.shard"};
  std::vector<std::string> inputs{"-"};
  std::string output = "-", format, field = "text", tag_field, id_field = "id", invalid = "error";
  size_t max_bytes = 30;
  uint64_t shard_bytes = 0;
  one_line_errors(app, "ilt-segment");
  add_version_flag(app, "ilt-segment", [] { return std::vector<LibraryVersions>{icu_version(), zstd_version()}; });
  app.add_option("inputs", inputs, "Text files, '-' for stdin (default: stdin)");
  app.add_option("-o,--output", output, "Words shard to write, '-' for stdout")->capture_default_str();
  app.add_option("--shard-size", shard_bytes,
                 "Write numbered shards of at most this many record bytes each (e.g. 256MB): words.shard "
                 "becomes words-00000.shard, words-00001.shard, ...; together they hold what one shard would")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app.add_option("--format", format,
                 "Input format: lines (one document per line), paragraphs (documents separated by "
                 "blank lines) or jsonl (default: jsonl for *.jsonl files, else lines)")
      ->check(CLI::IsMember({"lines", "paragraphs", "jsonl"}));
  app.add_option("--field", field, "JSONL field holding the text")->capture_default_str();
  app.add_option("--tag-field", tag_field, "JSONL field kept as the document's tag (e.g. lang)");
  app.add_option("--id-field", id_field, "JSONL field kept as the document's id")->capture_default_str();
  app.add_option("--max-bytes", max_bytes,
                 "Split longer words at grapheme-cluster boundaries (0: never); the default fits "
                 "ilt-pack's --max-word-length 32 with BOS and EOS")
      ->capture_default_str()
      ->check(Integer(0, 1 << 20));
  app.add_option("--invalid", invalid,
                 "Invalid UTF-8: error (stop, naming file, line and byte offset), replace (with "
                 "U+FFFD) or skip (drop the document)")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "replace", "skip"}));
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-segment", [&] {
    nlohmann::json params = {{"format", format.empty() ? "auto" : format}, {"field", field},
                             {"tag_field", tag_field}, {"id_field", id_field},
                             {"max_bytes", max_bytes}, {"invalid", invalid}};
    nlohmann::json header = {{"tool", "ilt-segment"}, {"version", ILT_VERSION}, {"params", params},
                             {"input_names", inputs}};
    ShardSeries writer(output, kKindWords, header, shard_bytes);
    struct Counts {
      uint64_t words = 0, bytes = 0;
    };
    std::vector<Counts> shard_counts;  // per numbered shard (its documents are its records)
    Segmenter seg(SegmentOptions{max_bytes});
    Progress progress("ilt-segment", 0);
    nlohmann::json sources = nlohmann::json::array();
    uint64_t docs = 0, words = 0, bytes = 0, max_words = 0;
    std::vector<uint32_t> lens;
    std::string rec;
    Document doc;
    for (const std::string& in : inputs) {
      DocumentReaderOptions o;
      o.format = input_format_for(in, format);
      o.invalid = parse_invalid_policy(invalid);
      o.text_field = field;
      o.tag_field = tag_field;
      o.id_field = id_field;
      DocumentReader reader(in, o);
      while (reader.next(&doc)) {
        lens.clear();
        seg.segment(doc.text, &lens);
        encode_words_doc(doc.id, doc.tag, doc.text, lens, &rec);
        const size_t k = writer.add(rec);
        shard_counts.resize(k + 1);
        shard_counts[k].words += lens.size();
        shard_counts[k].bytes += doc.text.size();
        ++docs;
        words += lens.size();
        bytes += doc.text.size();
        max_words = std::max<uint64_t>(max_words, lens.size());
        progress.update(bytes, fmt::format("bytes, {} documents", docs));
      }
      sources.push_back({{"name", in}, {"sha256", reader.sha256()}, {"bytes", reader.bytes_read()},
                         {"lines", reader.lines_read()}, {"empty_documents", reader.empty()},
                         {"invalid_skipped", reader.skipped()}, {"invalid_replaced", reader.replaced()}});
    }
    nlohmann::json counts = {{"documents", docs}, {"words", words}, {"bytes", bytes}, {"max_words_per_document", max_words}};
    writer.finish([&](size_t k) {
      nlohmann::json footer = {{"inputs", sources}, {"counts", counts}};
      if (shard_bytes > 0) {  // this shard's counts; the whole run's beside them
        const Counts c = k < shard_counts.size() ? shard_counts[k] : Counts{};
        footer["counts"] = {{"documents", writer.records(k)}, {"words", c.words}, {"bytes", c.bytes}};
        footer["run_counts"] = counts;
      }
      return footer;
    });
    progress.finish(fmt::format("{} documents, {} words, {} bytes -> {}", docs, words, bytes, describe_shards(writer.paths())));
    return 0;
  });
}
