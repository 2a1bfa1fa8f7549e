// Builds model batches straight from word lists, for the model tests. Word images come from
// the real renderer where this build has one, else from a deterministic pattern of the
// word's bytes (enough for tests that only need distinct images).
#pragma once
#include <unordered_map>

#include "data/examples.h"
#include "data/loader.h"
#include "data/pack.h"
#include "model/model.h"
#include "shard/records.h"
#ifdef ILT_HAVE_RENDER
#include "render/renderer.h"
#endif

namespace ilt::test {

// "a cat " -> {"a ", "cat "}: runs of non-spaces with one trailing space (as the segmenter).
inline std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    else ++j;
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

// A word's "image" without a renderer: its bytes as dark pixels (bit y of byte k at column
// 5 + k, row 4 + y), width growing with the word. Distinct words get distinct images.
inline WordImage pattern_image(const std::string& w, int64_t height = 16, int64_t patch = 16) {
  WordImage img;
  img.word = w;
  img.width = uint16_t(patch * int64_t(1 + w.size() / 4));
  img.height = uint16_t(height);
  img.pixels.assign(size_t(img.width) * size_t(height), 255);
  for (size_t k = 0; k < w.size() && 5 + k < img.width; ++k)
    for (int y = 0; y < 8; ++y)
      if ((uint8_t(w[k]) >> y) & 1) img.pixels[size_t(4 + y) * img.width + 5 + k] = 0;
  return img;
}

class Words {
 public:
  static constexpr int64_t T = 16, H = 16, Wp = 16;

  // patterns: pattern_image() even where a renderer is built in (to match a test's GenerateEnv).
  explicit Words(bool patterns = false) : patterns_(patterns) {}

  uint32_t id(const std::string& w) {
    auto it = ids_.find(w);
    if (it != ids_.end()) return it->second;
#ifdef ILT_HAVE_RENDER
    WordImage img = patterns_ ? pattern_image(w, H, Wp) : renderer_.render(w);
#else
    WordImage img = pattern_image(w, H, Wp);
#endif
    vocab_->push_back(std::move(img));
    return ids_[w] = uint32_t(vocab_->size() - 1);
  }

  // One row per entry; each row holds documents given as texts (BOS is added to each).
  Batch batch(const std::vector<std::vector<std::string>>& rows, LabelMode mode = LabelMode::NextWord) {
    std::vector<std::vector<std::vector<std::string>>> worded;
    for (const auto& docs : rows) {
      worded.emplace_back();
      for (const auto& text : docs) worded.back().push_back(split_words(text));
    }
    return batch_of_words(worded, mode);
  }
  // The same with documents given as word lists (e.g. with "\x0E" and "\x0F" words).
  Batch batch_of_words(const std::vector<std::vector<std::vector<std::string>>>& rows,
                       LabelMode mode = LabelMode::NextWord) {
    return make(examples_of_words(rows, mode));
  }
  std::vector<Example> examples_of_words(const std::vector<std::vector<std::vector<std::string>>>& rows,
                                         LabelMode mode = LabelMode::NextWord, size_t max_seq_length = 100000) {
    std::vector<Example> exs;
    for (const auto& docs : rows) {
      Packer p(PackOptions{mode, size_t(T), max_seq_length, true});
      for (const auto& doc : docs) {
        auto words = with_bos(doc);
        std::vector<uint32_t> ids;
        for (const auto& w : words) ids.push_back(id(w));
        p.add(words, ids, "", "doc");
      }
      for (const Example& ex : p.examples()) exs.push_back(ex);
    }
    return exs;
  }
  Batch make(const std::vector<Example>& exs) {
    std::vector<const std::vector<WordImage>*> vocabs(exs.size(), vocab_.get());
    return make_batch(exs, vocabs, T, H, Wp);
  }

 private:
  bool patterns_ = false;
  std::unordered_map<std::string, uint32_t> ids_;
  std::shared_ptr<std::vector<WordImage>> vocab_ = std::make_shared<std::vector<WordImage>>();
#ifdef ILT_HAVE_RENDER
  Renderer renderer_;
#endif
};

// A very small model for tests.
inline ModelConfig test_config(bool image = true, bool bytes = true) {
  ModelConfig c;
  c.image_encoder = image ? StackConfig{1, 32, 2, 64} : StackConfig{0, 0, 1, 0};
  c.bytes_encoder = bytes ? StackConfig{1, 32, 2, 64} : StackConfig{0, 0, 1, 0};
  c.latent = {2, 48, 2, 96};
  c.bytes_decoder = {1, 32, 2, 64};
  c.max_word_length = int(Words::T);
  c.modality_dropout = 0;
  return c;
}

// Every named preset, sized for the test batches (T = Words::T).
inline const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tiny", "base", "ref-tiny", "ref-small", "welt-tiny", "welt-small"};
  return names;
}
inline ModelConfig test_preset(const std::string& name) {
  ModelConfig c = model_config(name);
  c.max_word_length = int(Words::T);
  return c;
}

// The largest |a - b| relative to the largest |b| (on the CPU, in fp32).
inline double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.detach().to(torch::kCPU, torch::kFloat), y = b.detach().to(torch::kCPU, torch::kFloat);
  double scale = std::max(y.abs().max().item<double>(), 1e-12);
  return (x - y).abs().max().item<double>() / scale;
}

}  // namespace ilt::test
