// Word renderer: one line of text -> an 8-bit greyscale image (black ink on white).
//
// Hermetic: it sees only the font files it is given, through a private fontconfig
// configuration (never the machine's), with hinting and antialiasing fixed, so the same
// words and fonts give the same pixels on any machine. Not thread-safe: one per thread.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/version.h"
#include "shard/records.h"

namespace ilt {

struct RenderOptions {
  int height = 16;         // image height in pixels (one patch row)
  double font_px = 12.0;   // font size in pixels
  int patch_width = 16;    // widths are rounded up to a multiple of this
  int pad = 5;             // text starts at x = pad; width = text width + 2 * pad, rounded up
  int max_width = 512;     // wider words are cut at max_width (their right end is lost)
  std::string family = "Noto Sans";
  // Font files, each "FILE" or "FILE@HEX-HEX,..." (use the font only for those code
  // points). Empty: default_font_files().
  std::vector<std::string> fonts;
};

struct FontSpec {
  std::string file;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // empty: the whole font
};
FontSpec parse_font_spec(const std::string& spec);

// The default font set: Noto Sans and its script companions from Debian's fonts-noto-core,
// Droid Sans Fallback (Han and kana, fonts-droid-fallback), Nanum Gothic (Hangul,
// fonts-nanum) and Symbola (emoji and symbols,
// fonts-symbola). Throws ilt::Error naming a missing file and its package.
std::vector<std::string> default_font_files();

// The versions of Pango, Cairo, HarfBuzz, FreeType and fontconfig loaded at run time (the
// libraries that decide the pixels), for --version and the manifest.
LibraryVersions render_library_versions();

// Renderer settings, font files with SHA-256, and library versions, for shard metadata.
nlohmann::json render_manifest(const RenderOptions& options);

// The options a manifest records (the inverse of render_manifest, fonts as recorded).
RenderOptions render_options_from_manifest(const nlohmann::json& manifest);
// Keys of `recorded` (a manifest) whose values differ from this machine's manifest of the same
// options: settings, and font files by SHA-256 (library versions are not compared). Empty if
// rendering here reproduces the recorded images' settings.
std::vector<std::string> render_manifest_differences(const nlohmann::json& recorded);

// What is drawn for a word: C0 controls become Control Pictures (U+2400 + code, DEL U+2421).
std::string visible_text(std::string_view word);

class Renderer {
 public:
  explicit Renderer(RenderOptions options = {});
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Renders `word` (valid UTF-8) into *out (reusing its storage).
  void render(std::string_view word, WordImage* out);
  WordImage render(std::string_view word) {
    WordImage img;
    render(word, &img);
    return img;
  }
  // True if the last render() was cut at max_width.
  bool last_clipped() const { return clipped_; }
  const RenderOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool clipped_ = false;
};

}  // namespace ilt
