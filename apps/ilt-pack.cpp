// ilt-pack: words shards + images shards -> examples and vocabulary shards. See --help.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "common/error.h"
#include "common/bytes.h"
#include "data/pack.h"
#include "shard/records.h"
#include "shard/shard.h"

using namespace ilt;


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
  one_line_errors(app, "ilt-pack");
  app.add_option("inputs", inputs, "Words shards")->required();
  app.add_option("--images", images, "Images shards rendered from them (ilt-render)")->required();
  app.add_option("-o,--output", prefix, "Output prefix")->required();
  app.add_option("--labels", labels, "next-word (the next word) or next-chars (the next bytes of the document)")
      ->capture_default_str()
      ->check(CLI::IsMember({"next-word", "next-chars"}));
  app.add_option("--max-word-length", po.max_word_length, "Bytes per word and label, BOS/EOS included")
      ->capture_default_str()
      ->check(Integer(3, 4096));
  app.add_option("--max-seq-length", po.max_seq_length, "Words per example")->capture_default_str()->check(Integer(1, 1 << 20));
  app.add_flag("--no-packing", no_packing, "One document per example (long ones cut into chunks)");
  app.add_option("--validation-fraction", validation, "Fraction of documents for validation (by a hash of the text)")
      ->capture_default_str()
      ->check(Number(0, 1));
  app.add_option("--seed", seed, "Seed of the example order")->capture_default_str()->check(Integer(0));
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-pack", [&] {
    po.labels = parse_label_mode(labels);
    po.packing = !no_packing;
    // Word -> number of its image record (over all images shards in order). Only words are
    // kept in memory; the images are copied into the vocabularies in a second pass.
    std::unordered_map<std::string, uint32_t> image_id;
    std::vector<uint64_t> shard_records;
    nlohmann::json render, sources = nlohmann::json::array(), image_sources = nlohmann::json::array();
    uint32_t next_image = 0;
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
        try {
          ByteReader br(rec);
          image_id.emplace(br.bytes(br.varint()), next_image++);
        } catch (const Error& e) {
          fail("{}: record {}: {}", path, r.next_index() - 1, e.what());
        }
      }
      shard_records.push_back(r.next_index());
      image_sources.push_back(shard_source(path, r.next_index()));
    }
    Progress progress("ilt-pack", 0);
    auto warn = [](const std::string& m) { fmt::print(stderr, "ilt-pack: warning: {}\n", m); };
    Packer train(po, warn), valid(po, warn);
    WordsDoc doc;
    std::vector<uint32_t> ids;
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
        ids.resize(words.size());
        for (size_t k = 0; k < words.size(); ++k) {
          auto it = image_id.find(words[k]);
          if (it == image_id.end())
            fail("{}: document {} (record {}): word {} has no image in {}; render this words shard "
                 "with ilt-render and pack it with that images shard",
                 path, nlohmann::json(doc.id).dump(), i, nlohmann::json(words[k]).dump(), fmt::join(images, ", "));
          ids[k] = it->second;
        }
        (is_validation(doc.text(), validation) ? valid : train).add(words, ids, doc.tag, doc.id);
        progress.update(train.words() + valid.words(), "words packed");
      }
      sources.push_back(shard_source(path, r.next_index()));
    }

    nlohmann::json params = {{"labels", labels}, {"max_word_length", po.max_word_length},
                             {"max_seq_length", po.max_seq_length}, {"packing", po.packing},
                             {"validation_fraction", validation}, {"seed", seed}};
    std::string summary;
    struct Split {
      Packer* packer = nullptr;
      std::string name;
      std::vector<uint32_t> used;  // image numbers in vocabulary order (ascending)
      std::unique_ptr<ShardWriter> vocab, examples;
      size_t next = 0;
      nlohmann::json footer = {};
    };
    std::vector<Split> splits;
    splits.emplace_back().packer = &train;
    splits.back().name = "train";
    if (validation > 0) {
      splits.emplace_back().packer = &valid;
      splits.back().name = "validation";
    }
    nlohmann::json foot_inputs = {{"inputs", sources}, {"image_inputs", image_sources}};
    for (Split& sp : splits) {
      std::vector<Example>& exs = sp.packer->examples();
      shuffle_examples(&exs, seed);
      sp.used = compact_ids(&exs, next_image);
      std::string ex_path = prefix + "." + sp.name + ".examples", vocab_path = prefix + "." + sp.name + ".vocab";
      nlohmann::json head = {{"tool", "ilt-pack"}, {"version", ILT_VERSION}, {"split", sp.name},
                             {"params", params}, {"render", render}, {"vocab", vocab_name(vocab_path)}};
      sp.vocab = std::make_unique<ShardWriter>(vocab_path, kKindVocab, head);
      uint64_t words = 0, slots = 0, pieces = 0;
      sp.examples = std::make_unique<ShardWriter>(ex_path, kKindExamples, head);
      for (const Example& ex : exs) {
        sp.examples->add(encode_example(ex));
        words += ex.size();
        slots += po.max_seq_length;
        pieces += ex.docs.size();
      }
      nlohmann::json counts = {{"examples", exs.size()}, {"documents", sp.packer->documents()}, {"words", words},
                               {"document_pieces", pieces}, {"vocab", sp.used.size()},
                               {"fill", slots ? double(words) / double(slots) : 0.0},
                               {"prefix_warnings", sp.packer->warnings()}};
      sp.footer = foot_inputs;
      sp.footer["counts"] = counts;
      summary += fmt::format("{}: {} examples, {} documents, {} words, {} distinct ({:.1f}% filled) -> {}; ",
                             sp.name, exs.size(), sp.packer->documents(), words, sp.used.size(),
                             100.0 * counts["fill"].get<double>(), ex_path);
    }
    // Vocabularies: one sequential pass over the images shards, copying the used records.
    uint32_t number = 0;
    for (const std::string& path : images) {
      ShardReader r(path, kKindImages);
      std::string_view rec;
      for (; r.next(&rec); ++number)
        for (Split& sp : splits)
          if (sp.next < sp.used.size() && sp.used[sp.next] == number) {
            sp.vocab->add(rec);
            ++sp.next;
          }
    }
    for (Split& sp : splits) {
      if (sp.next != sp.used.size()) fail("images shards changed while packing ({} of {} vocabulary images found)", sp.next, sp.used.size());
      // The vocabulary first: an examples shard never appears without its vocabulary.
      sp.vocab->finish(sp.footer);
      sp.examples->finish(sp.footer);
    }
    progress.finish(summary.substr(0, summary.size() - 2));
    return 0;
  });
}
