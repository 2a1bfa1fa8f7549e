// Generation for the byte-level baseline (config architecture "bytes-lm"): one loop, byte after
// byte, with a KV cache. The prompt is read as in training (BOS word, then the prompt's words;
// a ShiftOut ... ShiftIn block both ways); words are counted as segmentation makes them, so
// --max-words and the per-word log-probabilities mean what they mean for an ILT.
#include <chrono>
#include <cmath>
#include <random>

#include "common/error.h"
#include "data/examples.h"
#include "data/pack.h"
#include "generate/generate.h"
#include "generate/word_rules.h"

namespace ilt {

namespace {
bool is_control_byte(int b) { return b < 0x20 || b == 0x7F; }
}  // namespace

std::vector<Generation> Generator::generate_bytes(const std::vector<std::string>& prompts, const GenerateOptions& o,
                                                  const std::function<void(size_t, const std::string&)>& on_text,
                                                  uint64_t first_index) {
  if (o.beams > 1) fail("--beams: the byte-level baseline (bytes-lm) generates greedily or by sampling, without beams");
  if (o.repetition_penalty != 1.0 || o.no_repeat_ngram > 0)
    fail("--repetition-penalty and --no-repeat-ngram act on the words an ILT proposes; the byte-level baseline "
         "(bytes-lm) has none");
  if (!o.use_image || !o.use_bytes) fail("the byte-level baseline (bytes-lm) has no encoders to switch off");
  const int64_t D = model_->config.latent.dim;
  const size_t limit = size_t(o.max_word_bytes > 0 ? std::min<int64_t>(o.max_word_bytes, env_.max_word_length - 1)
                                                   : env_.max_word_length - 2);
  struct Row {
    size_t prompt;
    std::string word;  // the open word (the prompt's unfinished word first)
    size_t prefix = 0; // bytes of `word` from the prompt
    double word_logprob = 0;
    Generation g;
    size_t emitted = 0;
    std::mt19937_64 rng;
  };
  std::vector<Row> rows;
  std::vector<Generation> out(prompts.size());
  std::vector<std::vector<int64_t>> inputs;       // per row: the bytes the model reads first
  std::vector<std::vector<int32_t>> input_blocks;  // their prefix block (-1: none)
  for (size_t i = 0; i < prompts.size(); ++i) {
    Row r;
    r.prompt = i;
    r.g.prompt = prompts[i];
    uint64_t z = o.seed * 0x9E3779B97F4A7C15ull + first_index + i;  // as the ILT loop seeds
    r.rng.seed(z ^ (z >> 31));
    std::vector<std::string> words = with_bos(env_.segment(prompts[i]));
    if (words.size() > 1 && !word_complete(words.back())) r.word = words.back();  // past BOS
    r.prefix = r.word.size();
    int64_t open_at = -1;
    std::vector<PrefixBlock> blocks = find_prefix_blocks(words, {}, &open_at);
    r.g.open_block = open_at >= 0;
    if (o.max_context > 0 && int64_t(words.size()) > o.max_context) {
      r.g.dropped_words = int64_t(words.size()) - o.max_context;  // keep BOS, drop the oldest words
      words.erase(words.begin() + 1, words.begin() + 1 + r.g.dropped_words);
      blocks = clip_prefix_blocks(blocks, size_t(1 + r.g.dropped_words), words.size() + size_t(r.g.dropped_words), 1);
    }
    std::vector<int32_t> block_of(words.size(), -1);
    for (size_t k = 0; k < blocks.size(); ++k)
      for (uint32_t w = blocks[k].begin; w < blocks[k].end; ++w) block_of[w] = int32_t(k);
    std::vector<int64_t> bytes;
    std::vector<int32_t> blk;
    for (size_t w = 0; w < words.size(); ++w)
      for (unsigned char c : words[w]) bytes.push_back(c), blk.push_back(block_of[w]);
    if (o.max_words <= 0) {
      r.g.stop_reason = "max_words";
      out[i] = r.g;
      continue;
    }
    rows.push_back(std::move(r));
    inputs.push_back(std::move(bytes));
    input_blocks.push_back(std::move(blk));
  }
  if (rows.empty()) return out;

  auto stream = [&](Row& r) {
    if (!on_text) return;
    const std::string& text = r.g.text;
    size_t end = r.g.stop_reason.empty() ? text.size() - held_back(text, o.stop) : text.size();
    if (end > r.emitted) on_text(r.prompt, text.substr(r.emitted, end - r.emitted));
    r.emitted = std::max(r.emitted, end);
  };
  auto finish_word = [&](Row& r) {
    if (r.word.size() <= r.prefix) return;  // nothing generated in it
    r.g.words.push_back({r.word.substr(r.prefix), r.word_logprob});
    r.word.clear();
    r.prefix = 0;
    r.word_logprob = 0;
  };

  // Prefill: every row's prompt bytes, padded; the logits at each row's last byte.
  const torch::Device dev = device_;
  const int64_t R = int64_t(rows.size());
  int64_t S = 0;
  bool ragged = false, blocks = false;
  for (size_t r = 0; r < inputs.size(); ++r) {
    S = std::max<int64_t>(S, int64_t(inputs[r].size()));
    ragged |= inputs[r].size() != inputs[0].size();
    for (int32_t b : input_blocks[r]) blocks |= b >= 0;
  }
  auto x = torch::zeros({R, S}, torch::kLong);
  auto valid = torch::zeros({R, S}, torch::kBool);
  auto pre = torch::full({R, S}, -1, torch::kInt32);
  std::vector<int64_t> length(static_cast<size_t>(R)), last(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const auto& in = inputs[size_t(r)];
    for (size_t s = 0; s < in.size(); ++s) {
      x[r][int64_t(s)] = in[s];
      valid[r][int64_t(s)] = true;
      pre[r][int64_t(s)] = input_blocks[size_t(r)][s];
    }
    length[size_t(r)] = int64_t(in.size());
    last[size_t(r)] = int64_t(in.size()) - 1;
  }
  auto pos = torch::arange(S, torch::kLong).unsqueeze(0).expand({R, S});
  KVCache cache;
  auto t0 = std::chrono::steady_clock::now();
  auto y = model_->latent->forward_cached(model_->decoder_embed(x.to(dev)), pos.to(dev), &cache,
                                          ragged ? valid.to(dev) : torch::Tensor(), blocks ? pre.to(dev) : torch::Tensor());
  ++stats_.latent_steps;
  auto idx = torch::tensor(last, torch::kLong).to(dev);
  auto h = y.index({torch::arange(R, idx.options()), idx});  // [R, D]
  stats_.prompt_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::uniform_real_distribution<double> unif(0.0, 1.0);
  while (!rows.empty()) {
    auto logprobs = torch::log_softmax(model_->byte_logits(h.view({-1, D})).to(torch::kFloat), -1).to(torch::kCPU).contiguous();
    std::vector<int64_t> keep, next_bytes, next_pos;
    for (size_t r = 0; r < rows.size(); ++r) {
      Row& row = rows[r];
      const float* l = logprobs.data_ptr<float>() + r * 256;
      std::array<bool, 256> allowed = allowed_next_bytes(row.word, limit);
      if (allowed[kEos]) {  // at a character boundary: any character (controls too) or the end
        allowed = allowed_next_bytes("", limit);
        allowed[kEos] = int(row.g.words.size()) >= o.min_words;
      }
      int b = choose_byte(l, allowed, o.temperature, o.top_k, o.top_p, unif(row.rng), o.min_p);
      if (b < 0) b = kEos;
      row.g.logprob += l[b];
      if (b == kEos) {
        finish_word(row);
        row.g.stop_reason = "end";
      } else {
        if (is_control_byte(b)) finish_word(row);  // a control character is a word of its own
        row.word.push_back(char(b));
        row.word_logprob += l[b];
        row.g.text.push_back(char(b));
        if (is_control_byte(b) || word_complete(row.word) || row.word.size() >= limit) finish_word(row);
        const size_t cut = stop_cut(row.g.text, o.stop);
        if (cut != std::string::npos) {
          row.g.text.resize(cut);
          row.g.stop_reason = "stop";
        } else if (int(row.g.words.size()) >= o.max_words) {
          row.g.stop_reason = "max_words";
        }
      }
      stream(row);
      if (row.g.stop_reason.empty()) {
        keep.push_back(int64_t(r));
        next_bytes.push_back(b);
        next_pos.push_back(length[r]);
      } else {
        out[row.prompt] = std::move(row.g);
      }
    }
    std::vector<Row> kept_rows;
    std::vector<int64_t> kept_length;
    for (int64_t r : keep) kept_rows.push_back(std::move(rows[size_t(r)])), kept_length.push_back(length[size_t(r)] + 1);
    rows = std::move(kept_rows);
    length = std::move(kept_length);
    if (rows.empty()) break;
    cache.keep(keep);
    const int64_t n = int64_t(rows.size());
    auto xb = host_to_device(next_bytes, dev).view({n, 1});
    auto pb = host_to_device(next_pos, dev).view({n, 1});
    h = model_->latent->forward_cached(model_->decoder_embed(xb), pb, &cache).view({n, D});
    ++stats_.latent_steps;
  }
  return out;
}

}  // namespace ilt
