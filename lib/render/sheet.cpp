#include "render/sheet.h"

#include <fmt/format.h>

#include <algorithm>

#include "text/utf8.h"

namespace ilt {

std::string label_text(const std::string& word) {
  std::string out;
  for (char c : visible_text(word)) {
    if (c == ' ')
      utf8_append(out, 0x2423);
    else
      out.push_back(c);
  }
  return out;
}

GrayImage contact_sheet(const std::vector<WordImage>& images, Renderer& labeler, int columns, int scale) {
  constexpr int kGap = 8;
  columns = std::max(1, std::min<int>(columns, int(images.size())));
  std::vector<WordImage> labels;
  int cell_w = 0, cell_h = 0;
  for (const WordImage& img : images) {
    labels.push_back(labeler.render(fmt::format("{}  {}x{}", label_text(img.word), img.width, img.height)));
    cell_w = std::max({cell_w, img.width * scale, int(labels.back().width)});
    cell_h = std::max(cell_h, img.height * scale + labels.back().height);
  }
  int rows = (int(images.size()) + columns - 1) / columns;
  GrayImage sheet;
  sheet.width = std::max(1, columns * (cell_w + kGap) + kGap);
  sheet.height = std::max(1, rows * (cell_h + kGap) + kGap);
  sheet.pixels.assign(size_t(sheet.width) * sheet.height, 200);  // grey paper shows image edges
  auto blit = [&](const WordImage& img, int x0, int y0, int s) {
    for (int y = 0; y < img.height * s; ++y)
      for (int x = 0; x < img.width * s; ++x)
        sheet.pixels[size_t(y0 + y) * sheet.width + x0 + x] = img.pixels[size_t(y / s) * img.width + x / s];
  };
  for (size_t i = 0; i < images.size(); ++i) {
    int x0 = kGap + int(i % columns) * (cell_w + kGap);
    int y0 = kGap + int(i / columns) * (cell_h + kGap);
    blit(images[i], x0, y0, scale);
    blit(labels[i], x0, y0 + images[i].height * scale, 1);
  }
  return sheet;
}

}  // namespace ilt
