// Contact sheets: many word images on one PNG, each with its text, for eyeballing data.
#pragma once
#include <vector>

#include "common/png.h"
#include "render/renderer.h"

namespace ilt {

// Lays out `images` in `columns` columns; each cell shows the image scaled by `scale`
// (nearest neighbour, so pixels stay visible) above a label with the word (controls and
// spaces made visible) and its size, drawn with `labeler`.
GrayImage contact_sheet(const std::vector<WordImage>& images, Renderer& labeler, int columns = 4,
                        int scale = 2);

// The word with spaces shown as '␣' and controls as Control Pictures, for labels.
std::string label_text(const std::string& word);

}  // namespace ilt
