// Model configuration: sizes of the four parts, from a named preset or a JSON file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ilt {

// A transformer stack. layers == 0 switches the part off (encoders only).
struct StackConfig {
  int layers = 0;
  int dim = 0;
  int heads = 1;
  int ffn = 0;                  // feed-forward hidden width
  std::string mlp = "swiglu";   // "swiglu": down(silu(gate x) * up x); "gelu": down(gelu(up x))
};

// config.json's model "format_version" written today. A key a config leaves out takes the
// default of the config's version, so a checkpoint keeps its behaviour when a later version
// changes a default. Version 1: configs written before the key existed (same defaults as 2).
// Version 3 added a stack's "mlp" (default "swiglu", as before): older ilt refuses such configs
// instead of building a SwiGLU model for a GELU checkpoint. Version 4 added "architecture"
// (default "ilt"), so that older ilt refuses a byte-level baseline's checkpoint. Version 5 added
// "autoencode" (versions before it: 0, the loss off).
inline constexpr int kModelFormatVersion = 5;

struct ModelConfig {
  int format_version = kModelFormatVersion;
  // "ilt": the Image Latent Transformer below. "bytes-lm": the byte-level baseline, a causal
  // transformer over the documents' raw bytes with no word hierarchy: `latent` is that
  // transformer (over bytes, not words); both encoders and the bytes decoder are "none".
  std::string architecture = "ilt";
  StackConfig image_encoder;   // ViT over 16x16 patches of the word image; layers 0 = none
  StackConfig bytes_encoder;   // bidirectional over the word's bytes; layers 0 = none
  StackConfig latent;          // causal over words
  StackConfig bytes_decoder;   // causal over [latent, BOS, label bytes]
  bool bit_bias = true;        // byte embedding = per-byte vector + vectors of its 8 bits
  double modality_dropout = 0.15;  // training only, when both encoders are present
  // Training only: weight of the autoencoding loss, in which the bytes decoder also spells each
  // distinct word of the batch from its own word vector (through the latent's final norm, as if
  // the latent passed it on unchanged). It teaches the decoder to read a word's letters from a
  // word vector from the first steps, so that a latent which moves a word vector from an earlier
  // position (copying) is rewarded at once. 0: off. Added to the next-word loss as
  // weight x (its summed nats), both divided by the step's next-word target bytes.
  double autoencode = 0.0;
  // Choices where the current reference (WeLT, Feb 2026) differs; defaults are the October
  // 2025 design ilt follows until experiments separate them (docs/design.md).
  std::string modality_dropout_mode = "word";  // "word": each word drops one part with p, no
                                               // rescale; "call": each part dropped with p once per
                                               // forward call (both may go), survivors x n/active
  bool encoder_norm = false;           // RMSNorm after the fusion Linear
  bool decoder_norm = false;           // RMSNorm after the latent-to-decoder Linear
  std::string bytes_pooling = "mean";  // "mean" over the word's bytes, or "bos": the BOS state
  std::string image_pooling = "mean";  // "mean" over patches, or "cls": a CLS token -> Linear -> tanh
  std::string bit_bias_init = "random";  // bit vectors start "random" (like the byte table) or at "zero"
  bool tie_head = false;               // decoder logits = y . (decoder byte embedding)^T, no head
  // Data geometry, fixed by the packed data the model is trained on.
  int max_word_length = 32;    // T: bytes per word / label, BOS and EOS included
  int image_height = 16;       // H: one patch row
  int patch_width = 16;
  int max_patches = 32;        // image width / patch width at most (positions of the ViT)
  double rope_theta = 10000.0;

  bool bytes_lm() const { return architecture == "bytes-lm"; }
  bool has_image() const { return image_encoder.layers > 0; }
  bool has_bytes() const { return bytes_encoder.layers > 0; }
  void validate() const;  // throws ilt::Error with the offending field
};

// "tiny", "base", "ref-tiny", "ref-small" (the October 2025 reference's sizes), "welt-tiny",
// "welt-small" (those sizes with every current-reference choice on), "bytes-lm-tiny",
// "bytes-lm-base" (byte-level baselines sized to tiny's and base's training FLOPs); or a JSON file with the
// fields above (missing fields keep the preset given by its "preset" key, default "tiny").
ModelConfig model_config(const std::string& preset_or_file);
// The presets' names, in the order above.
const std::vector<std::string>& model_presets();
// `source` (a file name) prefixes every error: "FILE: key /latent/heads: ...". A config without
// "format_version" is read as `default_version`: today's for a user's file, 1 for a checkpoint's.
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& source = "",
                                   int default_version = kModelFormatVersion);
nlohmann::json to_json(const ModelConfig& c);

}  // namespace ilt
