// The byte-level baseline (config architecture "bytes-lm"): a causal transformer over the
// documents' raw bytes, no word hierarchy. It trains on the same batches as the Image Latent
// Transformer and predicts the same text bytes, so bits per text byte compare directly: each
// word's label bytes are its targets (an ILT also predicts one EOS per word; the baseline only
// at the end of a document, where the label is empty).
#include "model/bytes_lm.h"

#include <algorithm>

#include "data/examples.h"
#include "model/model.h"

namespace ilt {

namespace F = torch::nn::functional;

ByteStreams byte_streams(const Batch& b) {
  const auto cpu = [](const torch::Tensor& t) { return t.device().is_cpu() ? t.contiguous() : t.to(torch::kCPU).contiguous(); };
  const torch::Tensor wb_t = cpu(b.word_bytes), di_t = cpu(b.decoder_input), tl_t = cpu(b.target_lengths),
                      mask_t = cpu(b.word_mask), doc_t = cpu(b.doc_ids), pre_t = cpu(b.prefix_ids);
  const int64_t B = wb_t.size(0), L = wb_t.size(1), T = wb_t.size(2);
  const uint8_t* wb = wb_t.data_ptr<uint8_t>();
  const uint8_t* di = di_t.data_ptr<uint8_t>();
  const int32_t* tl = tl_t.data_ptr<int32_t>();
  const bool* wm = mask_t.data_ptr<bool>();
  const int32_t* doc = doc_t.data_ptr<int32_t>();
  const int32_t* pre = pre_t.data_ptr<int32_t>();

  struct Row {
    std::vector<int64_t> bytes, target_of, positions, word;
    std::vector<int32_t> doc, prefix;
  };
  std::vector<Row> rows(static_cast<size_t>(B));
  ByteStreams s;
  s.rows = B;
  s.targets = 0;
  for (int64_t r = 0; r < B; ++r) {
    Row& row = rows[size_t(r)];
    int64_t piece_start = 0;  // stream index where the current document piece began
    auto push = [&](int64_t byte, int32_t d, int32_t p) {
      row.bytes.push_back(byte);
      row.target_of.push_back(-1);
      row.word.push_back(-1);
      row.positions.push_back(int64_t(row.bytes.size()) - 1 - piece_start);
      row.doc.push_back(d);
      row.prefix.push_back(p);
    };
    // The bytes of word l (BOS + word + EOS in word_bytes: the inner part), no targets.
    auto push_word = [&](int64_t l) {
      const uint8_t* w = wb + (r * L + l) * T;
      int64_t len = 0;
      for (int64_t i = 0; i < T; ++i)
        if (w[i] != 0) len = i + 1;
      for (int64_t i = 1; i + 1 < len; ++i) push(w[i], doc[r * L + l], pre[r * L + l]);
    };
    for (int64_t l = 0; l < L; ++l) {
      const int64_t bl = r * L + l;
      if (!wm[bl]) continue;
      if (l == 0 || doc[bl] != doc[bl - 1]) {  // a document piece starts with its first word
        piece_start = int64_t(row.bytes.size());
        push_word(l);
      }
      const bool next_in_piece = l + 1 < L && wm[bl + 1] && doc[bl + 1] == doc[bl];
      if (tl[bl] > 0) {
        // The label: the next word's bytes (or the text after the piece), each predicted by
        // the byte before it; an empty label (the document's end) is an EOS target.
        const int64_t n = tl[bl] - 1;
        const int32_t d = doc[bl], p = next_in_piece ? pre[bl + 1] : -1;
        if (row.bytes.empty()) push(kBos, d, -1);  // cannot happen with real batches (BOS word)
        for (int64_t i = 0; i < n; ++i) {
          row.target_of.back() = di[bl * T + 1 + i];
          row.word.back() = bl;
          ++s.targets;
          push(di[bl * T + 1 + i], d, p);
        }
        if (n == 0) {
          row.target_of.back() = kEos;
          row.word.back() = bl;
          ++s.targets;
        }
      } else if (next_in_piece) {  // no label (inside a prefix block): the next word is context
        push_word(l + 1);
      }
    }
    // Piece lengths of this row (for FLOPs): split the stream where the document changes.
    for (size_t i = 0; i < row.bytes.size(); ++i) {
      if (i == 0 || row.doc[i] != row.doc[i - 1]) s.piece_lengths.push_back(0);
      ++s.piece_lengths.back();
    }
    s.length = std::max<int64_t>(s.length, int64_t(row.bytes.size()));
  }
  s.length = std::max<int64_t>(s.length, 1);
  const size_t N = size_t(B * s.length);
  s.bytes.assign(N, kPad);
  s.target_of.assign(N, -1);
  s.positions.assign(N, 0);
  s.word.assign(N, -1);
  s.doc.assign(N, -1);
  s.prefix.assign(N, -1);
  for (int64_t r = 0; r < B; ++r) {
    const Row& row = rows[size_t(r)];
    const size_t o = size_t(r * s.length);
    std::copy(row.bytes.begin(), row.bytes.end(), s.bytes.begin() + long(o));
    std::copy(row.target_of.begin(), row.target_of.end(), s.target_of.begin() + long(o));
    std::copy(row.positions.begin(), row.positions.end(), s.positions.begin() + long(o));
    std::copy(row.word.begin(), row.word.end(), s.word.begin() + long(o));
    std::copy(row.doc.begin(), row.doc.end(), s.doc.begin() + long(o));
    std::copy(row.prefix.begin(), row.prefix.end(), s.prefix.begin() + long(o));
  }
  return s;
}

ForwardOutput ImageLatentTransformerImpl::forward_bytes_lm(const Batch& b, const ForwardOptions& o) {
  const ByteStreams s = byte_streams(b);
  const int64_t B = s.rows, S = s.length, L = b.word_mask.size(1);
  const torch::Device dev = decoder_embed->byte_table.device();
  auto on_dev = [&](const std::vector<int64_t>& v) { return host_to_device(v, dev); };
  auto ids = [&](const std::vector<int32_t>& v) {
    return on_dev(std::vector<int64_t>(v.begin(), v.end())).view({B, S}).to(torch::kInt32);
  };
  // The causal transformer within each document piece. Without prefix blocks, the pieces'
  // bytes are packed end to end (varlen: no padding, attention per piece); a batch with
  // blocks (read both ways) takes the padded path with the block mask: [B, S, D].
  bool blocks = false;
  for (int32_t p : s.prefix) blocks |= p >= 0;
  std::vector<int64_t> slot_to_token;  // packed path: row-major slot -> packed token (-1: padding)
  torch::Tensor y;                     // [tokens, D] or [B * S, D]
  if (!blocks) {
    std::vector<int64_t> real;
    slot_to_token.assign(s.doc.size(), -1);
    for (size_t i = 0; i < s.doc.size(); ++i)
      if (s.doc[i] >= 0) slot_to_token[i] = int64_t(real.size()), real.push_back(int64_t(i));
    Varlen v = make_varlen(s.piece_lengths, true, dev);
    auto x = decoder_embed(on_dev(s.bytes).index_select(0, on_dev(real)));
    y = latent->forward_varlen(x, v);
  } else {
    auto x = decoder_embed(on_dev(s.bytes).view({B, S}));
    y = latent(x, latent_mask(ids(s.doc), ids(s.prefix)), false, on_dev(s.positions).view({B, S})).reshape({B * S, -1});
  }
  std::vector<int64_t> at, tgt, word;  // rows of y with a target, their targets and words
  for (size_t i = 0; i < s.target_of.size(); ++i)
    if (s.target_of[i] >= 0) {
      at.push_back(blocks ? int64_t(i) : slot_to_token[i]);
      tgt.push_back(s.target_of[i]);
      word.push_back(s.word[i]);
    }
  ForwardOutput out;
  out.latent = y;
  auto logits = byte_logits(y.index_select(0, on_dev(at))).to(torch::kFloat);  // [targets, 256]
  auto target = on_dev(tgt), word_t = on_dev(word);
  auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto fopt = torch::dtype(torch::kFloat).device(dev);
  out.nats = ce.sum();
  out.word_nats = torch::zeros({B * L}, fopt).index_add_(0, word_t, ce).view({B, L});
  std::vector<int64_t> per_word(size_t(B * L), 0);
  for (int64_t w : word) ++per_word[size_t(w)];
  out.word_targets = on_dev(per_word).view({B, L});
  if (o.accuracy) {
    auto correct = torch::zeros({B * L}, torch::dtype(torch::kLong).device(dev))
                       .index_add_(0, word_t, (logits.argmax(-1) == target).to(torch::kLong));
    out.word_correct = correct.view({B, L});
    out.word_exact = (correct.view({B, L}) == out.word_targets) & out.word_targets.gt(0);
  }
  out.target_bytes = s.targets;
  out.decoder_real = s.targets;
  out.decoder_slots = blocks ? B * S : int64_t(slot_to_token.size()) - std::count(slot_to_token.begin(), slot_to_token.end(), -1);
  out.loss = out.nats / double(std::max<int64_t>(1, s.targets));
  return out;
}

}  // namespace ilt
