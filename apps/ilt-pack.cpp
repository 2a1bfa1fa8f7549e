// ilt-pack: words shards + images shards -> examples and vocabulary shards. See --help.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/cli.h"
#include "common/error.h"
#include "common/hash.h"
#include "data/pack.h"
#include "shard/records.h"
#include "shard/shard.h"

using namespace ilt;

namespace {
std::string base_name(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
nlohmann::json source(const std::string& path, uint64_t records) {
  nlohmann::json j = {{"name", path}, {"records", records}};
  if (path != "-") j["sha256"] = sha256_file(path);
  return j;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ilt-pack: turn words shards and their images shards into training examples.\n\n"
      "Each document gets a BOS word in front; documents are packed into sequences of\n"
      "--max-seq-length words (attention never crosses documents); every word gets a label\n"
      "(the next word, or the next bytes of the document). Words are stored as ids into a\n"
      "vocabulary shard that holds each distinct word's bytes and image once.\n\n"
      "Writes PREFIX.train.examples + PREFIX.train.vocab and, with --validation-fraction,\n"
      "PREFIX.validation.examples + PREFIX.validation.vocab.\n\n"
      "Example: ilt-pack words.shard --images images.shard -o demo --validation-fraction 0.05"};
  std::vector<std::string> inputs, images;
  std::string prefix, labels = "next-word";
  PackOptions po;
  bool no_packing = false;
  double validation = 0;
  uint64_t seed = 0;
  app.add_option("inputs", inputs, "Words shards")->required();
  app.add_option("--images", images, "Images shards rendered from them (ilt-render)")->required();
  app.add_option("-o,--output", prefix, "Output prefix")->required();
  app.add_option("--labels", labels, "next-word (the next word) or next-chars (the next bytes of the document)")
      ->capture_default_str()
      ->check(CLI::IsMember({"next-word", "next-chars"}));
  app.add_option("--max-word-length", po.max_word_length, "Bytes per word and label, BOS/EOS included")
      ->capture_default_str();
  app.add_option("--max-seq-length", po.max_seq_length, "Words per example")->capture_default_str();
  app.add_flag("--no-packing", no_packing, "One document per example (long ones cut into chunks)");
  app.add_option("--validation-fraction", validation, "Fraction of documents for validation (by a hash of the text)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", seed, "Seed of the example order")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-pack", [&] {
    po.labels = parse_label_mode(labels);
    po.packing = !no_packing;
    // Word -> its image record; all images shards must come from the same renderer settings.
    std::unordered_map<std::string, std::string> image_of;
    nlohmann::json render, sources = nlohmann::json::array(), image_sources = nlohmann::json::array();
    WordImage img;
    for (const std::string& path : images) {
      ShardReader r(path, kKindImages);
      nlohmann::json rm = r.header().value("render", nlohmann::json());
      if (render.is_null()) {
        render = rm;
      } else if (rm != render) {
        fail("{}: rendered with other settings or fonts than {}; pack images of one renderer", path, images[0]);
      }
      std::string_view rec;
      while (r.next(&rec)) {
        decode_word_image(rec, &img);
        image_of.emplace(img.word, std::string(rec));
      }
      image_sources.push_back(source(path, r.next_index()));
    }
    Progress progress("ilt-pack", 0);
    auto warn = [](const std::string& m) { fmt::print(stderr, "ilt-pack: warning: {}\n", m); };
    Packer train(po, warn), valid(po, warn);
    WordsDoc doc;
    for (const std::string& path : inputs) {
      ShardReader r(path, kKindWords);
      std::string_view rec;
      while (r.next(&rec)) {
        uint64_t i = r.next_index() - 1;
        try {
          decode_words_doc(rec, &doc);
        } catch (const Error& e) {
          fail("{}: record {}: {}", path, i, e.what());
        }
        std::vector<std::string> words = with_bos(doc.words);
        for (const std::string& w : words)
          if (!image_of.count(w))
            fail("{}: document {} (record {}): word '{}' has no image in {}; render this words shard "
                 "with ilt-render and pack it with that images shard",
                 path, doc.id, i, w, fmt::join(images, ", "));
        (is_validation(doc.text(), validation) ? valid : train).add(words, doc.tag, doc.id);
        progress.update(train.words() + valid.words(), "words packed");
      }
      sources.push_back(source(path, r.next_index()));
    }

    nlohmann::json params = {{"labels", labels}, {"max_word_length", po.max_word_length},
                             {"max_seq_length", po.max_seq_length}, {"packing", po.packing},
                             {"validation_fraction", validation}, {"seed", seed}};
    std::string summary;
    auto write = [&](Packer& p, const std::string& split) {
      std::vector<Example>& exs = p.examples();
      shuffle_examples(&exs, seed);
      std::vector<std::string> vocab = renumber_vocab(&exs, p.vocab());
      std::string ex_path = prefix + "." + split + ".examples", vocab_path = prefix + "." + split + ".vocab";
      nlohmann::json head = {{"tool", "ilt-pack"}, {"version", ILT_VERSION}, {"split", split},
                             {"params", params}, {"render", render}};
      head["vocab"] = base_name(vocab_path);
      ShardWriter vw(vocab_path, kKindVocab, head);
      for (const std::string& w : vocab) vw.add(image_of.at(w));
      uint64_t words = 0, slots = 0, pieces = 0;
      ShardWriter ew(ex_path, kKindExamples, head);
      for (const Example& ex : exs) {
        ew.add(encode_example(ex));
        words += ex.size();
        slots += po.max_seq_length;
        pieces += ex.docs.size();
      }
      nlohmann::json counts = {{"examples", exs.size()}, {"documents", p.documents()}, {"words", words},
                               {"document_pieces", pieces}, {"vocab", vocab.size()},
                               {"fill", slots ? double(words) / double(slots) : 0.0},
                               {"prefix_warnings", p.warnings()}};
      nlohmann::json foot = {{"inputs", sources}, {"image_inputs", image_sources}, {"counts", counts}};
      vw.finish(foot);
      ew.finish(foot);
      summary += fmt::format("{}: {} examples, {} documents, {} words, {} distinct ({:.1f}% filled) -> {}; ",
                             split, exs.size(), p.documents(), words, vocab.size(),
                             100.0 * counts["fill"].get<double>(), ex_path);
    };
    write(train, "train");
    if (validation > 0) write(valid, "validation");
    progress.finish(summary.substr(0, summary.size() - 2));
    return 0;
  });
}
