// ilt-inspect: look inside any shard. See --help.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "common/io.h"
#include "common/png.h"
#include "data/examples.h"
#include "shard/records.h"
#include "shard/shard.h"
#ifdef ILT_HAVE_RENDER
#include "render/renderer.h"
#include "render/sheet.h"
#endif

using namespace ilt;

namespace {

// "7", "3:10" (half-open), ":5", "all".
std::pair<uint64_t, uint64_t> parse_range(const std::string& s) {
  if (s == "all") return {0, ~0ull};
  auto colon = s.find(':');
  try {
    if (colon == std::string::npos) {
      uint64_t i = std::stoull(s);
      return {i, i + 1};
    }
    uint64_t a = colon ? std::stoull(s.substr(0, colon)) : 0;
    uint64_t b = colon + 1 < s.size() ? std::stoull(s.substr(colon + 1)) : ~0ull;
    return {a, b};
  } catch (const std::exception&) {
    fail("bad record range '{}' (use N, A:B, :B, A: or all)", s);
  }
}

struct Summary {
  std::vector<double> a, b;  // per-kind series for percentiles
  static nlohmann::json describe(std::vector<double>& v) {
    if (v.empty()) return nullptr;
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    auto pct = [&](double p) { return v[std::min(v.size() - 1, size_t(p * (v.size() - 1) + 0.5))]; };
    return {{"min", v.front()}, {"mean", sum / v.size()}, {"p50", pct(0.5)}, {"p95", pct(0.95)}, {"max", v.back()}};
  }
};

// The vocabulary next to an examples shard, for showing words instead of ids (may be empty).
std::vector<std::string> load_vocab(const std::string& examples_path, const nlohmann::json& header) {
  std::vector<std::string> words;
  if (!header.contains("vocab") || examples_path == "-") return words;
  try {
    ShardReader v(vocab_path(examples_path, header), kKindVocab);
    std::string_view rec;
    WordImage img;
    while (v.next(&rec)) {
      decode_word_image(rec, &img);
      words.push_back(img.word);
    }
  } catch (const Error& e) {
    fmt::print(stderr, "ilt-inspect: vocabulary not shown: {}\n", e.what());
    words.clear();
  }
  return words;
}

nlohmann::json record_json(const std::string& kind, uint64_t i, std::string_view rec,
                           const std::vector<std::string>& vocab) {
  if (kind == kKindExamples) {
    Example ex;
    decode_example(rec, &ex);
    nlohmann::json docs = nlohmann::json::array(), blocks = nlohmann::json::array();
    for (const DocPiece& d : ex.docs)
      docs.push_back({{"length", d.length}, {"first_position", d.first_position}, {"doc_words", d.doc_words},
                      {"tag", d.tag}});
    for (const PrefixBlock& p : ex.prefix_blocks) blocks.push_back({p.begin, p.end});
    nlohmann::json j = {{"index", i}, {"word_ids", ex.word_ids}, {"docs", docs}, {"prefix_blocks", blocks},
                        {"labels", ex.labels}};
    if (!vocab.empty()) {
      nlohmann::json words = nlohmann::json::array();
      for (uint32_t id : ex.word_ids) words.push_back(id < vocab.size() ? vocab[id] : "?");
      j["words"] = words;
      // Positions whose stored label training ignores (inside a prefix block).
      j["ignored_labels"] = ignored_labels(ex, [&](size_t l) -> std::string_view {
        return ex.word_ids[l] < vocab.size() ? std::string_view(vocab[ex.word_ids[l]]) : std::string_view();
      });
    }
    return j;
  }
  if (kind == kKindWords) {
    WordsDoc d;
    decode_words_doc(rec, &d);
    return {{"index", i}, {"id", d.id}, {"tag", d.tag}, {"words", d.words}};
  }
  if (kind == kKindImages || kind == kKindVocab) {
    WordImage img;
    decode_word_image(rec, &img);
    return {{"index", i}, {"word", img.word}, {"width", img.width}, {"height", img.height}};
  }
  return {{"index", i}, {"bytes", rec.size()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-inspect: print a shard's header, metadata, record counts and statistics; dump\n"
      "records as JSON lines; write word images as PNG files or a contact sheet.\n\n"
      "Examples:\n"
      "  ilt-inspect words.shard\n"
      "  ilt-inspect words.shard --dump 0:3\n"
      "  ilt-inspect images.shard --word 'שלום ' --png-dir out/\n"
      "  ilt-inspect images.shard --sheet sheet.png --select 0:64"};
  std::string path, dump, select, png_dir, sheet;
  std::vector<std::string> words;
  bool as_json = false, no_stats = false;
  int columns = 4;
  one_line_errors(app, "ilt-inspect");
  add_version_flag(app, "ilt-inspect", [] {
    return std::vector<LibraryVersions>{
#ifdef ILT_HAVE_RENDER
        render_library_versions(),  // contact sheets render words
#endif
        libpng_version(), zstd_version()};
  });
  app.add_option("shard", path, "Shard file ('-' for stdin)")->required();
  app.add_flag("--json", as_json, "Print the summary as one JSON object");
  app.add_flag("--no-stats", no_stats, "Skip the statistics pass (header and index only)");
  app.add_option("--dump", dump,
                 "Print these records as JSON lines: N, A:B, :B, A: or all (examples show their words "
                 "when the vocabulary shard is beside them)");
  app.add_option("--select", select, "Records for --png-dir and --sheet (default: the first 64)");
  app.add_option("--word", words, "Select image records of this word (repeat)");
  app.add_option("--png-dir", png_dir, "Write the selected word images as PNG files here");
  app.add_option("--sheet", sheet, "Write a contact sheet of the selected word images (PNG)");
  app.add_option("--columns", columns, "Contact sheet columns")->capture_default_str()->check(Integer(1, 1024));
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-inspect", [&] {
    ShardReader reader(path);
    const std::string kind = reader.kind();
    auto [dump_a, dump_b] = dump.empty() ? std::pair<uint64_t, uint64_t>{1, 0} : parse_range(dump);
    auto [sel_a, sel_b] = select.empty() ? std::pair<uint64_t, uint64_t>{0, 64} : parse_range(select);
    std::set<std::string> want_words(words.begin(), words.end());
    bool want_images = !png_dir.empty() || !sheet.empty();
    if (want_images && kind != kKindImages && kind != kKindVocab) fail("{}: --png-dir and --sheet need an images shard, this is '{}'", path, kind);

    // One pass over the records: statistics, dumps and image selection together.
    std::vector<WordImage> chosen;
    std::vector<uint64_t> chosen_index;
    std::vector<double> s1, s2;
    std::map<std::string, uint64_t> tags;
    std::map<int, uint64_t> widths;
    uint64_t n = 0, words_total = 0, bytes_total = 0;
    std::string_view rec;
    WordsDoc doc;
    WordImage img;
    Example ex;
    uint64_t pieces = 0, blocks = 0;
    std::vector<std::string> vocab;
    if (kind == kKindExamples && !dump.empty()) vocab = load_vocab(path, reader.header());
    bool need_pass = !no_stats || !dump.empty() || want_images;
    while (need_pass && reader.next(&rec)) {
      uint64_t i = n++;
      try {
        if (i >= dump_a && i < dump_b) print_stdout(fmt::format("{}\n", record_json(kind, i, rec, vocab).dump()));
        if (kind == kKindWords && !no_stats) {
          decode_words_doc(rec, &doc);
          s1.push_back(double(doc.words.size()));
          for (const auto& w : doc.words) s2.push_back(double(w.size())), bytes_total += w.size();
          words_total += doc.words.size();
          if (!doc.tag.empty()) ++tags[doc.tag];
        } else if (kind == kKindExamples && !no_stats) {
          decode_example(rec, &ex);
          s1.push_back(double(ex.size()));
          s2.push_back(double(ex.docs.size()));
          words_total += ex.size();
          pieces += ex.docs.size();
          blocks += ex.prefix_blocks.size();
          for (const DocPiece& d : ex.docs)
            if (!d.tag.empty()) tags[d.tag] += d.length;
        } else if ((kind == kKindImages || kind == kKindVocab) && (!no_stats || want_images)) {
          decode_word_image(rec, &img);
          s1.push_back(img.width);
          ++widths[img.width];
          bool pick = want_words.empty() ? (i >= sel_a && i < sel_b) : want_words.count(img.word) > 0;
          if (want_images && pick) {
            chosen.push_back(img);
            chosen_index.push_back(i);
          }
        } else if (!no_stats) {
          s1.push_back(double(rec.size()));
        }
      } catch (const Error& e) {
        fail("{}: record {}: {}", path, i, e.what());
      }
    }
    if (!dump.empty()) return 0;

    nlohmann::json out = {{"file", path}, {"kind", kind}, {"format_version", reader.version()},
                          {"meta", reader.meta()}};
    if (reader.random_access() || need_pass) out["records"] = need_pass ? n : reader.size();
    if (reader.random_access()) out["blocks"] = reader.num_blocks();
    if (!no_stats) {
      nlohmann::json st;
      if (kind == kKindWords) {
        st = {{"documents", n}, {"words", words_total}, {"bytes", bytes_total},
              {"words_per_document", Summary::describe(s1)}, {"bytes_per_word", Summary::describe(s2)}};
        if (!tags.empty()) st["tags"] = tags;
      } else if (kind == kKindExamples) {
        st = {{"examples", n}, {"words", words_total}, {"document_pieces", pieces}, {"prefix_blocks", blocks},
              {"words_per_example", Summary::describe(s1)}, {"documents_per_example", Summary::describe(s2)}};
        if (!tags.empty()) st["words_by_tag"] = tags;
      } else if (kind == kKindImages || kind == kKindVocab) {
        nlohmann::json hist;
        for (auto [w, c] : widths) hist[std::to_string(w)] = c;
        st = {{"images", n}, {"width", Summary::describe(s1)}, {"width_histogram", hist}};
      } else {
        st = {{"records", n}, {"record_bytes", Summary::describe(s1)}};
      }
      out["stats"] = st;
    }
    if (want_images) {
      if (!want_words.empty() && chosen.size() < want_words.size())
        fmt::print(stderr, "ilt-inspect: {} of {} --word values not found in {}\n",
                   want_words.size() - chosen.size(), want_words.size(), path);
      if (!png_dir.empty()) {
        ::mkdir(png_dir.c_str(), 0777);
        for (size_t k = 0; k < chosen.size(); ++k)
          write_png(png_dir + "/" + png_file_name(chosen_index[k], chosen[k].word),
                    {chosen[k].width, chosen[k].height, chosen[k].pixels});
        out["png_written"] = chosen.size();
      }
      if (!sheet.empty()) {
#ifdef ILT_HAVE_RENDER
        if (chosen.empty()) fail("no images selected for the contact sheet");
        RenderOptions lo;
        lo.max_width = 4096;
        Renderer labeler(lo);
        write_png(sheet, contact_sheet(chosen, labeler, columns));
        out["sheet"] = sheet;
#else
        fail("contact sheets need the renderer, which this build lacks (Pango/Cairo not found)");
#endif
      }
    }
    if (as_json) {
      print_stdout(fmt::format("{}\n", out.dump(2)));
      return 0;
    }
    print_stdout(fmt::format("file:     {}\nkind:     {} (format version {})\n", path, kind, reader.version()));
    if (out.contains("records")) print_stdout(fmt::format("records:  {}\n", out["records"].get<uint64_t>()));
    if (out.contains("blocks")) print_stdout(fmt::format("blocks:   {}\n", out["blocks"].get<uint64_t>()));
    print_stdout(fmt::format("meta:     {}\n", reader.meta().dump(2)));
    if (out.contains("stats")) print_stdout(fmt::format("stats:    {}\n", out["stats"].dump(2)));
    if (out.contains("png_written")) print_stdout(fmt::format("png:      {} images -> {}/\n", chosen.size(), png_dir));
    if (out.contains("sheet")) print_stdout(fmt::format("sheet:    {} images -> {}\n", chosen.size(), sheet));
    return 0;
  });
}
