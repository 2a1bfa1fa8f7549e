#include "render/renderer.h"

#include <fstream>

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <hb.h>
#include <pango/pangocairo.h>
#include <pango/pangofc-fontmap.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_diff.h"
#include "common/hash.h"
#include "text/utf8.h"

#if defined(__SANITIZE_ADDRESS__)
#define ILT_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ILT_LSAN 1
#endif
#endif
#ifdef ILT_LSAN
#include <sanitizer/lsan_interface.h>
#endif

namespace ilt {

std::vector<std::string> default_font_files() {
  struct F {
    const char* path;
    const char* package;
  };
  static const F kFonts[] = {
#define NOTO(name) {"/usr/share/fonts/truetype/noto/" name, "fonts-noto-core"}
      NOTO("NotoSans-Regular.ttf"),          NOTO("NotoSansHebrew-Regular.ttf"),
      NOTO("NotoSansArabic-Regular.ttf"),    NOTO("NotoSansDevanagari-Regular.ttf"),
      NOTO("NotoSansBengali-Regular.ttf"),   NOTO("NotoSansThai-Regular.ttf"),
      NOTO("NotoSansLao-Regular.ttf"),       NOTO("NotoSansKhmer-Regular.ttf"),
      NOTO("NotoSansMyanmar-Regular.ttf"),   NOTO("NotoSansGeorgian-Regular.ttf"),
      NOTO("NotoSansArmenian-Regular.ttf"),  NOTO("NotoSansEthiopic-Regular.ttf"),
      NOTO("NotoSansTamil-Regular.ttf"),     NOTO("NotoSansTelugu-Regular.ttf"),
      NOTO("NotoSansKannada-Regular.ttf"),   NOTO("NotoSansMalayalam-Regular.ttf"),
      NOTO("NotoSansGujarati-Regular.ttf"),  NOTO("NotoSansGurmukhi-Regular.ttf"),
      NOTO("NotoSansSinhala-Regular.ttf"),   NOTO("NotoSerifTibetan-Regular.ttf"),
      NOTO("NotoSansMath-Regular.ttf"),      NOTO("NotoSansSymbols-Regular.ttf"),
      NOTO("NotoSansSymbols2-Regular.ttf"),
#undef NOTO
      {"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "fonts-droid-fallback"},
      // Hangul only: Nanum also has Han glyphs, which must not take over Chinese text.
      {"/usr/share/fonts/truetype/nanum/NanumGothic.ttf@1100-11FF,3130-318F,A960-A97F,AC00-D7FF",
       "fonts-nanum"},
      // Monochrome outline emoji: greyscale-friendly and scalable (colour bitmap emoji are not).
      {"/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", "fonts-symbola"},
  };
  std::vector<std::string> out;
  for (const F& f : kFonts) {
    std::string file = parse_font_spec(f.path).file;
    if (::access(file.c_str(), R_OK) != 0)
      fail("font file {} not found: install Debian's {} (scripts/install-deps.sh) or pass --font",
           file, f.package);
    out.push_back(f.path);
  }
  return out;
}

FontSpec parse_font_spec(const std::string& spec) {
  FontSpec fs;
  size_t at = spec.rfind('@');
  fs.file = spec.substr(0, at);
  if (at == std::string::npos) return fs;
  std::string list = spec.substr(at + 1);
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string r = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = r.find('-');
    try {
      size_t used = 0;
      uint32_t a = uint32_t(std::stoul(r.substr(0, dash), &used, 16));
      uint32_t b = dash == std::string::npos ? a : uint32_t(std::stoul(r.substr(dash + 1), nullptr, 16));
      if (a > b || b > 0x10FFFF) throw std::out_of_range(r);
      fs.ranges.push_back({a, b});
    } catch (const std::exception&) {
      fail("bad code point range '{}' in font spec '{}' (use FILE@HEX-HEX,HEX-HEX)", r, spec);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return fs;
}

std::string visible_text(std::string_view word) {
  std::string out;
  out.reserve(word.size());
  for (char ch : word) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20)
      utf8_append(out, 0x2400 + c);
    else if (c == 0x7F)
      utf8_append(out, 0x2421);
    else
      out.push_back(ch);
  }
  return out;
}

static std::vector<std::string> resolve_fonts(const RenderOptions& o) {
  return o.fonts.empty() ? default_font_files() : o.fonts;
}

LibraryVersions render_library_versions() {
  FT_Library ft;
  FT_Int ma = 0, mi = 0, pa = 0;
  if (FT_Init_FreeType(&ft) == 0) {
    FT_Library_Version(ft, &ma, &mi, &pa);
    FT_Done_FreeType(ft);
  }
  const int fc = FcGetVersion();
  return {{"Pango", pango_version_string()},
          {"Cairo", cairo_version_string()},
          {"HarfBuzz", hb_version_string()},
          {"FreeType", fmt::format("{}.{}.{}", ma, mi, pa)},
          {"fontconfig", fmt::format("{}.{}.{}", fc / 10000, fc / 100 % 100, fc % 100)}};
}

nlohmann::json render_manifest(const RenderOptions& o) {
  nlohmann::json fonts = nlohmann::json::array();
  for (const std::string& f : resolve_fonts(o))
    fonts.push_back({{"font", f}, {"sha256", sha256_file(parse_font_spec(f).file)}});
  nlohmann::json versions = nlohmann::json::object();  // keys in lower case: "pango", "harfbuzz"
  for (const auto& [name, version] : render_library_versions()) {
    std::string key = name;
    for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    versions[key] = version;
  }
  return {
      {"height", o.height},
      {"font_px", o.font_px},
      {"patch_width", o.patch_width},
      {"pad", o.pad},
      {"max_width", o.max_width},
      {"family", o.family},
      {"antialias", "gray"},
      {"hinting", "none"},
      {"fonts", fonts},
      {"versions", versions},
  };
}

RenderOptions render_options_from_manifest(const nlohmann::json& m) {
  RenderOptions o;
  o.height = m.at("height").get<int>();
  o.font_px = m.at("font_px").get<double>();
  o.patch_width = m.at("patch_width").get<int>();
  o.pad = m.at("pad").get<int>();
  o.max_width = m.at("max_width").get<int>();
  o.family = m.at("family").get<std::string>();
  for (const auto& f : m.at("fonts")) o.fonts.push_back(f.at("font").get<std::string>());
  return o;
}

std::vector<std::string> render_manifest_differences(const nlohmann::json& recorded) {
  RenderOptions o = render_options_from_manifest(recorded);
  for (const auto& f : o.fonts)
    if (!std::ifstream(parse_font_spec(f).file)) return {"fonts (missing: " + parse_font_spec(f).file + ")"};
  return differing_keys(recorded, render_manifest(o), {"versions"});
}

// Rendering is Pango's itemization (font fallback, bidi) and HarfBuzz shaping, then our own
// compositing of cached glyph bitmaps. Cairo rasterizes each distinct glyph once; drawing a
// word is then a few small alpha blits, which is what makes ~100k words/s per core possible.
// Glyph positions are rounded to whole pixels, as cairo's image backend does.
struct GlyphBitmap {
  int left = 0, top = 0, width = 0, height = 0;  // offset of the bitmap from the pen position
  std::vector<uint8_t> alpha;
};

struct Renderer::Impl {
  RenderOptions opt;
  FcConfig* config = nullptr;
  PangoFontMap* fontmap = nullptr;
  PangoContext* context = nullptr;
  std::string text;
  std::vector<uint8_t> canvas;  // alpha coverage, opt.max_width x opt.height
  // Glyph cache. Fonts are kept referenced so their addresses stay unique keys.
  std::map<std::pair<PangoFont*, PangoGlyph>, GlyphBitmap> glyphs;
  std::vector<PangoFont*> fonts_held;

  // The end of the font map. Pango (1.50) matches and sorts each new font pattern in two
  // detached threads that hold the map, so it may be finalized after our last unref;
  // release() waits for that, so nothing of a Renderer outlives it (found by LeakSanitizer:
  // a tool exiting right after rendering lost the map, its fonts and its FcConfig).
  struct MapEnd {
    FcConfig* pango_config_ref = nullptr;  // Pango < 1.54's reference, released by us
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  std::unique_ptr<MapEnd> map_end = std::make_unique<MapEnd>();

  explicit Impl(RenderOptions o) : opt(std::move(o)) {
    if (opt.height < 1 || opt.height > 4096 || opt.patch_width < 1 || opt.max_width < opt.patch_width ||
        opt.max_width > 65535 || opt.font_px <= 0)
      fail("invalid render settings (height {}, patch width {}, max width {}, font {} px)", opt.height,
           opt.patch_width, opt.max_width, opt.font_px);
    try {
      setup();
    } catch (...) {
      release();
      throw;
    }
  }

  void setup() {
#ifdef ILT_LSAN
    // Pango loads fontconfig's default configuration (FcInit) in a thread of its own, and
    // fontconfig 2.14 leaks a pattern parsing it, once per process. LeakSanitizer's
    // stacks stop at fontconfig's first frame, so it cannot be suppressed by name without
    // hiding every fontconfig object our code leaks: load it here first, not counted.
    static std::once_flag fc_init;
    std::call_once(fc_init, [] {
      __lsan::ScopedDisabler not_counted;
      FcInit();
    });
#endif
    // A private fontconfig world: only our font files, no system or user configuration.
    config = FcConfigCreate();
    for (const std::string& f : resolve_fonts(opt)) add_font(parse_font_spec(f));
    fontmap = pango_cairo_font_map_new_for_font_type(CAIRO_FONT_TYPE_FT);
    if (!fontmap) fail("Pango has no FreeType font map");
    pango_fc_font_map_set_config(PANGO_FC_FONT_MAP(fontmap), config);
    // Pango before 1.54 never releases the reference set_config() takes (fixed upstream by
    // "Fix leak of fontconfig configuration"): every Renderer leaked its FcConfig with all
    // its font patterns, ~60 kB. The hook runs at the very end of the map's finalization.
    if (pango_version() < PANGO_VERSION_ENCODE(1, 54, 0)) map_end->pango_config_ref = config;
    g_object_set_data_full(G_OBJECT(fontmap), "ilt-map-end", map_end.get(), [](gpointer p) {
      auto* e = static_cast<MapEnd*>(p);
      if (e->pango_config_ref) FcConfigDestroy(e->pango_config_ref);
      std::lock_guard<std::mutex> lock(e->m);
      e->done = true;
      e->cv.notify_all();
    });
    context = pango_font_map_create_context(fontmap);
    cairo_font_options_t* fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_subpixel_order(fo, CAIRO_SUBPIXEL_ORDER_DEFAULT);
    pango_cairo_context_set_font_options(context, fo);
    cairo_font_options_destroy(fo);
    pango_cairo_context_set_resolution(context, 96.0);
    PangoFontDescription* fd = pango_font_description_new();
    pango_font_description_set_family(fd, opt.family.c_str());
    pango_font_description_set_absolute_size(fd, opt.font_px * PANGO_SCALE);
    pango_context_set_font_description(context, fd);
    pango_font_description_free(fd);
    pango_context_set_language(context, pango_language_from_string("und"));
    canvas.resize(size_t(opt.max_width) * opt.height);
  }

  // Adds a font file; with ranges, the font claims only those code points (and no
  // languages), so fallback picks it for nothing else.
  void add_font(const FontSpec& fs) {
    const auto* file = reinterpret_cast<const FcChar8*>(fs.file.c_str());
    struct stat st;
    if (::stat(fs.file.c_str(), &st) != 0) fail("font file {}: {}", fs.file, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail("font file {}: not a regular file (give font files, not folders)", fs.file);
    if (fs.ranges.empty()) {
      // fontconfig accepts files without a usable face: count the faces it really added.
      FcFontSet* before = FcConfigGetFonts(config, FcSetApplication);
      int n = before ? before->nfont : 0;
      if (!FcConfigAppFontAddFile(config, file)) fail("cannot load font file {}", fs.file);
      FcFontSet* after = FcConfigGetFonts(config, FcSetApplication);
      if (!after || after->nfont <= n) fail("font file {}: no usable font face in it", fs.file);
      return;
    }
    int count = 0;
    FcPattern* pat = FcFreeTypeQuery(file, 0, nullptr, &count);
    FcCharSet* full = nullptr;
    if (!pat || FcPatternGetCharSet(pat, FC_CHARSET, 0, &full) != FcResultMatch) {
      if (pat) FcPatternDestroy(pat);
      fail("cannot load font file {}", fs.file);
    }
    FcCharSet* only = FcCharSetCreate();
    for (auto [a, b] : fs.ranges)
      for (uint32_t c = a; c <= b; ++c)
        if (FcCharSetHasChar(full, c)) FcCharSetAddChar(only, c);
    FcPatternDel(pat, FC_CHARSET);
    FcPatternAddCharSet(pat, FC_CHARSET, only);
    FcCharSetDestroy(only);
    FcPatternDel(pat, FC_LANG);
    FcFontSet* set = FcConfigGetFonts(config, FcSetApplication);
    if (!set || !FcFontSetAdd(set, pat)) {
      FcPatternDestroy(pat);
      if (!set) fail("font {}: a font limited to code point ranges cannot come first", fs.file);
      fail("cannot add font {}", fs.file);
    }
  }

  ~Impl() { release(); }

  void release() {
    for (PangoFont* f : fonts_held) g_object_unref(f);
    fonts_held.clear();
    if (context) g_object_unref(context);
    context = nullptr;
    if (fontmap) {
      g_object_unref(fontmap);
      fontmap = nullptr;
      // Pango's threads finish in milliseconds; should one hang, leak rather than hang too.
      std::unique_lock<std::mutex> lock(map_end->m);
      if (!map_end->cv.wait_for(lock, std::chrono::seconds(10), [&] { return map_end->done; })) {
        lock.unlock();
        map_end.release();  // the hook still needs it
      }
    }
    if (config) FcConfigDestroy(config);
    config = nullptr;
  }

  const GlyphBitmap& glyph(PangoFont* font, PangoGlyph g) {
    auto key = std::make_pair(font, g);
    auto it = glyphs.find(key);
    if (it != glyphs.end()) return it->second;
    if (std::find(fonts_held.begin(), fonts_held.end(), font) == fonts_held.end())
      fonts_held.push_back(PANGO_FONT(g_object_ref(font)));
    GlyphBitmap bm;
    cairo_scaled_font_t* sf = pango_cairo_font_get_scaled_font(PANGO_CAIRO_FONT(font));
    cairo_glyph_t cg{g, 0, 0};
    cairo_text_extents_t ext;
    cairo_scaled_font_glyph_extents(sf, &cg, 1, &ext);
    if (ext.width > 0 && ext.height > 0) {
      bm.left = int(std::floor(ext.x_bearing)) - 1;
      bm.top = int(std::floor(ext.y_bearing)) - 1;
      bm.width = int(std::ceil(ext.x_bearing + ext.width)) - bm.left + 1;
      bm.height = int(std::ceil(ext.y_bearing + ext.height)) - bm.top + 1;
      cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_A8, bm.width, bm.height);
      cairo_t* cr = cairo_create(s);
      cairo_set_scaled_font(cr, sf);
      cg.x = -bm.left;
      cg.y = -bm.top;
      cairo_show_glyphs(cr, &cg, 1);
      cairo_destroy(cr);
      cairo_surface_flush(s);
      const uint8_t* d = cairo_image_surface_get_data(s);
      int stride = cairo_image_surface_get_stride(s);
      bm.alpha.resize(size_t(bm.width) * bm.height);
      for (int y = 0; y < bm.height; ++y)
        std::memcpy(bm.alpha.data() + size_t(y) * bm.width, d + size_t(y) * stride, size_t(bm.width));
      cairo_surface_destroy(s);
    }
    return glyphs.emplace(key, std::move(bm)).first->second;
  }

  // Alpha "over": a + b - a*b, in exact integer arithmetic.
  void blit(const GlyphBitmap& bm, int x0, int y0, int width) {
    for (int y = std::max(0, -y0 - bm.top); y < bm.height; ++y) {
      int cy = y0 + bm.top + y;
      if (cy >= opt.height) break;
      uint8_t* row = canvas.data() + size_t(cy) * opt.max_width;
      const uint8_t* src = bm.alpha.data() + size_t(y) * bm.width;
      for (int x = std::max(0, -x0 - bm.left); x < bm.width; ++x) {
        int cx = x0 + bm.left + x;
        if (cx >= width) break;
        unsigned a = src[x], b = row[cx];
        row[cx] = uint8_t(a + b - (a * b + 127) / 255);
      }
    }
  }

  // A missing glyph: a hollow box the width of its advance.
  void box(int x0, int baseline, int advance, int width) {
    int top = baseline - int(std::lround(opt.font_px * 0.7)), bottom = baseline - 1;
    int x1 = x0 + 1, x2 = x0 + advance - 2;
    for (int y = std::max(0, top); y <= std::min(bottom, opt.height - 1); ++y)
      for (int x = std::max(0, x1); x <= std::min(x2, width - 1); ++x)
        if (y == top || y == bottom || x == x1 || x == x2) canvas[size_t(y) * opt.max_width + x] = 255;
  }
};

Renderer::Renderer(RenderOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Renderer::~Renderer() = default;
const RenderOptions& Renderer::options() const { return impl_->opt; }

void Renderer::render(std::string_view word, WordImage* out) {
  Impl& m = *impl_;
  const RenderOptions& o = m.opt;
  m.text = visible_text(word);
  const char* t = m.text.data();
  int len = int(m.text.size());

  // Itemize (font fallback, script, bidi level), shape each item, order runs visually.
  // The paragraph direction comes from the first strong character, as in PangoLayout.
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  PangoDirection dir = pango_find_base_dir(t, len);
  G_GNUC_END_IGNORE_DEPRECATIONS
  if (dir == PANGO_DIRECTION_NEUTRAL) dir = PANGO_DIRECTION_LTR;
  GList* items = pango_itemize_with_base_dir(m.context, dir, t, 0, len, nullptr, nullptr);
  GList* visual = pango_reorder_items(items);
  struct Run {
    PangoFont* font;
    PangoGlyphString* glyphs;
  };
  std::vector<Run> runs;
  int logical_w = 0, ascent = 0, descent = 0;
  for (GList* l = visual; l; l = l->next) {
    PangoItem* item = static_cast<PangoItem*>(l->data);
    PangoGlyphString* gs = pango_glyph_string_new();
    pango_shape_with_flags(t + item->offset, item->length, t, len, &item->analysis, gs,
                           PANGO_SHAPE_ROUND_POSITIONS);
    PangoRectangle lr;
    pango_glyph_string_extents(gs, item->analysis.font, nullptr, &lr);
    logical_w += lr.width;
    ascent = std::max(ascent, -lr.y);
    descent = std::max(descent, lr.y + lr.height);
    runs.push_back({item->analysis.font, gs});
  }
  int text_w = PANGO_PIXELS(logical_w);
  int logical_h = PANGO_PIXELS(ascent + descent);

  long want = long(text_w) + 2L * o.pad;
  want = (want + o.patch_width - 1) / o.patch_width * o.patch_width;
  if (want < o.patch_width) want = o.patch_width;
  clipped_ = want > o.max_width;
  int width = clipped_ ? o.max_width / o.patch_width * o.patch_width : int(want);

  for (int y = 0; y < o.height; ++y) std::memset(m.canvas.data() + size_t(y) * o.max_width, 0, size_t(width));
  // Vertically centred on the logical (ascent + descent) box.
  int baseline = int(std::floor((o.height - logical_h) / 2.0)) + PANGO_PIXELS(ascent);
  int pen = o.pad * PANGO_SCALE;
  for (const Run& r : runs) {
    for (int i = 0; i < r.glyphs->num_glyphs; ++i) {
      const PangoGlyphInfo& gi = r.glyphs->glyphs[i];
      int x = PANGO_PIXELS(pen + gi.geometry.x_offset);
      int y = baseline + PANGO_PIXELS(gi.geometry.y_offset);
      if (gi.glyph == PANGO_GLYPH_EMPTY) {
      } else if (gi.glyph & PANGO_GLYPH_UNKNOWN_FLAG) {
        m.box(x, y, PANGO_PIXELS(gi.geometry.width), width);
      } else if (x < width) {
        m.blit(m.glyph(r.font, gi.glyph), x, y, width);
      }
      pen += gi.geometry.width;
    }
    pango_glyph_string_free(r.glyphs);
  }
  g_list_free(visual);
  for (GList* l = items; l; l = l->next) pango_item_free(static_cast<PangoItem*>(l->data));
  g_list_free(items);

  out->word.assign(word);
  out->width = uint16_t(width);
  out->height = uint16_t(o.height);
  out->pixels.resize(size_t(width) * o.height);
  for (int y = 0; y < o.height; ++y) {
    const uint8_t* row = m.canvas.data() + size_t(y) * o.max_width;
    uint8_t* dst = out->pixels.data() + size_t(y) * width;
    for (int x = 0; x < width; ++x) dst[x] = uint8_t(255 - row[x]);
  }
}

}  // namespace ilt
