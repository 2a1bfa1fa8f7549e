#include "data/loader.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <algorithm>
#include <unordered_map>

#include "common/error.h"
#include "data/examples.h"
#include "data/pack.h"
#include "shard/records.h"
#include "shard/shard.h"

namespace ilt {

Batch make_batch(const std::vector<Example>& exs, const std::vector<const std::vector<WordImage>*>& vocabs,
                 int64_t T, int64_t H, int64_t Wp) {
  std::vector<std::vector<const WordImage*>> words(exs.size());
  for (size_t b = 0; b < exs.size(); ++b)
    for (uint32_t id : exs[b].word_ids) words[b].push_back(&vocabs[b]->at(id));
  return make_batch(exs, words, T, H, Wp);
}

Batch make_batch(const std::vector<Example>& exs, const std::vector<std::vector<const WordImage*>>& words,
                 int64_t T, int64_t H, int64_t Wp) {
  const int64_t B = int64_t(exs.size());
  int64_t Lb = 1;
  for (const Example& ex : exs) Lb = std::max<int64_t>(Lb, int64_t(ex.size()));
  Batch out;
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8);
  out.word_bytes = torch::zeros({B, Lb, T}, u8);
  out.decoder_input = torch::zeros({B, Lb, T}, u8);
  out.decoder_target = torch::zeros({B, Lb, T}, u8);
  out.word_mask = torch::zeros({B, Lb}, torch::kBool);
  out.positions = torch::zeros({B, Lb}, torch::kInt64);
  out.doc_ids = torch::full({B, Lb}, -1, torch::kInt32);
  out.prefix_ids = torch::full({B, Lb}, -1, torch::kInt32);
  out.target_lengths = torch::zeros({B, Lb}, torch::kInt32);
  out.image_index = torch::full({B, Lb}, -1, torch::kInt64);
  out.doc_words = torch::zeros({B, Lb}, torch::kInt32);
  int32_t* dw = out.doc_words.data_ptr<int32_t>();
  out.doc_tags.resize(size_t(B));
  uint8_t* wb = out.word_bytes.data_ptr<uint8_t>();
  uint8_t* di = out.decoder_input.data_ptr<uint8_t>();
  uint8_t* dt = out.decoder_target.data_ptr<uint8_t>();
  bool* wm = out.word_mask.data_ptr<bool>();
  int64_t* pos = out.positions.data_ptr<int64_t>();
  int32_t* doc = out.doc_ids.data_ptr<int32_t>();
  int32_t* pre = out.prefix_ids.data_ptr<int32_t>();
  int32_t* tl = out.target_lengths.data_ptr<int32_t>();
  int64_t* img = out.image_index.data_ptr<int64_t>();
  // Distinct images of the batch, in order of first use: image -> index.
  std::unordered_map<const WordImage*, int64_t> distinct;
  std::vector<const WordImage*> images;
  std::string unique_bytes;  // N x T
  for (int64_t b = 0; b < B; ++b) {
    const Example& ex = exs[b];
    const std::vector<const WordImage*>& word = words[b];
    if (word.size() != ex.size()) fail("make_batch: {} images for {} words", word.size(), ex.size());
    int64_t l = 0;
    for (size_t d = 0; d < ex.docs.size(); ++d) {
      out.doc_tags[size_t(b)].push_back(ex.docs[d].tag);
      for (uint32_t k = 0; k < ex.docs[d].length; ++k, ++l) {
        pos[b * Lb + l] = ex.docs[d].first_position + k;
        doc[b * Lb + l] = int32_t(d);
        dw[b * Lb + l] = int32_t(ex.docs[d].doc_words);
      }
    }
    for (size_t p = 0; p < ex.prefix_blocks.size(); ++p)
      for (uint32_t k = ex.prefix_blocks[p].begin; k < ex.prefix_blocks[p].end; ++k) pre[b * Lb + k] = int32_t(p);
    // Labels a prefix block shows its own words are not trained on (done here, not in
    // ilt-pack, so shards packed before the rule are read right too).
    std::vector<char> ignored(ex.size(), 0);
    for (uint32_t k : ignored_labels(ex, [&](size_t l) -> std::string_view { return word[l]->word; }))
      ignored[k] = 1;
    for (l = 0; l < int64_t(ex.size()); ++l) {
      const int64_t bl = b * Lb + l;
      wm[bl] = true;
      std::string in = word_input_bytes(word[size_t(l)]->word, size_t(T));
      std::memcpy(wb + bl * T, in.data(), in.size());
      if (!ignored[size_t(l)]) {
        std::string_view label = cut_label(ex.labels[l], size_t(T));
        di[bl * T] = kBos;
        std::memcpy(di + bl * T + 1, label.data(), label.size());
        std::memcpy(dt + bl * T, label.data(), label.size());
        dt[bl * T + label.size()] = kEos;
        tl[bl] = int32_t(label.size() + 1);
        out.label_bytes += int64_t(label.size());
        ++out.labels;
      }
      auto [it, fresh] = distinct.try_emplace(word[size_t(l)], int64_t(images.size()));
      if (fresh) {
        images.push_back(word[size_t(l)]);
        unique_bytes.append(in);
        unique_bytes.append(size_t(T) - in.size(), char(kPad));
      }
      img[bl] = it->second;
    }
    out.words += int64_t(ex.size());
  }
  out.unique_word_bytes = torch::empty({int64_t(images.size()), T}, u8);
  std::memcpy(out.unique_word_bytes.data_ptr<uint8_t>(), unique_bytes.data(), unique_bytes.size());
  // Patches packed image after image, no padding to the widest image (NaViT style).
  int64_t P = 0;
  out.image_patch_counts = torch::empty({int64_t(images.size())}, torch::kInt64);
  int64_t* counts = out.image_patch_counts.data_ptr<int64_t>();
  for (size_t n = 0; n < images.size(); ++n) P += counts[n] = images[n]->width / Wp;
  out.image_patches = torch::empty({P, H, Wp}, u8);
  uint8_t* pp = out.image_patches.data_ptr<uint8_t>();
  for (const WordImage* im : images) {
    if (im->height != H || im->width % Wp != 0)
      fail("image of {} is {}x{}, not rows of {}x{} patches", nlohmann::json(im->word).dump(), im->width, im->height, H, Wp);
    for (int64_t p = 0; p < im->width / Wp; ++p, pp += H * Wp)
      for (int64_t y = 0; y < H; ++y) std::memcpy(pp + y * Wp, im->pixels.data() + y * im->width + p * Wp, size_t(Wp));
  }
  out.layout = batch_layout(out);
  return out;
}

BatchLayout batch_layout(const Batch& b) {
  BatchLayout lay;
  auto cpu = [](const torch::Tensor& t, torch::Dtype d) { return t.to(torch::kCPU, d).contiguous(); };
  auto counts = cpu(b.image_patch_counts, torch::kLong);
  lay.patch_counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  // Real length: last non-PAD byte + 1 (a NUL word, [BOS 0 EOS], keeps its 0).
  auto bytes = cpu(b.unique_word_bytes, torch::kUInt8);
  const int64_t N = bytes.size(0), T = bytes.size(1);
  const uint8_t* u = bytes.data_ptr<uint8_t>();
  for (int64_t n = 0; n < N; ++n) {
    int64_t len = T;
    while (len > 0 && u[n * T + len - 1] == kPad) --len;
    lay.word_lengths.push_back(len);
  }
  auto tl = cpu(b.target_lengths, torch::kLong);
  const int64_t* t = tl.data_ptr<int64_t>();
  for (int64_t i = 0; i < tl.numel(); ++i)
    if (t[i] > 0) {
      lay.label_rows.push_back(i);
      lay.label_lengths.push_back(t[i]);
      lay.target_bytes += t[i];
    }
  auto doc = cpu(b.doc_ids, torch::kLong);
  const int64_t rows = doc.size(0), L = doc.size(1);
  const int64_t* d = doc.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t l = 0; l < L; ++l) {
      const int64_t id = d[r * L + l];
      if (id < 0) continue;
      if (l > 0 && d[r * L + l - 1] == id) ++lay.piece_lengths.back();
      else lay.piece_lengths.push_back(1);
    }
  lay.filled = true;
  return lay;
}

namespace {
// One examples shard, read on demand.
struct Source {
  std::string path;
  std::unique_ptr<ShardReader> reader;
  uint32_t vocab = 0;   // in the VocabCache
  uint64_t base = 0;    // global id of its record 0
};
// A run of records of one shard: a block, in an epoch's stream.
struct Unit {
  uint32_t source = 0;
  uint64_t first = 0, count = 0;
};
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}
}  // namespace

struct DataLoader::Impl {
  LoaderOptions opt;
  std::vector<Source> sources;
  uint64_t total = 0;
  nlohmann::json meta;
  int64_t T = 0, L = 0, H = 0, Wp = 0;
  std::unique_ptr<VocabCache> vocab;
  mutable std::mutex read_mu;  // the shard readers (loader thread and build())

  // Prefetching.
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> ready;
  bool stop = false, done = false;
  std::exception_ptr error;
  LoaderState produce_state, consumed_state;
  std::vector<std::string> spill;  // the loader thread's, see next_examples

  void load(const std::string& path, bool first) {
    Source src;
    src.path = path;
    src.reader = std::make_unique<ShardReader>(path, kKindExamples);
    const ShardReader& r = *src.reader;
    if (!r.random_access()) fail("{}: the loader streams examples shards by block and needs a file, not a pipe", path);
    if (first) {
      meta = r.header();
      T = meta.at("params").at("max_word_length").get<int64_t>();
      L = meta.at("params").at("max_seq_length").get<int64_t>();
      H = meta.at("render").at("height").get<int64_t>();
      Wp = meta.at("render").at("patch_width").get<int64_t>();
    } else {
      for (const char* k : {"max_word_length", "max_seq_length", "labels"})
        if (r.header()["params"][k] != meta["params"][k])
          fail("{}: packed with {} = {}, unlike {} ({})", path, k, r.header()["params"][k].dump(),
               sources[0].path, meta["params"][k].dump());
      if (r.header()["render"] != meta["render"])
        fail("{}: its images were rendered with other settings than {}'s", path, sources[0].path);
    }
    src.vocab = vocab->open(vocab_path(path, r.header()), H, Wp);
    src.base = total;
    total += r.size();
    sources.push_back(std::move(src));
  }

  std::pair<uint32_t, uint64_t> locate(uint64_t id) const {
    if (id >= total) fail("example {} out of range ({} examples)", id, total);
    auto it = std::upper_bound(sources.begin(), sources.end(), id, [](uint64_t v, const Source& s) { return v < s.base; });
    const uint32_t s = uint32_t(it - sources.begin()) - 1;
    return {s, id - sources[s].base};
  }

  // Epoch `epoch`'s stream: shards in a seeded order, each one's blocks in a seeded order.
  std::vector<Unit> units(uint64_t epoch) const {
    std::vector<uint32_t> shard_order(sources.size());
    for (uint32_t i = 0; i < shard_order.size(); ++i) shard_order[i] = i;
    if (opt.shuffle) seeded_shuffle(&shard_order, mix(mix(opt.seed, epoch), 1));
    std::vector<Unit> out;
    for (uint32_t s : shard_order) {
      const ShardReader& r = *sources[s].reader;
      std::vector<uint64_t> blocks(r.num_blocks());
      for (uint64_t b = 0; b < blocks.size(); ++b) blocks[b] = b;
      if (opt.shuffle) seeded_shuffle(&blocks, mix(mix(mix(opt.seed, epoch), 2), s));
      for (uint64_t b : blocks)
        if (r.block_records(b) > 0) out.push_back({s, r.block_first(b), r.block_records(b)});
    }
    return out;
  }

  // One shuffle window of an epoch: its global ids in the order served, with their records
  // (records left empty when `with_records` is false).
  struct Window {
    uint64_t epoch = ~0ull, index = ~0ull;
    std::vector<uint64_t> ids;
    std::vector<std::string> records;
  };
  struct EpochPlan {
    uint64_t epoch = ~0ull;
    std::vector<Unit> units;
    std::vector<uint64_t> starts;  // stream position of each unit's first record
  };

  // Without shuffling the window is only how far the loader reads ahead (the order is the
  // shards' own), so an evaluation pass holds no more records than training does.
  uint64_t window_size() const { return std::max<uint64_t>(1, opt.shuffle_buffer); }

  void plan(uint64_t epoch, EpochPlan* p) const {
    if (p->epoch == epoch) return;
    p->epoch = epoch;
    p->units = units(epoch);
    p->starts.clear();
    uint64_t at = 0;
    for (const Unit& u : p->units) {
      p->starts.push_back(at);
      at += u.count;
    }
  }

  void fill_window(uint64_t epoch, uint64_t w, EpochPlan* p, Window* win, bool with_records) const {
    plan(epoch, p);
    const uint64_t W = window_size(), lo = w * W, hi = std::min(total, lo + W);
    win->epoch = epoch;
    win->index = w;
    win->ids.clear();
    win->records.clear();
    size_t u = size_t(std::upper_bound(p->starts.begin(), p->starts.end(), lo) - p->starts.begin()) - 1;
    std::unique_lock<std::mutex> lock(read_mu, std::defer_lock);
    if (with_records) lock.lock();
    for (uint64_t at = lo; at < hi; ++u) {
      const Unit& un = p->units[u];
      const uint64_t from = at - p->starts[u], to = std::min(un.count, hi - p->starts[u]);
      for (uint64_t k = from; k < to; ++k, ++at) {
        win->ids.push_back(sources[un.source].base + un.first + k);
        if (with_records) win->records.emplace_back(sources[un.source].reader->get(un.first + k));
      }
    }
    if (opt.shuffle) {
      std::vector<uint32_t> perm(win->ids.size());
      for (uint32_t i = 0; i < perm.size(); ++i) perm[i] = i;
      seeded_shuffle(&perm, mix(mix(mix(opt.seed, epoch), 3), w));
      std::vector<uint64_t> ids(perm.size());
      std::vector<std::string> recs(with_records ? perm.size() : 0);
      for (size_t i = 0; i < perm.size(); ++i) {
        ids[i] = win->ids[perm[i]];
        if (with_records) recs[i] = std::move(win->records[perm[i]]);
      }
      win->ids = std::move(ids);
      win->records = std::move(recs);
    }
  }

  // Decodes examples and builds their batch; records[b] is example ids[b]'s record.
  Batch build_records(const std::vector<uint64_t>& ids, const std::vector<std::string_view>& records) const {
    std::vector<Example> exs(ids.size());
    std::vector<std::vector<const WordImage*>> words(ids.size());
    // Each distinct (vocabulary, id) is fetched once and held until the batch is built, so
    // the batch does not depend on what the cache evicts meanwhile.
    std::unordered_map<uint64_t, std::shared_ptr<const WordImage>> held;
    for (size_t b = 0; b < ids.size(); ++b) {
      auto [s, i] = locate(ids[b]);
      try {
        decode_example(records[b], &exs[b]);
      } catch (const Error& e) {
        fail("{}: record {}: {}", sources[s].path, i, e.what());
      }
      const uint32_t v = sources[s].vocab;
      for (uint32_t id : exs[b].word_ids) {
        auto& img = held[(uint64_t(v) << 32) | id];
        if (!img) {
          try {
            img = vocab->get(v, id);
          } catch (const Error& e) {
            fail("{}: record {}: {}", sources[s].path, i, e.what());
          }
        }
        words[b].push_back(img.get());
      }
    }
    Batch out = make_batch(exs, words, T, H, Wp);
    out.example_ids = ids;
    return out;
  }

  Batch build(const std::vector<uint64_t>& ids) const {
    std::vector<std::string> recs;
    {
      std::lock_guard<std::mutex> lock(read_mu);
      for (uint64_t id : ids) {
        auto [s, i] = locate(id);
        recs.emplace_back(sources[s].reader->get(i));
      }
    }
    return build_records(ids, std::vector<std::string_view>(recs.begin(), recs.end()));
  }

  static void pin(Batch* b) {
    for (torch::Tensor* t : {&b->word_bytes, &b->word_mask, &b->positions, &b->doc_ids, &b->prefix_ids,
                             &b->decoder_input, &b->decoder_target, &b->target_lengths, &b->image_index,
                             &b->image_patches, &b->image_patch_counts, &b->unique_word_bytes})
      if (t->defined()) *t = t->pin_memory();
  }

  // The next batch's examples from state `st` on (ids and records); false when a finite pass
  // is over.
  bool next_examples(LoaderState* st, EpochPlan* p, Window* win, std::vector<uint64_t>* ids,
                     std::vector<std::string_view>* recs) {
    ids->clear();
    recs->clear();
    if (total == 0) return false;
    // Records of a batch that spans windows are copied out of the old window (reserved so
    // the views stay valid).
    spill.clear();
    spill.reserve(opt.batch_size);
    size_t spilled = 0;
    while (ids->size() < opt.batch_size) {
      if (st->cursor >= total) {
        if (!opt.infinite) break;
        ++st->epoch;
        st->cursor = 0;
      }
      const uint64_t W = window_size(), w = st->cursor / W;
      if (win->epoch != st->epoch || win->index != w) {
        // Moving on: keep the views into the old window alive as copies.
        for (; spilled < recs->size(); ++spilled) {
          spill.emplace_back((*recs)[spilled]);
          (*recs)[spilled] = spill.back();
        }
        fill_window(st->epoch, w, p, win, true);
      }
      const uint64_t k = st->cursor - w * W;
      ids->push_back(win->ids[k]);
      recs->push_back(win->records[k]);
      ++st->cursor;
    }
    return !ids->empty();
  }

  void run() {
    try {
      LoaderState st = produce_state;
      EpochPlan p;
      Window win;
      std::vector<uint64_t> ids;
      std::vector<std::string_view> recs;
      for (;;) {
        uint64_t epoch = st.epoch;
        if (st.cursor >= total && opt.infinite) epoch = st.epoch + 1;
        if (!next_examples(&st, &p, &win, &ids, &recs)) break;
        if (opt.parts > 1) {  // this rank's part of the global batch
          const size_t n = ids.size(), lo = opt.part * n / opt.parts, hi = (opt.part + 1) * n / opt.parts;
          ids = std::vector<uint64_t>(ids.begin() + long(lo), ids.begin() + long(hi));
          recs = std::vector<std::string_view>(recs.begin() + long(lo), recs.begin() + long(hi));
        }
        Batch b = build_records(ids, recs);
        if (opt.pin_memory) pin(&b);
        b.epoch = epoch;
        b.next_state = st;
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || int(ready.size()) < std::max(1, opt.prefetch); });
        if (stop) return;
        ready.push_back(std::move(b));
        cv.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
};

DataLoader::DataLoader(const std::vector<std::string>& paths, LoaderOptions options, LoaderState start)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  if (m.opt.batch_size == 0) fail("batch size must be at least 1");
  if (m.opt.parts == 0 || m.opt.part >= m.opt.parts) fail("loader part {} of {}: out of range", m.opt.part, m.opt.parts);
  if (m.opt.parts > 1 && m.opt.batch_size < m.opt.parts)
    fail("batch size {} is smaller than the {} ranks sharing it: each rank needs at least one example", m.opt.batch_size,
         m.opt.parts);
  if (paths.empty()) fail("no examples shards given");
  m.vocab = std::make_unique<VocabCache>(m.opt.vocab_cache_bytes);
  for (size_t i = 0; i < paths.size(); ++i) m.load(paths[i], i == 0);
  if (start.cursor > m.total) fail("loader state cursor {} past the {} examples", start.cursor, m.total);
  m.produce_state = m.consumed_state = start;
  if (m.opt.prefetch > 0) m.worker = std::thread([&m] { m.run(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

std::optional<Batch> DataLoader::next() {
  Impl& m = *impl_;
  if (!m.worker.joinable()) fail("data loader opened without prefetching (prefetch 0): use build()");
  std::unique_lock<std::mutex> lock(m.mu);
  m.cv.wait(lock, [&] { return !m.ready.empty() || m.done; });
  if (m.ready.empty()) {
    if (m.error) std::rethrow_exception(m.error);
    return std::nullopt;
  }
  Batch b = std::move(m.ready.front());
  m.ready.pop_front();
  m.consumed_state = b.next_state;
  m.cv.notify_all();
  return b;
}

LoaderState DataLoader::state() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->consumed_state;
}
uint64_t DataLoader::num_examples() const { return impl_->total; }
int64_t DataLoader::max_word_length() const { return impl_->T; }
int64_t DataLoader::max_seq_length() const { return impl_->L; }
const nlohmann::json& DataLoader::meta() const { return impl_->meta; }
Batch DataLoader::build(const std::vector<uint64_t>& ids) const { return impl_->build(ids); }
VocabCacheStats DataLoader::vocab_stats() const { return impl_->vocab->stats(); }

std::vector<uint64_t> DataLoader::order(uint64_t epoch, uint64_t from, uint64_t count) const {
  const Impl& m = *impl_;
  std::vector<uint64_t> out;
  Impl::EpochPlan p;
  Impl::Window win;
  const uint64_t W = m.window_size();
  for (uint64_t c = from; c < std::min(m.total, from + count); ++c) {
    if (win.index != c / W) m.fill_window(epoch, c / W, &p, &win, false);
    out.push_back(win.ids[c - (c / W) * W]);
  }
  return out;
}

}  // namespace ilt
