// The byte-level baseline (architecture "bytes-lm"): its byte streams, its forward pass
// (packed and padded paths, no look-ahead, batch independence), its config and generation.
#include "torch_catch.h"  // first: see there
#include "generate/generate.h"
#include "model/bytes_lm.h"
#include "model/model_helper.h"
#include "text/segment.h"

using namespace ilt;
using namespace ilt::test;

namespace {

ModelConfig bytes_lm_config() {
  ModelConfig c = model_config("bytes-lm-tiny");
  c.latent = {2, 32, 2, 64};
  c.max_word_length = int(Words::T);
  return c;
}

// Row r of a stream, up to its end (the first padding slot).
std::string row_bytes(const ByteStreams& s, int64_t r) {
  std::string out;
  for (int64_t i = 0; i < s.length; ++i) {
    const size_t k = size_t(r * s.length + i);
    if (s.doc[k] < 0) break;
    out.push_back(char(s.bytes[k]));
  }
  return out;
}

GenerateEnv segment_env() {
  GenerateEnv env;
  auto segmenter = std::make_shared<Segmenter>(SegmentOptions{size_t(Words::T - 2)});
  env.segment = [segmenter](std::string_view text) {
    std::vector<std::string> out;
    for (auto w : segmenter->words(text)) out.emplace_back(w);
    return out;
  };
  env.max_word_length = Words::T;
  return env;
}

}  // namespace

TEST_CASE("bytes-lm: a batch's rows become the documents' bytes, each label byte a target") {
  Words w;
  Batch b = w.batch({{"a cat", "b a"}, {"hello there"}});
  ByteStreams s = byte_streams(b);
  REQUIRE(s.rows == 2);
  CHECK(row_bytes(s, 0) == "\x02" "a cat\x02" "b a");
  CHECK(row_bytes(s, 1) == "\x02" "hello there");
  // Slot i predicts byte i + 1 of its document; the last byte of a document predicts EOS.
  int64_t targets = 0;
  for (int64_t r = 0; r < s.rows; ++r) {
    const std::string text = row_bytes(s, r);
    for (size_t i = 0; i < text.size(); ++i) {
      const size_t k = size_t(r * s.length) + i;
      const bool doc_end = i + 1 == text.size() || text[i + 1] == '\x02';
      INFO("row " << r << " byte " << i);
      CHECK(s.target_of[k] == (doc_end ? kEos : uint8_t(text[i + 1])));
      CHECK(s.word[k] >= 0);
      targets += s.target_of[k] >= 0;
    }
  }
  CHECK(targets == s.targets);
  // One EOS per document instead of one per word: label bytes + documents.
  CHECK(s.targets == b.label_bytes + 3);
  // Positions restart per document; piece lengths cover each row.
  CHECK(s.positions[6] == 0);  // the second document's BOS in row 0
  CHECK(s.piece_lengths == std::vector<int64_t>{6, 4, 12});
}

TEST_CASE("bytes-lm: a prefix block's bytes share its id and carry no target but the ShiftIn's") {
  Words w;
  Batch b = w.batch_of_words({{{"\x0E", "q ", "x", "\x0F", "ab"}}});
  ByteStreams s = byte_streams(b);
  CHECK(row_bytes(s, 0) == "\x02\x0Eq x\x0F" "ab");
  std::vector<int32_t> block(s.prefix.begin(), s.prefix.begin() + 8);
  CHECK(block == std::vector<int32_t>{-1, 0, 0, 0, 0, 0, -1, -1});
  // BOS predicts ShiftOut; inside the block only the ShiftIn predicts (the answer's first byte).
  std::vector<int64_t> t(s.target_of.begin(), s.target_of.begin() + 8);
  CHECK(t == std::vector<int64_t>{0x0E, -1, -1, -1, -1, 'a', 'b', kEos});
}

TEST_CASE("bytes-lm: no look-ahead, and a text's loss does not depend on its batch (packed and padded paths)") {
  torch::manual_seed(3);
  ImageLatentTransformer m(bytes_lm_config());
  m->eval();
  torch::NoGradGuard ng;
  Words w;
  auto alone = m->forward(w.batch({{"the cat sat"}}));
  auto other = m->forward(w.batch({{"the cat sat", "on a mat"}, {"x y"}}));
  // A row with a prefix block sends the whole batch down the padded (masked) path.
  auto padded = m->forward(w.batch_of_words({{{"the ", "cat ", "sat"}}, {{"\x0E", "q ", "\x0F", "z"}}}));
  const int64_t L = 4;  // BOS + 3 words
  auto a = alone.word_nats.narrow(1, 0, L);
  CHECK(relative_difference(other.word_nats.narrow(0, 0, 1).narrow(1, 0, L), a) < 1e-5);
  CHECK(relative_difference(padded.word_nats.narrow(0, 0, 1).narrow(1, 0, L), a) < 1e-5);
  // Changing the last word changes only the last words' losses.
  auto changed = m->forward(w.batch({{"the cat sit"}}));
  CHECK(relative_difference(changed.word_nats.narrow(1, 0, 2), alone.word_nats.narrow(1, 0, 2)) < 1e-6);
  CHECK((changed.word_nats[0][2] - alone.word_nats[0][2]).abs().item<double>() > 1e-6);
  // Targets: label bytes, plus EOS at the document's end.
  CHECK(alone.target_bytes == int64_t(std::string("the cat sat").size()) + 1);
  CHECK(alone.word_targets.sum().item<int64_t>() == alone.target_bytes);
  CHECK(std::abs(alone.nats.item<double>() - alone.word_nats.sum().item<double>()) < 1e-3);
  // FLOPs: the stack over 12 bytes and the head on 12 targets.
  const StackConfig& c = m->config.latent;
  const double n = 12, d = c.dim, f = c.ffn;
  const double expect = c.layers * (2 * n * (4 * d * d + 3 * d * f) + 4 * n * n * d) + 2 * n * d * 256;
  CHECK(std::abs(m->forward_flops(w.batch({{"the cat sat"}})) - expect) < 1e-6 * expect);
}

TEST_CASE("bytes-lm: config presets, validation and the JSON round trip") {
  for (const char* name : {"bytes-lm-tiny", "bytes-lm-base"}) {
    ModelConfig c = model_config(name);
    CHECK(c.bytes_lm());
    CHECK_FALSE(c.has_image());
    CHECK(to_json(c).at("architecture") == "bytes-lm");
    CHECK(model_config_from_json(to_json(c)).latent.dim == c.latent.dim);
    CHECK(model_config_from_json(to_json(c)).bytes_lm());
  }
  nlohmann::json bad = {{"preset", "tiny"}, {"architecture", "bytes-lm"}};
  CHECK(ILT_ERROR_OF(model_config_from_json(bad)).find("no encoders") != std::string::npos);
  bad = {{"preset", "bytes-lm-tiny"}, {"architecture", "bytes"}};
  CHECK(ILT_ERROR_OF(model_config_from_json(bad)).find("architecture") != std::string::npos);
  // An ILT config of an older format has no key: it stays an ILT.
  CHECK_FALSE(model_config_from_json({{"preset", "tiny"}, {"format_version", 3}}).bytes_lm());
}

TEST_CASE("bytes-lm: an overfit baseline generates its texts, and batched prompts equal single ones") {
  torch::manual_seed(1);
  Words w;
  Batch b = w.batch({{"a b"}, {"b a"}, {"a cat"}, {"a dog"}});
  ImageLatentTransformer m(bytes_lm_config());
  m->train();
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    m->forward(b).loss.backward();
    opt.step();
  }
  m->eval();
  Generator g(m, segment_env(), torch::kCPU);
  auto gen = [&](const std::string& p, GenerateOptions o = {}) { return g.generate({p}, o).at(0); };
  auto ba = gen("b ");
  CHECK(ba.text == "a");
  CHECK(ba.stop_reason == "end");
  REQUIRE(ba.words.size() == 1);
  CHECK(ba.words[0].text == "a");
  CHECK(ba.logprob < ba.words[0].logprob);  // the end has its probability too
  CHECK(gen("a c").text == "at");  // a mid-word prompt is continued
  CHECK(gen("a d").text == "og");
  GenerateOptions o;
  o.stop = {"t"};
  auto stopped = gen("a c", o);
  CHECK(stopped.text == "a");
  CHECK(stopped.stop_reason == "stop");
  o = {};
  o.max_words = 1;
  auto first = gen("", o);
  CHECK(first.words.size() == 1);
  CHECK(first.stop_reason == "max_words");
  // Batched and streamed: the same texts, the streamed pieces adding up to them.
  std::vector<std::string> prompts = {"b ", "a c", "", "a d"};
  std::vector<std::string> streamed(prompts.size());
  auto all = g.generate(prompts, {}, [&](size_t i, const std::string& piece) { streamed[i] += piece; });
  for (size_t i = 0; i < prompts.size(); ++i) {
    CHECK(all[i].text == gen(prompts[i]).text);
    CHECK(streamed[i] == all[i].text);
  }
  // Sampling is seeded per prompt.
  o = {};
  o.temperature = 1.5;
  o.seed = 7;
  o.max_words = 4;
  CHECK(gen("a ", o).text == gen("a ", o).text);
  // What only an ILT has is refused in one line.
  o = {};
  o.beams = 2;
  CHECK(ILT_ERROR_OF(gen("a ", o)).find("bytes-lm") != std::string::npos);
  o = {};
  o.no_repeat_ngram = 2;
  CHECK(ILT_ERROR_OF(gen("a ", o)).find("bytes-lm") != std::string::npos);
}
