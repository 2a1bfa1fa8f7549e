// ilt-render: words shard -> images shard (one image per distinct word). See --help.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/png.h"
#include "render/render_words.h"
#include "render/renderer.h"
#include "shard/records.h"
#include "shard/shard.h"
#include "text/utf8.h"

using namespace ilt;

static GrayImage to_gray(const WordImage& w) { return {w.width, w.height, w.pixels}; }

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-render: render every distinct word of words shards as an 8-bit greyscale image\n"
      "(black on white, one line) and write an images shard. Fonts are hermetic: only the\n"
      "given font files are used (default: Noto Sans and script companions, Debian's\n"
      "fonts-noto-core + fonts-droid-fallback + fonts-nanum + fonts-symbola), so output does\n"
      "not depend on the machine's font configuration.\n\n"
      "Examples:\n"
      "  ilt-render words.shard -o images.shard --png-dir pngs/\n"
      "  ilt-render --text 'שלום' --png out.png"};
  std::vector<std::string> inputs, fonts;
  std::string output = "-", png_dir, text, png;
  RenderOptions ro;
  int threads = default_threads();
  one_line_errors(app, "ilt-render");
  add_version_flag(app, "ilt-render",
                   [] { return std::vector<LibraryVersions>{render_library_versions(), libpng_version(), zstd_version()}; });
  app.add_option("inputs", inputs, "Words shards ('-' for stdin)");
  app.add_option("-o,--output", output, "Images shard to write ('-' for stdout)")->capture_default_str();
  app.add_option("--height", ro.height, "Image height in pixels")->capture_default_str()->check(Integer(1, 1024));
  app.add_option("--font-px", ro.font_px, "Font size in pixels")->capture_default_str()->check(Number(1, 512));
  app.add_option("--patch-width", ro.patch_width, "Widths are rounded up to a multiple of this")
      ->capture_default_str()
      ->check(Integer(1, 1024));
  app.add_option("--pad", ro.pad, "Text starts at x = pad; width = text width + 2*pad, rounded up")
      ->capture_default_str()
      ->check(Integer(0, 1024));
  app.add_option("--max-width", ro.max_width,
                 "Maximum image width; wider words are cut there (their right end is lost) and "
                 "counted as clipped in the shard's metadata")
      ->capture_default_str()
      ->check(Integer(1, 1 << 16));
  app.add_option("--family", ro.family, "Font family asked for first (fallback by coverage)")
      ->capture_default_str();
  app.add_option("--font", fonts, "Font file to use, FILE or FILE@HEX-HEX,... to use it only for those code points (repeat; replaces the default set)");
  app.add_option("--threads", threads, "Rendering threads (default: all cores)")->check(Integer(1, 1024));
  std::string part_spec;
  app.add_option("--part", part_spec,
                 "I/N: render only the distinct words whose hash falls in part I of N (0 <= I < N), for N\n"
                 "processes or machines in parallel; ilt-pack takes all N images shards and packs what\n"
                 "it packs from the serial run's");
  app.add_option("--png-dir", png_dir, "Also write every image as DIR/NNNNNN_WORD.png");
  app.add_option("--text", text, "Render this one word (no shards) ...");
  app.add_option("--png", png, "... into this PNG file");
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-render", [&] {
    ro.fonts = fonts;
    if (!text.empty() || !png.empty()) {
      if (text.empty() || png.empty()) fail("--text and --png go together");
      size_t bad = utf8_invalid_offset(text);
      if (bad != text.size()) fail("--text: invalid UTF-8 at byte offset {}", bad);
      Renderer r(ro);
      WordImage img = r.render(text);
      write_png(png, to_gray(img));
      fmt::print(stderr, "ilt-render: '{}' -> {} ({}x{}{})\n", text, png, img.width, img.height,
                 r.last_clipped() ? ", clipped at --max-width" : "");
      return 0;
    }
    if (inputs.empty()) inputs = {"-"};
    uint64_t part = 0, parts = 1;
    if (!part_spec.empty()) {
      unsigned long long i = 0, n = 0;
      char extra = 0;
      if (std::sscanf(part_spec.c_str(), "%llu/%llu%c", &i, &n, &extra) != 2 || n == 0 || i >= n)
        fail("--part {}: expected I/N with 0 <= I < N (e.g. 0/4)", part_spec);
      part = i;
      parts = n;
    }
    if (!png_dir.empty()) ::mkdir(png_dir.c_str(), 0777);

    nlohmann::json manifest = render_manifest(ro);
    nlohmann::json header = {{"tool", "ilt-render"}, {"version", ILT_VERSION}, {"render", manifest},
                             {"params", {{"threads", threads}, {"png_dir", png_dir},
                                         {"part", parts > 1 ? nlohmann::json(part_spec) : nlohmann::json()}}},
                             {"input_names", inputs}};
    // Images are large and compress well even at zstd level 1, which is ~2x faster than 3.
    ShardWriter writer(output, kKindImages, header, ShardWriterOptions{256 << 10, 1});
    RenderPool pool(ro, threads);
    Progress progress("ilt-render", 0);
    std::unordered_set<std::string> seen;
    std::vector<std::string> batch;
    std::vector<WordImage> images;
    uint64_t total_words = 0, distinct = 0, clipped = 0, width_sum = 0, max_w = 0, min_w = ~0ull;
    auto flush = [&] {
      pool.render(batch, &images, &clipped);
      for (size_t i = 0; i < images.size(); ++i) {
        const WordImage& img = images[i];
        writer.add(encode_word_image(img));
        width_sum += img.width;
        max_w = std::max<uint64_t>(max_w, img.width);
        min_w = std::min<uint64_t>(min_w, img.width);
        if (!png_dir.empty())
          write_png(png_dir + "/" + png_file_name(distinct + i, img.word), to_gray(img));
      }
      distinct += batch.size();
      batch.clear();
      progress.update(distinct, "distinct words rendered");
    };
    // The BOS word starts every document at packing time: every images shard has it, first
    // (every part's too: ilt-pack keeps the first of a word's images).
    seen.insert(std::string(1, '\x02'));
    batch.push_back(std::string(1, '\x02'));
    nlohmann::json sources = nlohmann::json::array();
    WordsDoc doc;
    for (const std::string& in : inputs) {
      ShardReader reader(in, kKindWords);
      std::string_view rec;
      while (reader.next(&rec)) {
        try {
          decode_words_doc(rec, &doc);
        } catch (const Error& e) {
          fail("{}: record {}: {}", reader.path(), reader.next_index() - 1, e.what());
        }
        for (std::string& w : doc.words) {
          ++total_words;
          if (parts > 1 && stable_hash(w) % parts != part) continue;  // another part's word
          if (seen.insert(w).second) batch.push_back(std::move(w));
          if (batch.size() >= 16384) flush();
        }
      }
      sources.push_back(shard_source(in, reader.next_index()));
    }
    if (!batch.empty()) flush();
    writer.finish({{"inputs", sources},
                   {"counts", {{"images", distinct}, {"words", total_words}, {"clipped", clipped}}},
                   {"width", {{"min", distinct ? min_w : 0}, {"max", max_w},
                              {"mean", distinct ? double(width_sum) / distinct : 0.0}}}});
    progress.finish(fmt::format("{} distinct of {} words rendered ({} clipped) -> {}", distinct,
                                total_words, clipped, output));
    return 0;
  });
}
