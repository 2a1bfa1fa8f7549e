#include "data/pack.h"

#include <iterator>

#include "common/error.h"
#include "common/hash.h"

namespace ilt {

LabelMode parse_label_mode(const std::string& s) {
  if (s == "next-word") return LabelMode::NextWord;
  if (s == "next-chars") return LabelMode::NextChars;
  fail("unknown label mode '{}' (next-word, next-chars)", s);
}

const char* label_mode_name(LabelMode m) { return m == LabelMode::NextWord ? "next-word" : "next-chars"; }

std::vector<std::string> with_bos(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  out.reserve(words.size() + 1);
  out.emplace_back(1, char(kBos));
  out.insert(out.end(), words.begin(), words.end());
  return out;
}

std::string label_for(const std::vector<std::string>& words, size_t j, LabelMode mode, size_t max_word_length) {
  if (j + 1 >= words.size()) return {};
  if (mode == LabelMode::NextWord) return std::string(cut_label(words[j + 1], max_word_length));
  std::string next;
  for (size_t k = j + 1; k < words.size() && next.size() < max_word_length; ++k) next += words[k];
  return std::string(cut_label(next, max_word_length));
}

std::vector<PrefixBlock> find_prefix_blocks(const std::vector<std::string>& words,
                                           const std::function<void(const std::string&)>& warn, int64_t* open_at) {
  std::vector<PrefixBlock> blocks;
  int64_t open = -1;
  auto note = [&](const std::string& m) {
    if (warn) warn(m);
  };
  for (size_t j = 0; j < words.size(); ++j) {
    if (words[j].size() != 1) continue;
    if (words[j][0] == char(kShiftOut)) {
      if (open >= 0) note(fmt::format("ShiftOut at word {} inside an open block (from word {}); ignored", j, open));
      else open = int64_t(j);
    } else if (words[j][0] == char(kShiftIn)) {
      if (open < 0) {
        note(fmt::format("ShiftIn at word {} without ShiftOut; ignored", j));
      } else {
        blocks.push_back({uint32_t(open), uint32_t(j + 1)});
        open = -1;
      }
    }
  }
  if (open >= 0) note(fmt::format("ShiftOut at word {} is never closed; ignored", open));
  if (open_at) *open_at = open;
  return blocks;
}

std::vector<PrefixBlock> clip_prefix_blocks(const std::vector<PrefixBlock>& blocks, size_t from, size_t to, size_t base) {
  std::vector<PrefixBlock> out;
  for (const PrefixBlock& b : blocks) {
    size_t lo = std::max<size_t>(b.begin, from), hi = std::min<size_t>(b.end, to);
    if (hi > lo + 1) out.push_back({uint32_t(base + lo - from), uint32_t(base + hi - from)});
  }
  return out;
}

bool is_validation(const std::string& text, double fraction) {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  return double(stable_hash(text) >> 11) / double(1ull << 53) < fraction;
}

std::vector<uint32_t> compact_ids(std::vector<Example>* examples, size_t id_space) {
  std::vector<uint32_t> map(id_space, 0);
  for (const Example& ex : *examples)
    for (uint32_t id : ex.word_ids) {
      if (id >= id_space) fail("word id {} outside the id space {}", id, id_space);
      map[id] = 1;
    }
  std::vector<uint32_t> old;
  for (uint32_t i = 0; i < id_space; ++i)
    if (map[i]) {
      map[i] = uint32_t(old.size());
      old.push_back(i);
    }
  for (Example& ex : *examples)
    for (uint32_t& id : ex.word_ids) id = map[id];
  return old;
}

Packer::Packer(PackOptions options, std::function<void(const std::string&)> warn)
    : opt_(options), warn_(std::move(warn)) {
  if (opt_.max_seq_length < 1) fail("--max-seq-length must be at least 1");
  if (opt_.max_word_length < 3) fail("--max-word-length must be at least 3 (BOS, one byte, EOS)");
}

uint32_t Packer::id_of(const std::string& w) {
  auto [it, fresh] = ids_.try_emplace(w, uint32_t(vocab_.size()));
  if (fresh) vocab_.push_back(w);
  return it->second;
}

void Packer::start_example() { examples_.emplace_back(); }

void Packer::add(const std::vector<std::string>& words, const std::string& tag, const std::string& id) {
  std::vector<uint32_t> ids(words.size());
  for (size_t j = 0; j < words.size(); ++j) ids[j] = id_of(words[j]);
  add(words, ids, tag, id);
}

void Packer::add(const std::vector<std::string>& words, const std::vector<uint32_t>& ids, const std::string& tag,
                 const std::string& id) {
  const size_t n = words.size();
  if (ids.size() != n) fail("document {}: {} ids for {} words", id, ids.size(), n);
  if (n == 0) return;
  ++documents_;
  words_ += n;
  auto warn = [&](const std::string& m) {
    ++warnings_;
    if (warn_) warn_(fmt::format("document {}: {}", id, m));
  };
  const std::vector<PrefixBlock> blocks = find_prefix_blocks(words, warn);

  size_t pos = 0;
  if (!opt_.packing || examples_.empty()) start_example();
  while (pos < n) {
    if (examples_.back().size() >= opt_.max_seq_length) start_example();
    Example& ex = examples_.back();
    size_t take = std::min(opt_.max_seq_length - ex.size(), n - pos);
    uint32_t base = uint32_t(ex.size());
    ex.docs.push_back({uint32_t(take), uint32_t(pos), uint32_t(n), tag});
    for (size_t j = pos; j < pos + take; ++j) {
      ex.word_ids.push_back(ids[j]);
      ex.labels.push_back(label_for(words, j, opt_.labels, opt_.max_word_length));
    }
    for (const PrefixBlock& b : clip_prefix_blocks(blocks, pos, pos + take, base)) ex.prefix_blocks.push_back(b);
    pos += take;
  }
}

std::vector<Example>& Packer::examples() { return examples_; }

std::vector<Example> Packer::take_complete(bool all) {
  std::vector<Example> out;
  // With packing the last example may still be filled by the next document.
  const size_t keep = (all || !opt_.packing || examples_.empty()) ? 0 : 1;
  out.reserve(examples_.size() - keep);
  std::move(examples_.begin(), examples_.end() - long(keep), std::back_inserter(out));
  examples_.erase(examples_.begin(), examples_.end() - long(keep));
  return out;
}

}  // namespace ilt
