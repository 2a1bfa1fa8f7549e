// Rendering many words in parallel, deterministically.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "render/renderer.h"

namespace ilt {

// A set of renderers, one per thread (building one loads the fonts, so they are kept).
// The result does not depend on the thread count: each image depends only on its word and
// the options.
class RenderPool {
 public:
  RenderPool(const RenderOptions& options, int threads);
  // Renders words[i] into (*out)[i]. Adds the number of images cut at max_width to *clipped.
  void render(const std::vector<std::string>& words, std::vector<WordImage>* out, uint64_t* clipped);
  int threads() const { return int(renderers_.size()); }

 private:
  std::vector<std::unique_ptr<Renderer>> renderers_;
};

}  // namespace ilt
