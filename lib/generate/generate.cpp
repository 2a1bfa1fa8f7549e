#include "generate/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <chrono>
#include <map>
#include <random>
#include <unordered_map>

#include "common/error.h"
#include "data/examples.h"
#include "data/pack.h"
#include "generate/word_rules.h"

namespace ilt {

using torch::indexing::Slice;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void split_prompt(const std::vector<std::string>& words, std::vector<std::string>* input, std::string* prefix) {
  *input = with_bos(words);
  prefix->clear();
  if (!words.empty() && !word_complete(words.back())) {
    *prefix = words.back();
    input->pop_back();
  }
}

std::vector<int> likeliest_bytes(const float* logprobs, const std::array<bool, 256>& allowed, size_t k) {
  std::vector<int> c;
  for (int b = 0; b < 256; ++b)
    if (allowed[size_t(b)]) c.push_back(b);
  if (k == 0 || k > c.size()) k = c.size();
  // Ties go to the smaller byte, so the order never depends on sort stability.
  std::partial_sort(c.begin(), c.begin() + int64_t(k), c.end(), [&](int a, int b) {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  });
  c.resize(k);
  return c;
}

int choose_byte(const float* logprobs, const std::array<bool, 256>& allowed, double temperature, int top_k,
                double top_p, double u, double min_p) {
  auto c = likeliest_bytes(logprobs, allowed, temperature <= 0 ? 1 : size_t(std::max(0, top_k)));
  if (c.empty()) return -1;
  if (temperature <= 0) return c[0];
  std::vector<double> w(c.size());
  double total = 0;
  for (size_t i = 0; i < c.size(); ++i) total += w[i] = std::exp((double(logprobs[c[i]]) - logprobs[c[0]]) / temperature);
  if (min_p > 0) {  // w is relative to the likeliest byte (w[0] = 1), likeliest first
    size_t n = 1;
    while (n < c.size() && w[n] >= min_p) ++n;
    total = 0;
    for (size_t i = 0; i < n; ++i) total += w[i];
    c.resize(n), w.resize(n);
  }
  if (top_p < 1.0) {  // the smallest head of the distribution holding top_p of it
    double kept = 0;
    size_t n = 0;
    while (n < c.size() && (n == 0 || kept < top_p * total)) kept += w[n++];
    c.resize(n), w.resize(n), total = kept;
  }
  double r = u * total;
  for (size_t i = 0; i < c.size(); ++i) {
    if (r < w[i]) return c[i];
    r -= w[i];
  }
  return c.back();
}

std::unordered_map<std::string, float> word_offsets(const std::vector<std::string>& words, double repetition_penalty,
                                                    int no_repeat_ngram) {
  std::unordered_map<std::string, float> off;
  if (repetition_penalty > 1)
    for (const std::string& w : words) off[w] = -float(std::log(repetition_penalty));
  const size_t n = size_t(std::max(0, no_repeat_ngram));
  if (n > 0 && words.size() >= n - 1) {
    // The last n - 1 words; each earlier occurrence of them bans the word that followed.
    const size_t ctx = words.size() - (n - 1);
    for (size_t i = 0; i + n <= words.size(); ++i)
      if (std::equal(words.begin() + long(i), words.begin() + long(i + n - 1), words.begin() + long(ctx)))
        off[words[i + n - 1]] = -std::numeric_limits<float>::infinity();
  }
  return off;
}

Generator::Generator(ImageLatentTransformer model, GenerateEnv env, torch::Device device)
    : model_(std::move(model)), env_(std::move(env)), device_(device) {
  if (model_->config.has_image() && !env_.render) fail("this model reads word images: generation needs a renderer");
}

// One generate() call: the texts being written (rows) and the caches of both levels.
struct Generator::Run {
  struct Hyp {  // one text being written (with beams: one beam)
    size_t prompt = 0;
    std::vector<uint32_t> words;  // vocabulary ids of the latent input so far (BOS first)
    size_t read = 0;              // of which the latent transformer has read (and cached)
    std::string prefix;           // the prompt's unfinished word, continued by the first word
    std::string text;             // the continuation
    std::vector<GeneratedWord> gen;
    double logprob = 0;
    double score = 0;             // logprob with the word-level controls' offsets (ranks beams)
    std::string reason;           // why it ended; empty while it goes on
    size_t emitted = 0;           // bytes of text streamed
    int64_t dropped = 0;          // prompt words beyond max_context, not read
    std::vector<PrefixBlock> blocks;  // the prompt's ShiftOut ... ShiftIn blocks (word positions)
    bool open_block = false;      // the prompt ends inside a block (read causally)
  };
  struct Candidate {  // a word the bytes decoder finished for one row
    std::string word;
    double logprob;  // the model's
    double score;    // with the word-level controls' offsets (ranks beams)
  };

  Generator& g;
  const GenerateOptions& o;
  const std::function<void(size_t, const std::string&)>& on_text;
  ForwardOptions fo;
  int64_t T, H, Wp;
  size_t limit;
  int width;  // words kept per row at the bytes level (beams)
  std::vector<Hyp> rows;       // active rows, in KV-cache order
  KVCache latent_cache;
  std::vector<std::mt19937_64> rng;  // per prompt (sampling)

  Run(Generator& gen, const GenerateOptions& opt, const std::function<void(size_t, const std::string&)>& cb)
      : g(gen), o(opt), on_text(cb) {
    const ModelConfig& c = g.model_->config;
    T = c.max_word_length, H = c.image_height, Wp = c.patch_width;
    limit = size_t(o.max_word_bytes > 0 ? std::min<int64_t>(o.max_word_bytes, T - 1) : T - 2);
    width = std::max(1, o.beams);
    fo.use_image = o.use_image;
    fo.use_bytes = o.use_bytes;
  }

  uint32_t id_of(const std::string& word) {
    auto [it, fresh] = g.ids_.try_emplace(word, uint32_t(g.vocab_.size()));
    if (fresh) {
      WordImage img;
      if (g.model_->config.has_image()) {
        g.env_.render(word, &img);
      } else {  // a bytes-only model never looks at the image
        img.word = word;
        img.height = uint16_t(H);
      }
      g.vocab_.push_back(std::move(img));
    }
    return it->second;
  }

  // ------------------------------------------------------------------ latent level

  // Reads each row's unread words and returns the latent output at its last word,
  // projected into the decoder: [R, Dd].
  torch::Tensor latent_step() {
    const bool cached = o.use_cache;
    std::vector<Example> exs(rows.size());
    std::vector<int64_t> last(rows.size());
    bool blocks = false;
    for (size_t r = 0; r < rows.size(); ++r) {
      size_t from = cached ? rows[r].read : 0, n = rows[r].words.size() - from;
      exs[r].word_ids.assign(rows[r].words.begin() + int64_t(from), rows[r].words.end());
      exs[r].labels.assign(n, "");
      exs[r].docs.push_back({uint32_t(n), uint32_t(from), uint32_t(rows[r].words.size()), ""});
      exs[r].prefix_blocks = clip_prefix_blocks(rows[r].blocks, from, rows[r].words.size());
      blocks |= !exs[r].prefix_blocks.empty();
      last[r] = int64_t(n) - 1;
      rows[r].read = rows[r].words.size();
    }
    std::vector<const std::vector<WordImage>*> vocabs(rows.size(), &g.vocab_);
    Batch b = to_device(make_batch(exs, vocabs, T, H, Wp), g.device_);
    auto words = g.model_->embed_words(b, fo);  // [R, L, Dl]
    // After the prompts every row reads one word: no padding to mask.
    bool ragged = std::any_of(last.begin(), last.end(), [&](int64_t l) { return l != last[0]; });
    // A prompt's blocks are read with the training mask, in the prefill (they are all in it).
    auto y = cached ? g.model_->latent->forward_cached(words, b.positions, &latent_cache,
                                                       ragged ? b.word_mask : torch::Tensor(),
                                                       blocks ? b.prefix_ids : torch::Tensor())
                    : g.model_->latent_forward(words, b);
    ++g.stats_.latent_steps;
    auto idx = torch::tensor(last, torch::kLong).to(y.device());
    auto at_last = y.index({torch::arange(y.size(0), idx.options()), idx});  // [R, Dl]
    return g.model_->to_decoder(at_last);
  }

  // ------------------------------------------------------------------ bytes level

  // Decoder logits after [h, BOS, bytes] for each partial word: [P, 256]. With a cache,
  // fills it with those positions.
  torch::Tensor decoder_start(const torch::Tensor& h, const std::vector<std::string>& bytes, KVCache* cache) {
    const int64_t P = int64_t(bytes.size());
    size_t n = 0;
    for (const auto& s : bytes) n = std::max(n, s.size());
    auto in = torch::zeros({P, int64_t(n) + 1}, torch::kUInt8);  // BOS + bytes, PAD after
    std::vector<int64_t> last(bytes.size());
    for (int64_t p = 0; p < P; ++p) {
      uint8_t* row = in.data_ptr<uint8_t>() + p * in.size(1);
      row[0] = kBos;
      std::memcpy(row + 1, bytes[size_t(p)].data(), bytes[size_t(p)].size());
      last[size_t(p)] = int64_t(bytes[size_t(p)].size()) + 1;
    }
    in = in.to(h.device());
    auto x = torch::cat({h.unsqueeze(1), g.model_->decoder_embed(in)}, 1);  // [P, n + 2, Dd]
    const int64_t S = x.size(1);
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(h.device());
    auto pos = torch::arange(S, opts).unsqueeze(0).expand({P, S});
    auto lastt = torch::tensor(last, torch::kLong).to(h.device());
    torch::Tensor y;
    if (cache) {
      auto valid = pos <= lastt.unsqueeze(1);
      y = g.model_->decoder->forward_cached(x, pos, cache, valid);
    } else {
      y = g.model_->decoder(x, torch::Tensor(), true, pos);
    }
    ++g.stats_.decoder_steps;
    return g.model_->byte_logits(y.index({torch::arange(P, opts), lastt})).to(torch::kFloat);
  }

  // One more byte for each partial word, reading its cache: [P, 256].
  torch::Tensor decoder_next(const std::vector<std::string>& bytes, KVCache* cache) {
    const int64_t P = int64_t(bytes.size());
    auto in = torch::empty({P, 1}, torch::kUInt8);
    auto pos = torch::empty({P, 1}, torch::kLong);
    uint8_t* ip = in.data_ptr<uint8_t>();
    int64_t* pp = pos.data_ptr<int64_t>();
    for (int64_t p = 0; p < P; ++p) {
      ip[p] = static_cast<uint8_t>(bytes[size_t(p)].back());
      pp[p] = int64_t(bytes[size_t(p)].size()) + 1;  // [h, BOS, b1, ...]: byte k at k + 1
    }
    auto y = g.model_->decoder->forward_cached(g.model_->decoder_embed(in.to(g.device_)), pos.to(g.device_), cache);
    ++g.stats_.decoder_steps;
    return g.model_->byte_logits(y.select(1, 0)).to(torch::kFloat);
  }

  // The bytes decoder writes words for every row, from its latent vector h [R, Dd]: the
  // `width` likeliest complete words per row (byte-level beam search; width 1 = greedy), or
  // one sampled word. Words start with the row's prefix.
  std::vector<std::vector<Candidate>> decode_words(const torch::Tensor& h) {
    struct Partial {
      size_t row;
      std::string bytes;
      double score;    // log-probability with the word-level controls' offsets (ranks)
      double logprob;  // the model's own (reported)
    };
    const size_t R = rows.size();
    std::vector<Partial> parts;
    for (size_t r = 0; r < R; ++r) parts.push_back({r, rows[r].prefix, 0.0, 0.0});
    // Word-level controls: per row, the words whose completing byte gets an offset.
    std::vector<std::unordered_map<std::string, float>> offsets(R);
    if (o.repetition_penalty > 1 || o.no_repeat_ngram > 0)
      for (size_t r = 0; r < R; ++r) {
        std::vector<std::string> words;
        for (size_t k = 1; k < rows[r].words.size(); ++k) words.push_back(g.vocab_[rows[r].words[k]].word);
        offsets[r] = word_offsets(words, o.repetition_penalty, o.no_repeat_ngram);
      }
    std::array<float, 256> adj;
    std::vector<std::vector<Candidate>> done(R);
    KVCache cache;
    std::vector<std::string> bytes;
    for (const auto& p : parts) bytes.push_back(p.bytes);
    auto logits = decoder_start(h, bytes, o.use_cache ? &cache : nullptr);
    const bool sample = o.temperature > 0;
    while (true) {
      auto lp = torch::log_softmax(logits, -1).contiguous().to(torch::kCPU);  // [P, 256]
      const float* lpp = lp.data_ptr<float>();
      std::vector<std::vector<std::pair<Partial, size_t>>> open(R);  // per row: (partial, source)
      for (size_t i = 0; i < parts.size(); ++i) {
        const Partial& p = parts[i];
        const Hyp& hyp = rows[p.row];
        const float* lm = lpp + i * 256;  // the model's log-probabilities
        const float* l = lm;               // with the controls' offsets
        auto allowed = allowed_next_bytes(p.bytes, limit);
        if (p.bytes.empty() && int(hyp.gen.size()) < o.min_words) allowed[kEos] = false;
        if (!offsets[p.row].empty()) {
          std::copy(lm, lm + 256, adj.begin());
          auto apply = [&](size_t b, float off) {
            if (!allowed[b]) return;
            if (std::isinf(off)) allowed[b] = false;
            else adj[b] += off;
          };
          if (!p.bytes.empty()) {  // EOS completes the word as it is
            auto it = offsets[p.row].find(p.bytes);
            if (it != offsets[p.row].end()) apply(kEos, it->second);
          }
          for (const auto& [w, off] : offsets[p.row])
            if (w.size() == p.bytes.size() + 1 && w.compare(0, p.bytes.size(), p.bytes) == 0 &&
                (word_complete(w) || w.size() >= limit))
              apply(uint8_t(w.back()), off);
          l = adj.data();
        }
        std::vector<int> choice;
        if (sample) {
          std::uniform_real_distribution<double> unif(0.0, 1.0);
          int b = choose_byte(l, allowed, o.temperature, o.top_k, o.top_p, unif(rng[hyp.prompt]), o.min_p);
          if (b >= 0) choice.push_back(b);
        } else {
          choice = likeliest_bytes(l, allowed, size_t(width));
        }
        if (choice.empty()) {  // nothing may follow: the word is as complete as it gets
          done[p.row].push_back({p.bytes, p.logprob, p.score});
          continue;
        }
        for (int b : choice) {
          double s = p.score + l[b], lp = p.logprob + lm[b];
          if (b == kEos) {
            done[p.row].push_back({p.bytes, lp, s});
            continue;
          }
          std::string w = p.bytes + char(b);
          if (word_complete(w) || w.size() >= limit) {
            done[p.row].push_back({std::move(w), lp, s});
          } else {
            open[p.row].push_back({Partial{p.row, std::move(w), s, lp}, i});
          }
        }
      }
      // Per row: keep the `width` best finished and open words; stop a row once no open word
      // can beat its worst kept finished one (scores only fall as bytes are added).
      std::vector<Partial> next;
      std::vector<int64_t> sources;
      auto better = [](double a, const std::string& wa, double b, const std::string& wb) {
        return a > b || (a == b && wa < wb);
      };
      for (size_t r = 0; r < R; ++r) {
        auto& d = done[r];
        std::stable_sort(d.begin(), d.end(), [&](const Candidate& a, const Candidate& b) {
          return better(a.score, a.word, b.score, b.word);
        });
        if (d.size() > size_t(width)) d.resize(size_t(width));
        auto& op = open[r];
        std::stable_sort(op.begin(), op.end(), [&](const auto& a, const auto& b) {
          return better(a.first.score, a.first.bytes, b.first.score, b.first.bytes);
        });
        if (op.size() > size_t(width)) op.resize(size_t(width));
        if (d.size() == size_t(width) && !op.empty() && op[0].first.score <= d.back().score) op.clear();
        for (auto& [p, src] : op) {
          next.push_back(std::move(p));
          sources.push_back(int64_t(src));
        }
      }
      if (next.empty()) break;
      bytes.clear();
      for (const auto& p : next) bytes.push_back(p.bytes);
      if (o.use_cache) {
        cache.keep(sources);
        logits = decoder_next(bytes, &cache);
      } else {  // recompute the whole word so far
        std::vector<int64_t> src_rows;
        for (const auto& p : next) src_rows.push_back(int64_t(p.row));
        auto hr = h.index_select(0, torch::tensor(src_rows, torch::kLong).to(h.device()));
        logits = decoder_start(hr, bytes, nullptr);
      }
      parts = std::move(next);
    }
    return done;
  }

  // ------------------------------------------------------------------ words

  // Appends a finished word to a row; sets its reason when the text ends.
  void append(Hyp& hyp, const Candidate& c) {
    if (c.word.empty()) {  // the end, which has its probability too (beams compare it)
      hyp.logprob += c.logprob;
      hyp.score += c.score;
      hyp.reason = "end";
      return;
    }
    std::string piece = c.word.substr(hyp.prefix.size());
    hyp.prefix.clear();
    hyp.text += piece;
    hyp.gen.push_back({piece, c.logprob});
    hyp.logprob += c.logprob;
    hyp.score += c.score;
    hyp.words.push_back(id_of(c.word));
    const size_t cut = stop_cut(hyp.text, o.stop);
    if (cut != std::string::npos) {
      hyp.text.resize(cut);
      hyp.reason = "stop";
    } else if (int(hyp.gen.size()) >= o.max_words) {
      hyp.reason = "max_words";
    }
  }

  void stream(Hyp& hyp) {
    if (!on_text) return;
    size_t end = hyp.reason.empty() ? hyp.text.size() - held_back(hyp.text, o.stop) : hyp.text.size();
    if (end > hyp.emitted) on_text(hyp.prompt, hyp.text.substr(hyp.emitted, end - hyp.emitted));
    hyp.emitted = std::max(hyp.emitted, end);
  }

  Generation result(const std::string& prompt, const Hyp& h) {
    return {prompt, h.text, h.gen, h.logprob, h.reason, h.dropped, h.open_block};
  }

  std::vector<Generation> run(const std::vector<std::string>& prompts, uint64_t first_index) {
    std::vector<Generation> out(prompts.size());
    std::vector<std::vector<Hyp>> finished(prompts.size());  // per prompt, best first (beams)
    for (size_t i = 0; i < prompts.size(); ++i) {
      Hyp h;
      h.prompt = i;
      std::vector<std::string> input;
      split_prompt(g.env_.segment(prompts[i]), &input, &h.prefix);
      if (h.prefix.size() >= limit) {  // too long to continue: read it as a finished word
        input.push_back(h.prefix);
        h.prefix.clear();
      }
      // Prefix blocks as the packer finds them; a block still open at the prompt's end is read
      // causally, as training reads a block never closed.
      int64_t open_at = -1;
      h.blocks = find_prefix_blocks(input, {}, &open_at);
      h.open_block = open_at >= 0;
      if (o.max_context > 0 && int64_t(input.size()) > o.max_context) {
        h.dropped = int64_t(input.size()) - o.max_context;  // keep BOS, drop the oldest words
        input.erase(input.begin() + 1, input.begin() + 1 + h.dropped);
        // Blocks move with their words; a block cut by the drop keeps its remaining words (as
        // a block cut by an example boundary in training).
        std::vector<PrefixBlock> kept = clip_prefix_blocks(h.blocks, size_t(1 + h.dropped), input.size() + h.dropped, 1);
        h.blocks = std::move(kept);
      }
      for (const auto& w : input) h.words.push_back(id_of(w));
      uint64_t z = o.seed * 0x9E3779B97F4A7C15ull + first_index + i;  // splitmix-style spread
      rng.emplace_back(z ^ (z >> 31));
      if (o.max_words <= 0) {
        h.reason = "max_words";
        out[i] = result(prompts[i], h);
        continue;
      }
      rows.push_back(std::move(h));
    }
    for (bool first = true; !rows.empty(); first = false) {
      auto t0 = std::chrono::steady_clock::now();
      auto h = latent_step();
      if (first) g.stats_.prompt_seconds += seconds_since(t0);
      auto cands = decode_words(h);
      std::vector<Hyp> next;
      std::vector<int64_t> keep;
      if (width == 1) {
        for (size_t r = 0; r < rows.size(); ++r) {
          Hyp& hyp = rows[r];
          append(hyp, cands[r].at(0));
          stream(hyp);
          if (hyp.reason.empty()) {
            next.push_back(std::move(hyp));
            keep.push_back(int64_t(r));
          } else {
            out[hyp.prompt] = result(prompts[hyp.prompt], hyp);
          }
        }
      } else {
        // Word-level beam search: per prompt, the `width` best texts among every row's
        // expansions and the texts that already ended.
        struct Option {
          double score;
          size_t row;
          const Candidate* c;  // null: a finished text (index into finished)
          size_t fin;
        };
        std::map<size_t, std::vector<Option>> by_prompt;
        for (size_t r = 0; r < rows.size(); ++r)
          for (const Candidate& c : cands[r]) by_prompt[rows[r].prompt].push_back({rows[r].score + c.score, r, &c, 0});
        for (auto& [p, opts] : by_prompt) {
          for (size_t f = 0; f < finished[p].size(); ++f) opts.push_back({finished[p][f].score, 0, nullptr, f});
          std::stable_sort(opts.begin(), opts.end(), [](const Option& a, const Option& b) { return a.score > b.score; });
          if (opts.size() > size_t(width)) opts.resize(size_t(width));
          std::vector<Hyp> fin;
          for (const Option& op : opts) {
            if (!op.c) {
              fin.push_back(finished[p][op.fin]);
              continue;
            }
            Hyp hyp = rows[op.row];
            append(hyp, *op.c);
            if (hyp.reason.empty()) {
              next.push_back(std::move(hyp));
              keep.push_back(int64_t(op.row));
            } else {
              fin.push_back(std::move(hyp));
            }
          }
          finished[p] = std::move(fin);
          bool active = std::any_of(next.begin(), next.end(), [&](const Hyp& h) { return h.prompt == p; });
          if (!active) {  // the best texts have all ended
            Hyp& best = finished[p].at(0);
            stream(best);
            out[p] = result(prompts[p], best);
          }
        }
      }
      rows = std::move(next);
      if (o.use_cache) latent_cache.keep(keep);
    }
    return out;
  }
};

std::vector<Generation> Generator::generate(const std::vector<std::string>& prompts, const GenerateOptions& options,
                                            const std::function<void(size_t, const std::string&)>& on_text,
                                            uint64_t first_index) {
  if (options.beams > 1 && options.temperature > 0) fail("--beams searches; it does not sample (drop --temperature)");
  if (options.beams < 1 || options.beams > kMaxBeams) fail("--beams {} outside [1, {}]", options.beams, kMaxBeams);
  if (!std::isfinite(options.temperature) || options.temperature < 0)
    fail("--temperature {} must be a non-negative number", options.temperature);
  if (!std::isfinite(options.top_p) || options.top_p <= 0 || options.top_p > 1)
    fail("--top-p {} must be in (0, 1]", options.top_p);
  if (options.top_k < 0) fail("--top-k {} must not be negative", options.top_k);
  if (!std::isfinite(options.min_p) || options.min_p < 0 || options.min_p > 1)
    fail("--min-p {} must be in [0, 1]", options.min_p);
  if (!std::isfinite(options.repetition_penalty) || options.repetition_penalty < 1)
    fail("--repetition-penalty {} must be at least 1 (1: none)", options.repetition_penalty);
  if (options.no_repeat_ngram < 0) fail("--no-repeat-ngram {} must not be negative", options.no_repeat_ngram);
  if (options.max_context < 0 || options.max_context == 1) fail("--max-context {} must be 0 or at least 2", options.max_context);
  for (const std::string& s : options.stop)
    if (s.empty()) fail("a stop string may not be empty");
  torch::NoGradGuard no_grad;
  Autocast autocast(options.precision, device_);
  model_->eval();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Generation> out;
  if (model_->config.bytes_lm()) {
    out = generate_bytes(prompts, options, on_text, first_index);
  } else {
    Run run(*this, options, on_text);
    out = run.run(prompts, first_index);
  }
  stats_.prompts += int64_t(prompts.size());
  for (const auto& g : out) stats_.words += int64_t(g.words.size());
  stats_.seconds += seconds_since(t0);
  return out;
}

}  // namespace ilt
