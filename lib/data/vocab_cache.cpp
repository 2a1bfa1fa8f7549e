#include "data/vocab_cache.h"

#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "data/examples.h"
#include "shard/shard.h"

namespace ilt {

namespace {
// What an entry costs besides its pixels and word: the list and map nodes, the control block.
constexpr size_t kEntryOverhead = 160;
}  // namespace

struct VocabCache::Impl {
  struct Vocab {
    std::string path;
    std::unique_ptr<ShardReader> reader;
    int64_t height = 0, patch_width = 0;
  };
  using Key = uint64_t;  // vocab << 32 | id
  using Entry = std::pair<Key, std::shared_ptr<const WordImage>>;

  size_t capacity;
  mutable std::mutex mu;
  std::vector<Vocab> vocabs;
  std::list<Entry> lru;  // most recent first
  std::unordered_map<Key, std::list<Entry>::iterator> map;
  VocabCacheStats st;

  static size_t cost(const WordImage& w) { return w.pixels.size() + w.word.size() + kEntryOverhead; }

  std::shared_ptr<const WordImage> load(uint32_t v, uint32_t id) {
    Vocab& voc = vocabs[v];
    auto img = std::make_shared<WordImage>();
    try {
      decode_word_image(voc.reader->get(id), img.get());
    } catch (const Error& e) {
      fail("{}: record {}: {}", voc.path, id, e.what());
    }
    if (img->height != voc.height || voc.patch_width <= 0 || img->width % voc.patch_width != 0)
      fail("{}: record {}: image {}x{} does not fit {}-pixel patches of height {}", voc.path, id, img->width,
           img->height, voc.patch_width, voc.height);
    return img;
  }
};

VocabCache::VocabCache(size_t capacity_bytes) : impl_(std::make_unique<Impl>()) { impl_->capacity = capacity_bytes; }
VocabCache::~VocabCache() = default;

uint32_t VocabCache::open(const std::string& path, int64_t height, int64_t patch_width) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (size_t v = 0; v < impl_->vocabs.size(); ++v)
    if (impl_->vocabs[v].path == path) return uint32_t(v);
  Impl::Vocab voc;
  voc.path = path;
  voc.reader = std::make_unique<ShardReader>(path, kKindVocab);
  if (!voc.reader->random_access()) fail("{}: the loader reads vocabularies on demand and needs a file, not a pipe", path);
  voc.height = height;
  voc.patch_width = patch_width;
  impl_->vocabs.push_back(std::move(voc));
  return uint32_t(impl_->vocabs.size() - 1);
}

const std::string& VocabCache::path(uint32_t vocab) const { return impl_->vocabs.at(vocab).path; }

uint64_t VocabCache::size(uint32_t vocab) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->vocabs.at(vocab).reader->size();
}

std::shared_ptr<const WordImage> VocabCache::get(uint32_t vocab, uint32_t id) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const Impl::Key key = (uint64_t(vocab) << 32) | id;
  auto it = m.map.find(key);
  if (it != m.map.end()) {
    ++m.st.hits;
    m.lru.splice(m.lru.begin(), m.lru, it->second);
    return it->second->second;
  }
  ++m.st.misses;
  if (vocab >= m.vocabs.size()) fail("vocabulary {} was never opened", vocab);
  if (id >= m.vocabs[vocab].reader->size())
    fail("{}: word id {} outside the vocabulary ({} words)", m.vocabs[vocab].path, id, m.vocabs[vocab].reader->size());
  std::shared_ptr<const WordImage> img = m.load(vocab, id);
  m.lru.emplace_front(key, img);
  m.map.emplace(key, m.lru.begin());
  m.st.bytes += Impl::cost(*img);
  // Evict from the cold end; callers keep what they hold through their shared_ptr.
  while (m.st.bytes > m.capacity && m.lru.size() > 1) {
    m.st.bytes -= Impl::cost(*m.lru.back().second);
    m.map.erase(m.lru.back().first);
    m.lru.pop_back();
  }
  return img;
}

VocabCacheStats VocabCache::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  VocabCacheStats s = impl_->st;
  s.entries = impl_->lru.size();
  return s;
}

}  // namespace ilt
