// ilt-pack: words shards + images shards -> examples and vocabulary shards. See --help.
#include <CLI/CLI.hpp>

#include "common/cli.h"
#include "common/cli_checks.h"
#include "data/pack_files.h"

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
      "Memory is bounded by the vocabulary, not the corpus: examples are written as they fill\n"
      "(shuffled in 64 MB chunks; the loader shuffles again), and the vocabulary is put in\n"
      "order through bucket files beside the output (PREFIX.SPLIT.vocab.spill/, removed at\n"
      "the end). Word ids follow first use in the words shards, so images rendered in parts\n"
      "(ilt-render --part I/N) pack to the same records as one serial render.\n\n"
      "Example: ilt-pack words.shard --images images.shard -o demo --validation-fraction 0.05"};
  PackFilesOptions o;
  std::string labels = "next-word";
  PackOptions po;
  bool no_packing = false;
  one_line_errors(app, "ilt-pack");
  add_version_flag(app, "ilt-pack", [] { return std::vector<LibraryVersions>{zstd_version()}; });
  app.add_option("inputs", o.inputs, "Words shards")->required();
  app.add_option("--images", o.images, "Images shards rendered from them (ilt-render)")->required();
  app.add_option("-o,--output", o.prefix, "Output prefix")->required();
  app.add_option("--labels", labels, "next-word (the next word) or next-chars (the next bytes of the document)")
      ->capture_default_str()
      ->check(CLI::IsMember({"next-word", "next-chars"}));
  app.add_option("--max-word-length", po.max_word_length, "Bytes per word and label, BOS/EOS included")
      ->capture_default_str()
      ->check(Integer(3, 4096));
  app.add_option("--max-seq-length", po.max_seq_length, "Words per example")->capture_default_str()->check(Integer(1, 1 << 20));
  app.add_flag("--no-packing", no_packing, "One document per example (long ones cut into chunks)");
  app.add_option("--validation-fraction", o.validation_fraction, "Fraction of documents for validation (by a hash of the text)")
      ->capture_default_str()
      ->check(Number(0, 1));
  app.add_option("--seed", o.seed, "Seed of the example order")->capture_default_str()->check(Integer(0));
  app.add_option("--shard-size", o.shard_bytes,
                 "Split each split's examples into shards of at most this size (e.g. 256MB), written as "
                 "PREFIX.SPLIT-00000.examples, -00001, ... sharing PREFIX.SPLIT.vocab; 0: one shard")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return run_tool("ilt-pack", [&] {
    po.labels = parse_label_mode(labels);
    po.packing = !no_packing;
    o.pack = po;
    pack_files(o);
    return 0;
  });
}
