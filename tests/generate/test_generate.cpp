// Generation: word rules, byte choice, and the two-level loop on a model overfit on four
// tiny texts (so that its greedy continuations are known) and on an untrained one.
#include "torch_catch.h"  // first: see there
#include "generate/generate.h"
#include "generate/word_rules.h"
#include "model/model_helper.h"
#include "render/renderer.h"
#include "text/segment.h"
#include "text/utf8.h"

#include <map>
#include <random>
#include <set>

using namespace ilt;
using namespace ilt::test;

namespace {

GenerateEnv test_env() {
  GenerateEnv env;
  auto renderer = std::make_shared<Renderer>();  // the options Words renders with
  auto segmenter = std::make_shared<Segmenter>(SegmentOptions{size_t(Words::T - 2)});
  env.render = [renderer](const std::string& w, WordImage* out) { renderer->render(w, out); };
  env.segment = [segmenter](std::string_view text) {
    std::vector<std::string> out;
    for (auto w : segmenter->words(text)) out.emplace_back(w);
    return out;
  };
  env.max_word_length = Words::T;
  return env;
}

// A test model trained on one batch until it knows it by heart (after torch::manual_seed).
ImageLatentTransformer overfit(const Batch& b, int steps) {
  ImageLatentTransformer model(test_config());
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    model->forward(b).loss.backward();
    opt.step();
  }
  model->eval();
  return model;
}

// The test model overfit on {"a b", "b a", "a cat", "a dog"} (trained once).
ImageLatentTransformer overfit_model() {
  static ImageLatentTransformer m = [] {
    torch::set_num_threads(2);
    torch::manual_seed(1);
    Words w;
    return overfit(w.batch({{"a b"}, {"b a"}, {"a cat"}, {"a dog"}}), 300);
  }();
  return m;
}

Generation one(Generator& g, const std::string& prompt, GenerateOptions o = {}) { return g.generate({prompt}, o).at(0); }

void check_same(const Generation& a, const Generation& b) {
  INFO("prompt '" << a.prompt << "': '" << a.text << "' vs '" << b.text << "'");
  CHECK(a.text == b.text);
  CHECK(a.stop_reason == b.stop_reason);
  REQUIRE(a.words.size() == b.words.size());
  for (size_t i = 0; i < a.words.size(); ++i) {
    CHECK(a.words[i].text == b.words[i].text);
    CHECK(std::abs(a.words[i].logprob - b.words[i].logprob) < 1e-4);
  }
}

}  // namespace

TEST_CASE("generate: word completion rules") {
  CHECK(word_complete("cat "));
  CHECK(word_complete("cat\xC2\xA0"));  // NO-BREAK SPACE is White_Space
  CHECK(word_complete("\n"));
  CHECK(word_complete("\x7F"));
  CHECK(word_complete(" "));
  CHECK_FALSE(word_complete(""));
  CHECK_FALSE(word_complete("cat"));
  CHECK_FALSE(word_complete("caf\xC3"));  // inside a character
  CHECK_FALSE(word_complete("\xE3\x80"));
  CHECK(word_complete("\xE3\x80\x80"));  // IDEOGRAPHIC SPACE alone
}

TEST_CASE("generate: allowed bytes keep a word valid UTF-8 within its limit") {
  auto ok = allowed_next_bytes("", 14);
  CHECK(ok[kEos]);  // the empty word: the end of the text
  CHECK(ok['a']);
  CHECK(ok['\n']);  // a control character as a whole word
  CHECK_FALSE(ok[kPad]);
  CHECK_FALSE(ok[kBos]);
  CHECK_FALSE(ok[0x80]);  // a continuation byte cannot start a character
  CHECK_FALSE(ok[0xC0]);  // overlong lead
  CHECK_FALSE(ok[0xF5]);  // past U+10FFFF
  ok = allowed_next_bytes("ab", 14);
  CHECK_FALSE(ok['\n']);  // control characters only alone
  CHECK(ok[' ']);
  CHECK(ok[kEos]);
  ok = allowed_next_bytes("a\xE2", 14);  // inside a 3-byte character
  CHECK_FALSE(ok[kEos]);
  CHECK_FALSE(ok['a']);
  for (int b = 0x80; b <= 0xBF; ++b) CHECK(ok[size_t(b)]);
  ok = allowed_next_bytes("\xE0", 14);  // no overlongs
  CHECK_FALSE(ok[0x9F]);
  CHECK(ok[0xA0]);
  ok = allowed_next_bytes("\xED", 14);  // no surrogates
  CHECK(ok[0x9F]);
  CHECK_FALSE(ok[0xA0]);
  ok = allowed_next_bytes("abcdefghijk", 13);  // 2 bytes left: 2-byte characters fit, 3-byte ones do not
  CHECK(ok[0xC3]);
  CHECK_FALSE(ok[0xE2]);
  CHECK_FALSE(ok[0xF0]);
  // A random walk over allowed bytes always gives valid UTF-8.
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string w;
    while (true) {
      auto a = allowed_next_bytes(w, 14);
      std::vector<int> bs;
      for (int b = 0; b < 256; ++b)
        if (a[size_t(b)]) bs.push_back(b);
      REQUIRE_FALSE(bs.empty());
      int b = bs[rng() % bs.size()];
      if (b == kEos) break;
      w += char(b);
      if (word_complete(w) || w.size() >= 14) break;
    }
    INFO(w);
    CHECK(w.size() <= 14);
    CHECK(utf8_valid(w));  // never cut inside a character, even at the limit
  }
}

TEST_CASE("generate: byte choice, greedy, top-k, top-p and sampling") {
  std::array<float, 256> lp;
  lp.fill(-100);
  lp['a'] = std::log(0.5f), lp['b'] = std::log(0.3f), lp['c'] = std::log(0.2f);
  std::array<bool, 256> all;
  all.fill(true);
  CHECK(choose_byte(lp.data(), all, 0, 0, 1, 0.99) == 'a');
  auto no_a = all;
  no_a['a'] = false;
  CHECK(choose_byte(lp.data(), no_a, 0, 0, 1, 0.5) == 'b');  // the likeliest allowed byte
  CHECK(choose_byte(lp.data(), all, 1, 1, 1, 0.99) == 'a');  // top-k 1 is greedy
  CHECK(choose_byte(lp.data(), all, 1, 0, 0.4, 0.99) == 'a');  // 'a' alone holds 0.4
  CHECK(choose_byte(lp.data(), all, 1, 2, 1, 0.99) == 'b');  // the sample stays in the top 2
  // Frequencies follow the distribution at temperature 1.
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::map<int, int> n;
  for (int i = 0; i < 20000; ++i) ++n[choose_byte(lp.data(), all, 1, 0, 1, u(rng))];
  CHECK(std::abs(n['a'] / 20000.0 - 0.5) < 0.02);
  CHECK(std::abs(n['b'] / 20000.0 - 0.3) < 0.02);
  CHECK(std::abs(n['c'] / 20000.0 - 0.2) < 0.02);
  std::array<bool, 256> none{};
  CHECK(choose_byte(lp.data(), none, 1, 0, 1, 0.5) == -1);
}

TEST_CASE("generate: prompts split into read words and a continued prefix") {
  std::vector<std::string> in;
  std::string prefix;
  split_prompt({"The ", "cat"}, &in, &prefix);
  CHECK(in == std::vector<std::string>{"\x02", "The "});
  CHECK(prefix == "cat");
  split_prompt({"The ", "cat "}, &in, &prefix);
  CHECK(in.size() == 3);
  CHECK(prefix.empty());
  split_prompt({}, &in, &prefix);
  CHECK(in == std::vector<std::string>{"\x02"});
}

TEST_CASE("generate: an overfit model continues its texts, mid-word prompts included") {
  Generator g(overfit_model(), test_env(), torch::kCPU);
  auto b = one(g, "b ");
  CHECK(b.text == "a");
  CHECK(b.stop_reason == "end");
  CHECK(b.words.size() == 1);
  CHECK(b.logprob < 0);
  auto cat = one(g, "a c");  // "c" is continued, not read as a finished word
  CHECK(cat.text == "at");
  CHECK(cat.stop_reason == "end");
  CHECK(one(g, "a d").text == "og");
  CHECK(one(g, "a ca").text == "t");
  // Stop strings cut the text before them; max and min words.
  GenerateOptions o;
  o.stop = {"t"};
  auto stopped = one(g, "a c", o);
  CHECK(stopped.text == "a");
  CHECK(stopped.stop_reason == "stop");
  o = {};
  o.max_words = 1;
  auto first = one(g, "", o);
  CHECK(first.words.size() == 1);
  CHECK(first.stop_reason == "max_words");
  o = {};
  o.min_words = 3;
  o.max_words = 5;
  CHECK(one(g, "b ", o).words.size() >= 3);
}

TEST_CASE("generate: with and without KV caches, the same greedy output") {
  Generator g(overfit_model(), test_env(), torch::kCPU);
  GenerateOptions cached, recompute;
  cached.max_words = recompute.max_words = 12;
  cached.min_words = recompute.min_words = 12;  // long texts: past what the model has seen
  recompute.use_cache = false;
  const std::vector<std::string> prompts = {"", "a ", "b ", "a c", "a dog b a cat "};
  auto a = g.generate(prompts, cached), b = g.generate(prompts, recompute);
  for (size_t i = 0; i < prompts.size(); ++i) check_same(a[i], b[i]);
  for (const auto& r : a) CHECK(r.words.size() == 12);
  // Beams too.
  cached.beams = recompute.beams = 3;
  cached.min_words = recompute.min_words = 0;
  a = g.generate(prompts, cached), b = g.generate(prompts, recompute);
  for (size_t i = 0; i < prompts.size(); ++i) check_same(a[i], b[i]);
}

TEST_CASE("generate: a prompt's output is the same alone and in a batch") {
  Generator g(overfit_model(), test_env(), torch::kCPU);
  const std::vector<std::string> prompts = {"a c", "b ", "", "a d", "a ", "a cat b a dog a b "};
  for (int beams : {1, 3}) {
    GenerateOptions o;
    o.beams = beams;
    o.max_words = 8;
    auto batch = g.generate(prompts, o);
    for (size_t i = 0; i < prompts.size(); ++i) check_same(batch[i], one(g, prompts[i], o));
  }
  // Sampling: prompt i draws from (seed, i), wherever it sits.
  GenerateOptions s;
  s.temperature = 1.0;
  s.seed = 9;
  s.max_words = 6;
  auto batch = g.generate({"a ", "", "b "}, s);
  check_same(batch[2], g.generate({"b "}, s, {}, 2).at(0));
  check_same(batch[1], g.generate({""}, s, {}, 1).at(0));
}

TEST_CASE("generate: beam search finds texts at least as likely as greedy") {
  Generator g(overfit_model(), test_env(), torch::kCPU);
  for (const std::string p : {"", "a ", "b ", "a c"}) {
    GenerateOptions greedy, beam;
    beam.beams = 4;
    auto a = one(g, p, greedy), b = one(g, p, beam);
    INFO("prompt '" << p << "': greedy '" << a.text << "' " << a.logprob << ", beams '" << b.text << "' " << b.logprob);
    CHECK(b.logprob >= a.logprob - 1e-4);
    CHECK(b.stop_reason == "end");
    double sum = 0;
    for (const auto& w : b.words) sum += w.logprob;
    CHECK(sum >= b.logprob - 1e-9);  // the total adds the end's log-probability (<= 0)
  }
}

TEST_CASE("generate: untrained model, sampled words are valid, streamed text equals the result") {
  torch::set_num_threads(2);
  torch::manual_seed(5);
  ImageLatentTransformer m(test_config());
  m->eval();
  Generator g(m, test_env(), torch::kCPU);
  GenerateOptions o;
  o.temperature = 1.0;
  o.seed = 3;
  o.max_words = 30;
  o.min_words = 30;
  o.stop = {"zz", "\xC3\xA9t"};
  std::map<size_t, std::string> streamed;
  const std::vector<std::string> prompts = {"Hello ", "caf", "", "\xD7\xA9\xD7\x9C"};
  auto out = g.generate(prompts, o, [&](size_t i, const std::string& piece) { streamed[i] += piece; });
  for (size_t i = 0; i < prompts.size(); ++i) {
    INFO("prompt " << i << ": " << out[i].text);
    CHECK(streamed[i] == out[i].text);
    CHECK(utf8_valid(out[i].text));
    CHECK(utf8_valid(prompts[i] + out[i].text));
    for (const auto& w : out[i].words) CHECK(w.text.size() <= size_t(Words::T - 2));
    if (out[i].stop_reason != "stop") CHECK(out[i].words.size() == 30);
  }
  // Same seed, same texts.
  auto again = g.generate(prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) check_same(out[i], again[i]);
}

TEST_CASE("generate: an overfit model continues a 30-word sentence from its first word, word after word") {
  // Every generated word is rendered, encoded and read back before the next one: a wrong
  // word anywhere (or a feedback path that differs from training's) derails the rest.
  const std::string sentence =
      "All human beings are born free and equal in dignity and rights. They are endowed with reason and "
      "conscience and should act towards one another in a spirit of brotherhood.";
  const auto words = split_words(sentence);
  REQUIRE(words.size() >= 30);
  torch::set_num_threads(2);
  torch::manual_seed(11);
  Words w;
  Generator g(overfit(w.batch({{sentence}}), 400), test_env(), torch::kCPU);
  GenerateOptions o;
  o.max_words = 2 * int(words.size());
  for (bool cache : {true, false}) {
    o.use_cache = cache;
    auto r = one(g, words[0], o);
    INFO("cache " << cache << ": '" << r.text << "'");
    CHECK(r.text == sentence.substr(words[0].size()));
    CHECK(r.words.size() == words.size() - 1);
    CHECK(r.stop_reason == "end");
  }
}

TEST_CASE("generate: prompts with prefix blocks, cached prefill equals recomputing with the training mask") {
  Generator g(overfit_model(), test_env(), torch::kCPU);
  GenerateOptions cached, recompute;
  cached.max_words = recompute.max_words = 6;
  cached.min_words = recompute.min_words = 6;
  recompute.use_cache = false;
  const std::string SO = "\x0E", SI = "\x0F";
  const std::vector<std::string> prompts = {SO + "a cat " + SI + "a ", "b " + SO + "a dog b " + SI, SO + "a b " + SI + "a c",
                                            "a " + SO + "b a "};
  auto a = g.generate(prompts, cached), b = g.generate(prompts, recompute);
  for (size_t i = 0; i < prompts.size(); ++i) check_same(a[i], b[i]);
  CHECK_FALSE(a[0].open_block);
  CHECK(a[3].open_block);  // ends inside a block: read causally, flagged
  // --max-context cuts into a block: its remaining words stay a block, in both paths.
  cached.max_context = recompute.max_context = 3;
  a = g.generate(prompts, cached), b = g.generate(prompts, recompute);
  for (size_t i = 0; i < prompts.size(); ++i) check_same(a[i], b[i]);
}

TEST_CASE("generate: min-p keeps the bytes at least that fraction as likely as the likeliest") {
  std::array<float, 256> lp;
  lp.fill(-100);
  lp['a'] = std::log(0.6f), lp['b'] = std::log(0.3f), lp['c'] = std::log(0.1f);
  std::array<bool, 256> all;
  all.fill(true);
  // 'b' is 0.5 of 'a', 'c' 0.17: min-p 0.4 keeps a and b, so the top of the range draws 'b'.
  CHECK(choose_byte(lp.data(), all, 1, 0, 1, 0.999, 0.4) == 'b');
  CHECK(choose_byte(lp.data(), all, 1, 0, 1, 0.999, 0) == 'c');  // without it, 'c'
  CHECK(choose_byte(lp.data(), all, 1, 0, 1, 0.999, 0.6) == 'a');  // 'b' below 0.6 of 'a'
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> u(0, 1);
  std::map<int, int> n;
  for (int i = 0; i < 20000; ++i) ++n[choose_byte(lp.data(), all, 1, 0, 1, u(rng), 0.4)];
  CHECK(n['c'] == 0);
  CHECK(std::abs(n['a'] / 20000.0 - 2.0 / 3) < 0.02);  // renormalised over a and b
}

TEST_CASE("generate: word offsets for the repetition penalty and no-repeat n-grams") {
  const std::vector<std::string> w = {"a ", "b ", "a ", "c ", "a "};
  auto none = word_offsets(w, 1.0, 0);
  CHECK(none.empty());
  auto pen = word_offsets(w, 2.0, 0);
  CHECK(pen.size() == 3);
  CHECK(std::abs(pen.at("b ") + std::log(2.0f)) < 1e-6);
  // Bigrams: the text ends in "a "; "a " was followed by "b " and "c ": both banned.
  auto bi = word_offsets(w, 1.0, 2);
  CHECK(bi.size() == 2);
  CHECK(std::isinf(bi.at("b ")));
  CHECK(std::isinf(bi.at("c ")));
  auto uni = word_offsets(w, 1.0, 1);  // no word twice
  CHECK(uni.size() == 3);
  auto tri = word_offsets(w, 1.0, 3);  // "c a" never came before
  CHECK(tri.empty());
  // A ban wins over a penalty.
  auto both = word_offsets(w, 2.0, 2);
  CHECK(std::isinf(both.at("c ")));
  CHECK(!std::isinf(both.at("a ")));
}

TEST_CASE("generate: the word-level controls on a degenerate model, greedy and with beams") {
  torch::set_num_threads(2);
  torch::manual_seed(5);
  ImageLatentTransformer m(test_config());
  m->eval();
  Generator g(m, test_env(), torch::kCPU);
  Segmenter seg(SegmentOptions{size_t(Words::T - 2)});
  auto words_of = [&](const Generation& r) {  // prompt words and generated words
    std::vector<std::string> out;
    for (auto w : seg.words(r.prompt)) out.emplace_back(w);
    for (const auto& w : r.words) out.push_back(w.text);
    return out;
  };
  GenerateOptions plain;
  plain.max_words = 25;
  plain.min_words = 25;
  const std::string prompt = "x y ";
  Generation base = one(g, prompt, plain);
  auto bw = words_of(base);
  const std::set<std::string> distinct(bw.begin(), bw.end());
  REQUIRE(distinct.size() < bw.size());  // an untrained model repeats itself: the case to fix
  for (int beams : {1, 3}) {
    GenerateOptions o = plain;
    o.beams = beams;
    o.no_repeat_ngram = 1;
    auto r = words_of(one(g, prompt, o));
    INFO("beams " << beams);
    CHECK(std::set<std::string>(r.begin(), r.end()).size() == r.size());  // no word twice
    o.no_repeat_ngram = 2;
    r = words_of(one(g, prompt, o));
    std::set<std::pair<std::string, std::string>> bigrams;
    for (size_t i = 0; i + 1 < r.size(); ++i) CHECK(bigrams.insert({r[i], r[i + 1]}).second);  // no bigram twice
    o.no_repeat_ngram = 0;
    o.repetition_penalty = 1e6;  // so strong it acts as a ban
    r = words_of(one(g, prompt, o));
    CHECK(std::set<std::string>(r.begin(), r.end()).size() == r.size());
  }
  // A penalty of 1 changes nothing; a mild one changes the text, and the reported
  // log-probabilities stay the model's (the words' sum is the text's, with no offsets in it).
  GenerateOptions one_pen = plain;
  one_pen.repetition_penalty = 1.0;
  check_same(base, one(g, prompt, one_pen));
  GenerateOptions mild = plain;
  mild.repetition_penalty = 3.0;
  Generation pm = one(g, prompt, mild);
  CHECK(pm.text != base.text);
  double sum = 0;
  for (const auto& w : pm.words) sum += w.logprob;
  CHECK(std::abs(sum - pm.logprob) < 1e-3);
  CHECK_THROWS(one(g, prompt, [] { GenerateOptions o; o.repetition_penalty = 0.5; return o; }()));
  CHECK_THROWS(one(g, prompt, [] { GenerateOptions o; o.min_p = 2; return o; }()));
}
