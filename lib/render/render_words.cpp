#include "render/render_words.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace ilt {

RenderPool::RenderPool(const RenderOptions& options, int threads) {
  for (int t = 0; t < std::max(1, threads); ++t) renderers_.push_back(std::make_unique<Renderer>(options));
}

void RenderPool::render(const std::vector<std::string>& words, std::vector<WordImage>* out,
                        uint64_t* clipped) {
  out->resize(words.size());
  constexpr size_t kChunk = 64;
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> clip{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&](Renderer* r) {
    try {
      for (size_t begin; (begin = next.fetch_add(kChunk)) < words.size();) {
        size_t end = std::min(words.size(), begin + kChunk);
        for (size_t i = begin; i < end; ++i) {
          r->render(words[i], &(*out)[i]);
          if (r->last_clipped()) ++clip;
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      next = words.size();
    }
  };
  size_t n = std::min(renderers_.size(), (words.size() + kChunk - 1) / kChunk);
  if (n <= 1) {
    work(renderers_[0].get());
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < n; ++t) pool.emplace_back(work, renderers_[t].get());
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
  if (clipped) *clipped += clip;
}

}  // namespace ilt
