#include "common/png.h"

#include <png.h>

#include <cctype>
#include <cstring>

#include "common/error.h"
#include "common/io.h"
#include "text/utf8.h"

namespace ilt {

namespace {
void on_write(png_structp p, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(data), n);
}
void on_flush(png_structp) {}
[[noreturn]] void on_error(png_structp, png_const_charp msg) { throw Error(std::string("PNG: ") + msg); }
void on_warning(png_structp, png_const_charp) {}
}  // namespace

std::string encode_png(const GrayImage& img) {
  if (img.width <= 0 || img.height <= 0 || img.pixels.size() != size_t(img.width) * img.height)
    fail("PNG: bad image {}x{} with {} pixels", img.width, img.height, img.pixels.size());
  std::string out;
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, on_error, on_warning);
  png_infop info = png_create_info_struct(p);
  try {
    png_set_write_fn(p, &out, on_write, on_flush);
    png_set_compression_level(p, 6);
    png_set_IHDR(p, info, png_uint_32(img.width), png_uint_32(img.height), 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < img.height; ++y)
      png_write_row(p, const_cast<png_bytep>(img.pixels.data() + size_t(y) * img.width));
    png_write_end(p, nullptr);
  } catch (...) {
    png_destroy_write_struct(&p, &info);
    throw;
  }
  png_destroy_write_struct(&p, &info);
  return out;
}

void write_png(const std::string& path, const GrayImage& img) { write_file_atomic(path, encode_png(img)); }

namespace {
struct ReadState {
  const std::string* data;
  size_t pos;
};
void on_read(png_structp p, png_bytep out, png_size_t n) {
  auto* s = static_cast<ReadState*>(png_get_io_ptr(p));
  if (s->data->size() - s->pos < n) png_error(p, "truncated file");
  std::memcpy(out, s->data->data() + s->pos, n);
  s->pos += n;
}
}  // namespace

GrayImage read_png(const std::string& path) {
  std::string data = read_all(path);
  if (data.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(data.data()), 0, 8))
    fail("{}: not a PNG file", path);
  GrayImage img;
  png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, on_error, on_warning);
  png_infop info = png_create_info_struct(p);
  ReadState st{&data, 0};
  try {
    png_set_read_fn(p, &st, on_read);
    png_read_info(p, info);
    png_set_expand(p);
    png_set_strip_16(p);
    png_set_strip_alpha(p);
    png_uint_32 ct = png_get_color_type(p, info);
    if (ct & PNG_COLOR_MASK_COLOR) png_set_rgb_to_gray_fixed(p, 1, -1, -1);
    png_read_update_info(p, info);
    img.width = int(png_get_image_width(p, info));
    img.height = int(png_get_image_height(p, info));
    img.pixels.resize(size_t(img.width) * img.height);
    for (int y = 0; y < img.height; ++y) png_read_row(p, img.pixels.data() + size_t(y) * img.width, nullptr);
    png_read_end(p, nullptr);
  } catch (const Error& e) {
    png_destroy_read_struct(&p, &info, nullptr);
    fail("{}: {}", path, e.what());
  }
  png_destroy_read_struct(&p, &info, nullptr);
  return img;
}

std::string png_file_name(uint64_t index, const std::string& word) {
  std::string name = fmt::format("{:06d}_", index);
  const auto* p = reinterpret_cast<const unsigned char*>(word.data());
  for (size_t i = 0; i < word.size() && name.size() < 120;) {
    unsigned char c = p[i];
    size_t len = 1;
    bool keep = std::isalnum(c) || c == '.' || c == '_' || c == '-';
    if (c >= 0x80) {
      len = utf8_seq_len(word, i);
      if (len) {
        char32_t cp = utf8_decode(p + i, &len);
        keep = !(cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
                 (cp >= 0x2028 && cp <= 0x202F) || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF);
      } else {
        len = 1;
      }
    }
    if (keep) {
      name.append(word, i, len);
    } else {
      for (size_t k = 0; k < len; ++k) name += fmt::format("%{:02X}", p[i + k]);
    }
    i += len;
  }
  return name + ".png";
}

}  // namespace ilt
