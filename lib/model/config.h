// Model configuration: sizes of the four parts, from a named preset or a JSON file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace ilt {

// A transformer stack. layers == 0 switches the part off (encoders only).
struct StackConfig {
  int layers = 0;
  int dim = 0;
  int heads = 1;
  int ffn = 0;  // SwiGLU hidden width
};

struct ModelConfig {
  StackConfig image_encoder;   // ViT over 16x16 patches of the word image; layers 0 = none
  StackConfig bytes_encoder;   // bidirectional over the word's bytes; layers 0 = none
  StackConfig latent;          // causal over words
  StackConfig bytes_decoder;   // causal over [latent, BOS, label bytes]
  bool bit_bias = true;        // byte embedding = per-byte vector + vectors of its 8 bits
  double modality_dropout = 0.15;  // training only, when both encoders are present
  // Data geometry, fixed by the packed data the model is trained on.
  int max_word_length = 32;    // T: bytes per word / label, BOS and EOS included
  int image_height = 16;       // H: one patch row
  int patch_width = 16;
  int max_patches = 32;        // image width / patch width at most (positions of the ViT)
  double rope_theta = 10000.0;

  bool has_image() const { return image_encoder.layers > 0; }
  bool has_bytes() const { return bytes_encoder.layers > 0; }
  void validate() const;  // throws ilt::Error with the offending field
};

// "tiny", "base", "ref-tiny", "ref-small"; or a JSON file with the fields above (missing
// fields keep the preset given by its "preset" key, default "tiny").
ModelConfig model_config(const std::string& preset_or_file);
// `source` (a file name) prefixes every error: "FILE: key /latent/heads: ...".
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& source = "");
nlohmann::json to_json(const ModelConfig& c);

}  // namespace ilt
