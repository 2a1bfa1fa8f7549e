#include "data/pack_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/io.h"
#include "shard/records.h"
#include "shard/series.h"
#include "shard/shard.h"

namespace ilt {

namespace {

constexpr uint32_t kNone = ~0u;

// Word -> image record number, keyed by the word's 64-bit stable_hash (open addressing, 12
// bytes a slot, at most half full): ~24 bytes per distinct word, not the words themselves.
// A collision cannot go unnoticed: every vocabulary id also keeps a second, independent hash
// of its word, checked against the image's word when the vocabulary is written.
class WordIndex {
 public:
  void insert(uint64_t h, uint32_t record) {  // keeps the first record of a word
    if (2 * (n_ + 1) > keys_.size()) grow();
    size_t i = slot(h);
    if (keys_[i] == 0) {
      keys_[i] = key(h);
      vals_[i] = record;
      ++n_;
    }
  }
  uint32_t find(uint64_t h) const {
    if (keys_.empty()) return kNone;
    const size_t i = slot(h);
    return keys_[i] ? vals_[i] : kNone;
  }

 private:
  static uint64_t key(uint64_t h) { return h ? h : 1; }  // 0 marks an empty slot
  size_t slot(uint64_t h) const {
    const uint64_t k = key(h);
    size_t i = size_t(k * 0x9E3779B97F4A7C15ull) & (keys_.size() - 1);
    while (keys_[i] != 0 && keys_[i] != k) i = (i + 1) & (keys_.size() - 1);
    return i;
  }
  void grow() {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<uint32_t> vals = std::move(vals_);
    keys_.assign(std::max<size_t>(1024, keys.size() * 2), 0);
    vals_.assign(keys_.size(), 0);
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i]) {
        const size_t j = slot(keys[i]);
        keys_[j] = keys[i];
        vals_[j] = vals[i];
      }
  }
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> vals_;
  size_t n_ = 0;
};

uint64_t check_hash(std::string_view w) { return std::hash<std::string_view>{}(w); }

uint64_t chunk_seed(uint64_t seed, uint64_t chunk) { return seed ^ (chunk * 0x9E3779B97F4A7C15ull); }

// One output split: its packer, vocabulary ids, examples shards and spill buckets.
struct Split {
  std::string name;
  std::unique_ptr<Packer> packer;
  std::vector<uint32_t> id_of_image;  // image record -> vocabulary id (kNone: unused)
  std::vector<uint32_t> image_of_id;  // vocabulary id -> image record
  std::vector<uint64_t> check;        // vocabulary id -> check_hash(word)
  std::vector<std::string> chunk;     // encoded examples waiting to be shuffled and written
  uint64_t chunk_bytes = 0, chunks = 0;
  std::unique_ptr<ShardSeries> shards;
  uint64_t examples = 0, words = 0, pieces = 0;
};

}  // namespace

std::vector<PackSplitResult> pack_files(const PackFilesOptions& o) {
  const PackOptions& po = o.pack;
  // 1. Images: the hash index of their words (in record order over all shards).
  WordIndex index;
  nlohmann::json render, image_sources = nlohmann::json::array();
  uint32_t images = 0;
  for (const std::string& path : o.images) {
    ShardReader r(path, kKindImages);
    nlohmann::json rm = r.header().value("render", nlohmann::json());
    if (render.is_null()) render = rm;
    else if (rm != render)
      fail("{}: rendered with other settings or fonts than {}; pack images of one renderer", path, o.images[0]);
    std::string_view rec;
    while (r.next(&rec)) {
      try {
        index.insert(stable_hash(word_image_word(rec)), images);
      } catch (const Error& e) {
        fail("{}: record {}: {}", path, r.next_index() - 1, e.what());
      }
      if (++images == kNone) fail("{}: more than {} images", path, kNone - 1);
    }
    image_sources.push_back(shard_source(path, r.next_index()));
  }

  nlohmann::json params = {{"labels", label_mode_name(po.labels)}, {"max_word_length", po.max_word_length},
                           {"max_seq_length", po.max_seq_length}, {"packing", po.packing},
                           {"validation_fraction", o.validation_fraction}, {"seed", o.seed}};
  auto warn = [](const std::string& m) { fmt::print(stderr, "ilt-pack: warning: {}\n", m); };
  std::vector<Split> splits(o.validation_fraction > 0 ? 2 : 1);
  splits[0].name = "train";
  if (splits.size() > 1) splits[1].name = "validation";
  auto vocab_file = [&](const Split& sp) { return o.prefix + "." + sp.name + ".vocab"; };
  auto header = [&](const Split& sp) {
    return nlohmann::json{{"tool", "ilt-pack"}, {"version", ILT_VERSION}, {"split", sp.name}, {"params", params},
                          {"render", render}, {"vocab", vocab_name(vocab_file(sp))}};
  };
  for (Split& sp : splits) {
    sp.packer = std::make_unique<Packer>(po, warn);
    sp.shards = std::make_unique<ShardSeries>(o.prefix + "." + sp.name + ".examples", kKindExamples, header(sp),
                                              o.shard_bytes);
    sp.id_of_image.assign(images, kNone);
  }

  // 2. Words: examples written as they fill, through shuffled chunks.
  auto write_chunk = [&](Split& sp) {
    seeded_shuffle(&sp.chunk, chunk_seed(o.seed, sp.chunks++));
    for (const std::string& rec : sp.chunk) sp.shards->add(rec);
    sp.chunk.clear();
    sp.chunk_bytes = 0;
  };
  auto take = [&](Split& sp, bool all) {
    for (Example& ex : sp.packer->take_complete(all)) {
      sp.examples += 1;
      sp.words += ex.size();
      sp.pieces += ex.docs.size();
      sp.chunk.push_back(encode_example(ex));
      sp.chunk_bytes += sp.chunk.back().size();
    }
    if (sp.chunk_bytes >= std::min(o.chunk_bytes, o.shard_bytes ? o.shard_bytes : o.chunk_bytes) || (all && !sp.chunk.empty()))
      write_chunk(sp);
  };

  Progress progress("ilt-pack", 0);
  nlohmann::json sources = nlohmann::json::array();
  WordsDoc doc;
  std::vector<uint32_t> ids;
  for (const std::string& path : o.inputs) {
    ShardReader r(path, kKindWords);
    std::string_view rec;
    while (r.next(&rec)) {
      const uint64_t i = r.next_index() - 1;
      try {
        decode_words_doc(rec, &doc);
      } catch (const Error& e) {
        fail("{}: record {}: {}", path, i, e.what());
      }
      std::vector<std::string> words = with_bos(doc.words);
      Split& sp = splits[is_validation(doc.text(), o.validation_fraction) && splits.size() > 1 ? 1 : 0];
      ids.resize(words.size());
      for (size_t k = 0; k < words.size(); ++k) {
        const uint32_t img = index.find(stable_hash(words[k]));
        if (img == kNone)
          fail("{}: document {} (record {}): word {} has no image in {}; render this words shard "
               "with ilt-render and pack it with that images shard",
               path, nlohmann::json(doc.id).dump(), i, nlohmann::json(words[k]).dump(), fmt::join(o.images, ", "));
        uint32_t& id = sp.id_of_image[img];
        if (id == kNone) {
          id = uint32_t(sp.image_of_id.size());
          sp.image_of_id.push_back(img);
          sp.check.push_back(check_hash(words[k]));
        }
        ids[k] = id;
      }
      sp.packer->add(words, ids, doc.tag, doc.id);
      take(sp, false);
      progress.update(splits[0].packer->words() + (splits.size() > 1 ? splits[1].packer->words() : 0), "words packed");
    }
    sources.push_back(shard_source(path, r.next_index()));
  }
  for (Split& sp : splits) take(sp, true);

  // 3. Vocabularies in id order: images go to bucket files by id (one sequential pass over
  // the images shards), then each bucket is read back, ordered and appended.
  std::vector<std::unique_ptr<TemporaryDirectory>> spill_dirs;
  auto bucket_path = [&](size_t s, size_t b) { return fmt::format("{}/{:05d}", spill_dirs[s]->path(), b); };
  std::vector<std::vector<std::unique_ptr<ShardWriter>>> buckets(splits.size());
  for (size_t s = 0; s < splits.size(); ++s) {
    spill_dirs.push_back(std::make_unique<TemporaryDirectory>(vocab_file(splits[s]) + ".spill"));
    const size_t n = (splits[s].image_of_id.size() + o.bucket_ids - 1) / o.bucket_ids;
    for (size_t b = 0; b < n; ++b)
      buckets[s].push_back(std::make_unique<ShardWriter>(bucket_path(s, b), "spill",
                                                         nlohmann::json::object(), ShardWriterOptions{256 << 10, 1}));
  }
  {
    uint32_t number = 0;
    std::string buf;
    for (const std::string& path : o.images) {
      ShardReader r(path, kKindImages);
      std::string_view rec;
      for (; r.next(&rec); ++number) {
        if (number >= images) fail("images shards changed while packing ({} has more records than before)", path);
        for (size_t s = 0; s < splits.size(); ++s) {
          const uint32_t id = splits[s].id_of_image[number];
          if (id == kNone) continue;
          buf.assign(reinterpret_cast<const char*>(&id), 4);
          buf.append(rec);
          buckets[s][id / o.bucket_ids]->add(buf);
        }
      }
    }
    if (number != images) fail("images shards changed while packing ({} images, {} before)", number, images);
  }
  nlohmann::json foot_inputs = {{"inputs", sources}, {"image_inputs", image_sources}};
  std::vector<PackSplitResult> results;
  for (size_t s = 0; s < splits.size(); ++s) {
    Split& sp = splits[s];
    const uint64_t distinct = sp.image_of_id.size();
    nlohmann::json counts = {{"examples", sp.examples}, {"documents", sp.packer->documents()}, {"words", sp.words},
                             {"document_pieces", sp.pieces}, {"vocab", distinct},
                             {"fill", sp.examples ? double(sp.words) / double(sp.examples * po.max_seq_length) : 0.0},
                             {"prefix_warnings", sp.packer->warnings()}};
    // Small blocks: the loader reads vocabulary records one by one, on demand.
    ShardWriter vocab(vocab_file(sp), kKindVocab, header(sp), ShardWriterOptions{8 << 10, 3});
    std::vector<std::string> slots;
    for (size_t b = 0; b < buckets[s].size(); ++b) {
      buckets[s][b]->finish(nlohmann::json::object());
      const uint64_t lo = uint64_t(b) * o.bucket_ids, hi = std::min<uint64_t>(distinct, lo + o.bucket_ids);
      slots.assign(size_t(hi - lo), std::string());
      ShardReader r(bucket_path(s, b), "spill");
      std::string_view rec;
      while (r.next(&rec)) {
        uint32_t id;
        std::memcpy(&id, rec.data(), 4);
        slots.at(id - lo).assign(rec.substr(4));
      }
      for (uint64_t id = lo; id < hi; ++id) {
        std::string& img = slots[size_t(id - lo)];
        if (img.empty() || check_hash(word_image_word(img)) != sp.check[id])
          fail("{}: vocabulary id {}: its image was not found or belongs to another word (a 64-bit hash "
               "collision between two words; please report it)", vocab_file(sp), id);
        vocab.add(img);
      }
      std::error_code ec;
      std::filesystem::remove(bucket_path(s, b), ec);
    }
    nlohmann::json footer = foot_inputs;
    footer["counts"] = counts;
    // The vocabulary first: an examples shard never appears without its vocabulary.
    vocab.finish(footer);
    sp.shards->finish([&](size_t k) {
      nlohmann::json f = foot_inputs;
      if (o.shard_bytes == 0) {
        f["counts"] = counts;
      } else {
        f["counts"] = {{"examples", sp.shards->records(k)}};
        f["split_counts"] = counts;
      }
      return f;
    });
    PackSplitResult res;
    res.name = sp.name;
    res.examples = sp.shards->paths();
    res.vocab = vocab_file(sp);
    res.examples_count = sp.examples;
    res.documents = sp.packer->documents();
    res.words = sp.words;
    res.distinct = distinct;
    res.fill = counts["fill"].get<double>();
    results.push_back(std::move(res));
  }
  std::string summary;
  for (const PackSplitResult& r : results)
    summary += fmt::format("{}{}: {} examples, {} documents, {} words, {} distinct ({:.1f}% filled) -> {}",
                           summary.empty() ? "" : "; ", r.name, r.examples_count, r.documents, r.words, r.distinct,
                           100.0 * r.fill, describe_shards(r.examples));
  progress.finish(summary);
  return results;
}

}  // namespace ilt
