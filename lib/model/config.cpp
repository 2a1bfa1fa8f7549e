#include "model/config.h"

#include <fmt/ranges.h>

#include <cmath>

#include "common/error.h"
#include "common/io.h"
#include "common/json_error.h"

namespace ilt {

const std::vector<std::string>& model_presets() {
  static const std::vector<std::string> names = {"tiny",      "base",       "ref-tiny",      "ref-small",
                                                 "welt-tiny", "welt-small", "bytes-lm-tiny", "bytes-lm-base"};
  return names;
}

namespace {
ModelConfig preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {  // trains on two CPU cores in a couple of minutes
    c.image_encoder = {2, 64, 2, 128};
    c.bytes_encoder = {1, 64, 2, 128};
    c.latent = {2, 128, 4, 256};
    c.bytes_decoder = {1, 64, 2, 128};
  } else if (name == "base") {  // a GPU model
    c.image_encoder = {6, 384, 6, 1024};
    c.bytes_encoder = {4, 384, 6, 1024};
    c.latent = {12, 768, 12, 2048};
    c.bytes_decoder = {4, 384, 6, 1024};
  } else if (name == "ref-tiny") {  // the reference's measured tiny set-up, layer for layer:
    c.image_encoder = {12, 192, 3, 768, "gelu"};  // a ViT (GELU MLP); 13.1M parameters (reference 13M)
    c.bytes_encoder = {2, 128, 2, 512};
    c.latent = {4, 256, 4, 768};
    c.bytes_decoder = {4, 256, 4, 768};
  } else if (name == "ref-small") {  // the reference's small set-up: no image encoder, GELU MLPs;
    c.image_encoder = {0, 0, 1, 0};  // 29.8M parameters (reference 30.9M, with its biases)
    c.bytes_encoder = {10, 256, 4, 1024, "gelu"};
    c.latent = {6, 512, 8, 2048, "gelu"};
    c.bytes_decoder = {4, 256, 4, 768, "gelu"};
  } else if (name == "welt-tiny" || name == "welt-small") {  // the current reference's choices
    c = preset(name == "welt-tiny" ? "ref-tiny" : "ref-small");
    c.modality_dropout_mode = "call";
    c.encoder_norm = c.decoder_norm = true;
    c.bytes_pooling = "bos";
    c.image_pooling = "cls";
    c.bit_bias_init = "zero";
    c.tie_head = true;
  } else if (name == "bytes-lm-tiny" || name == "bytes-lm-base") {  // the byte-level baselines
    c.architecture = "bytes-lm";
    c.image_encoder = c.bytes_encoder = c.bytes_decoder = {0, 0, 1, 0};
    c.latent = name == "bytes-lm-tiny" ? StackConfig{2, 64, 2, 128} : StackConfig{8, 512, 8, 1536};
    c.modality_dropout = 0;
  } else {
    fail("unknown model preset '{}' ({}, or a JSON file)", name, fmt::join(model_presets(), ", "));
  }
  return c;
}

// Defaults that a format version fixes (keys a config of that version may leave out).
void version_defaults(int version, ModelConfig* c) {
  if (version < 1 || version > kModelFormatVersion)
    fail("model config: format_version {} is not one this ilt reads (1 to {}); written by a newer ilt?", version,
         kModelFormatVersion);
  // A version that changes a default sets the older value here for configs of the versions
  // before it (versions 1 to 4 differ only in keys they may not have).
  if (version < 5) c->autoencode = 0.0;
  c->format_version = version;
}

std::string one_of(const std::string& v, const char* key, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (v == a) return v;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  fail("key /{}: '{}' is not one of {}", key, v, list);
}

void stack_from(const nlohmann::json& j, const char* key, StackConfig* s) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_string() && v.get<std::string>() == "none") {
    *s = {0, 0, 1, 0};
    return;
  }
  if (!v.is_object()) fail("key /{}: expected an object or \"none\", got {}", key, v.type_name());
  const std::string where = std::string("/") + key;
  s->layers = json_value(v, "layers", s->layers, where);
  s->dim = json_value(v, "dim", s->dim, where);
  s->heads = json_value(v, "heads", s->heads, where);
  s->ffn = json_value(v, "ffn", s->ffn, where);
  s->mlp = one_of(json_value(v, "mlp", s->mlp, where), (std::string(key) + "/mlp").c_str(), {"swiglu", "gelu"});
}

nlohmann::json stack_json(const StackConfig& s) {
  if (s.layers == 0) return "none";
  return {{"layers", s.layers}, {"dim", s.dim}, {"heads", s.heads}, {"ffn", s.ffn}, {"mlp", s.mlp}};
}
}  // namespace

void ModelConfig::validate() const {
  auto check = [](const StackConfig& s, const char* name, bool optional) {
    if (s.layers == 0 && optional) return;
    if (s.layers < 1 || s.layers > 1000) fail("model config: {} layers {} outside [1, 1000]", name, s.layers);
    if (s.dim < 1 || s.dim > 65536) fail("model config: {} dim {} outside [1, 65536]", name, s.dim);
    if (s.heads < 1 || s.dim % s.heads != 0 || (s.dim / s.heads) % 2 != 0)
      fail("model config: {} dim {} must split into {} heads of even width", name, s.dim, s.heads);
    if (s.ffn < 1 || s.ffn > (1 << 20)) fail("model config: {} ffn {} outside [1, 1048576]", name, s.ffn);
    if (s.mlp != "swiglu" && s.mlp != "gelu") fail("model config: {} mlp '{}' is not swiglu or gelu", name, s.mlp);
  };
  if (architecture != "ilt" && architecture != "bytes-lm")
    fail("model config: architecture '{}' is not ilt or bytes-lm", architecture);
  check(image_encoder, "image_encoder", true);
  check(bytes_encoder, "bytes_encoder", true);
  check(latent, "latent", false);
  check(bytes_decoder, "bytes_decoder", bytes_lm());
  if (bytes_lm()) {
    if (has_image() || has_bytes() || bytes_decoder.layers > 0)
      fail("model config: a bytes-lm has no encoders and no bytes decoder (set them to \"none\"; "
           "\"latent\" is its transformer over bytes)");
  } else if (!has_image() && !has_bytes()) {
    fail("model config: at least one encoder must be on");
  }
  if (max_word_length < 3 || max_word_length > 4096)
    fail("model config: max_word_length {} outside [3, 4096]", max_word_length);
  if (!(modality_dropout >= 0 && modality_dropout < 1)) fail("model config: modality_dropout must be in [0, 1)");
  if (!(autoencode >= 0 && autoencode <= 1000)) fail("model config: autoencode must be in [0, 1000]");
  if (bytes_lm() && autoencode > 0) fail("model config: autoencode needs an ILT (a bytes-lm has no words to spell)");
  if (image_height < 1 || image_height > 4096) fail("model config: image_height {} outside [1, 4096]", image_height);
  if (patch_width < 1 || patch_width > 4096) fail("model config: patch_width {} outside [1, 4096]", patch_width);
  if (max_patches < 1 || max_patches > 65536) fail("model config: max_patches {} outside [1, 65536]", max_patches);
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) fail("model config: rope_theta must be a positive number");
  if (modality_dropout_mode != "word" && modality_dropout_mode != "call")
    fail("model config: modality_dropout_mode '{}' is not word or call", modality_dropout_mode);
  if (bytes_pooling != "mean" && bytes_pooling != "bos") fail("model config: bytes_pooling '{}' is not mean or bos", bytes_pooling);
  if (image_pooling != "mean" && image_pooling != "cls") fail("model config: image_pooling '{}' is not mean or cls", image_pooling);
  if (bit_bias_init != "random" && bit_bias_init != "zero")
    fail("model config: bit_bias_init '{}' is not random or zero", bit_bias_init);
}

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& source, int default_version) {
  try {
    if (!j.is_object()) fail("model config: expected a JSON object, got {}", j.type_name());
    ModelConfig c = preset(json_value<std::string>(j, "preset", "tiny"));
    version_defaults(json_value(j, "format_version", default_version), &c);
    c.architecture = one_of(json_value(j, "architecture", c.architecture), "architecture", {"ilt", "bytes-lm"});
    stack_from(j, "image_encoder", &c.image_encoder);
    stack_from(j, "bytes_encoder", &c.bytes_encoder);
    stack_from(j, "latent", &c.latent);
    stack_from(j, "bytes_decoder", &c.bytes_decoder);
    c.bit_bias = json_value(j, "bit_bias", c.bit_bias);
    c.modality_dropout = json_value(j, "modality_dropout", c.modality_dropout);
    c.autoencode = json_value(j, "autoencode", c.autoencode);
    c.max_word_length = json_value(j, "max_word_length", c.max_word_length);
    c.image_height = json_value(j, "image_height", c.image_height);
    c.patch_width = json_value(j, "patch_width", c.patch_width);
    c.max_patches = json_value(j, "max_patches", c.max_patches);
    c.rope_theta = json_value(j, "rope_theta", c.rope_theta);
    c.modality_dropout_mode =
        one_of(json_value(j, "modality_dropout_mode", c.modality_dropout_mode), "modality_dropout_mode", {"word", "call"});
    c.encoder_norm = json_value(j, "encoder_norm", c.encoder_norm);
    c.decoder_norm = json_value(j, "decoder_norm", c.decoder_norm);
    c.bytes_pooling = one_of(json_value(j, "bytes_pooling", c.bytes_pooling), "bytes_pooling", {"mean", "bos"});
    c.image_pooling = one_of(json_value(j, "image_pooling", c.image_pooling), "image_pooling", {"mean", "cls"});
    c.bit_bias_init = one_of(json_value(j, "bit_bias_init", c.bit_bias_init), "bit_bias_init", {"random", "zero"});
    c.tie_head = json_value(j, "tie_head", c.tie_head);
    c.validate();
    return c;
  } catch (const nlohmann::json::exception& e) {
    fail_json(source.empty() ? std::string("model config") : source, e);
  } catch (const Error& e) {
    if (source.empty()) throw;
    fail("{}: {}", source, e.what());
  }
}

ModelConfig model_config(const std::string& s) {
  if (s.find('/') == std::string::npos && s.find(".json") == std::string::npos) {
    ModelConfig c = preset(s);
    c.validate();
    return c;
  }
  return model_config_from_json(read_json_file(s), s);
}

nlohmann::json to_json(const ModelConfig& c) {
  return {{"architecture", c.architecture},
          {"image_encoder", stack_json(c.image_encoder)}, {"bytes_encoder", stack_json(c.bytes_encoder)},
          {"latent", stack_json(c.latent)},              {"bytes_decoder", stack_json(c.bytes_decoder)},
          {"bit_bias", c.bit_bias},                      {"modality_dropout", c.modality_dropout},
          {"max_word_length", c.max_word_length},        {"image_height", c.image_height},
          {"patch_width", c.patch_width},                {"max_patches", c.max_patches},
          {"rope_theta", c.rope_theta},                  {"format_version", c.format_version},
          {"modality_dropout_mode", c.modality_dropout_mode}, {"encoder_norm", c.encoder_norm},
          {"decoder_norm", c.decoder_norm},              {"bytes_pooling", c.bytes_pooling},
          {"image_pooling", c.image_pooling},            {"bit_bias_init", c.bit_bias_init},
          {"tie_head", c.tie_head},                      {"autoencode", c.autoencode}};
}

}  // namespace ilt
