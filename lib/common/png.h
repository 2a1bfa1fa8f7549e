// 8-bit greyscale PNG files, for people debugging word images.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ilt {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major, width * height
};

// Encodes to PNG in memory (deterministic: fixed compression settings, no timestamps).
std::string encode_png(const GrayImage& img);
// Writes PATH atomically ("-" = stdout).
void write_png(const std::string& path, const GrayImage& img);
// Reads an 8-bit greyscale PNG (other formats are converted to 8-bit grey).
GrayImage read_png(const std::string& path);

// File name for a word's PNG: "NNNNNN_TEXT.png" where TEXT keeps letters, digits, '.', '_',
// '-' and non-ASCII non-space characters and writes other bytes as %XX (space is %20).
std::string png_file_name(uint64_t index, const std::string& word);

}  // namespace ilt
