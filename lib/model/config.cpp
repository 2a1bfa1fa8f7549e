#include "model/config.h"

#include <fstream>

#include "common/error.h"
#include "common/io.h"

namespace ilt {

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
  } else if (name == "ref-tiny") {  // the reference's measured tiny set-up, layer for layer
    c.image_encoder = {12, 192, 3, 768};
    c.bytes_encoder = {2, 128, 2, 512};
    c.latent = {4, 256, 4, 768};
    c.bytes_decoder = {4, 256, 4, 768};
  } else if (name == "ref-small") {  // the reference's small set-up: no image encoder
    c.image_encoder = {0, 0, 1, 0};
    c.bytes_encoder = {10, 256, 4, 1024};
    c.latent = {6, 512, 8, 2048};
    c.bytes_decoder = {4, 256, 4, 768};
  } else {
    fail("unknown model preset '{}' (tiny, base, ref-tiny, ref-small, or a JSON file)", name);
  }
  return c;
}

void stack_from(const nlohmann::json& j, const char* key, StackConfig* s) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_string() && v.get<std::string>() == "none") {
    *s = {0, 0, 1, 0};
    return;
  }
  s->layers = v.value("layers", s->layers);
  s->dim = v.value("dim", s->dim);
  s->heads = v.value("heads", s->heads);
  s->ffn = v.value("ffn", s->ffn);
}

nlohmann::json stack_json(const StackConfig& s) {
  if (s.layers == 0) return "none";
  return {{"layers", s.layers}, {"dim", s.dim}, {"heads", s.heads}, {"ffn", s.ffn}};
}
}  // namespace

void ModelConfig::validate() const {
  auto check = [](const StackConfig& s, const char* name, bool optional) {
    if (s.layers == 0 && optional) return;
    if (s.layers < 1) fail("model config: {} needs at least one layer", name);
    if (s.dim < 1 || s.heads < 1 || s.dim % s.heads != 0 || (s.dim / s.heads) % 2 != 0)
      fail("model config: {} dim {} must split into {} heads of even width", name, s.dim, s.heads);
    if (s.ffn < 1) fail("model config: {} ffn must be positive", name);
  };
  check(image_encoder, "image_encoder", true);
  check(bytes_encoder, "bytes_encoder", true);
  check(latent, "latent", false);
  check(bytes_decoder, "bytes_decoder", false);
  if (!has_image() && !has_bytes()) fail("model config: at least one encoder must be on");
  if (max_word_length < 3) fail("model config: max_word_length {} < 3", max_word_length);
  if (modality_dropout < 0 || modality_dropout >= 1) fail("model config: modality_dropout must be in [0, 1)");
}

ModelConfig model_config_from_json(const nlohmann::json& j) {
  ModelConfig c = preset(j.value("preset", std::string("tiny")));
  stack_from(j, "image_encoder", &c.image_encoder);
  stack_from(j, "bytes_encoder", &c.bytes_encoder);
  stack_from(j, "latent", &c.latent);
  stack_from(j, "bytes_decoder", &c.bytes_decoder);
  c.bit_bias = j.value("bit_bias", c.bit_bias);
  c.modality_dropout = j.value("modality_dropout", c.modality_dropout);
  c.max_word_length = j.value("max_word_length", c.max_word_length);
  c.image_height = j.value("image_height", c.image_height);
  c.patch_width = j.value("patch_width", c.patch_width);
  c.max_patches = j.value("max_patches", c.max_patches);
  c.rope_theta = j.value("rope_theta", c.rope_theta);
  c.validate();
  return c;
}

ModelConfig model_config(const std::string& s) {
  if (s.find('/') == std::string::npos && s.find(".json") == std::string::npos) {
    ModelConfig c = preset(s);
    c.validate();
    return c;
  }
  try {
    return model_config_from_json(nlohmann::json::parse(read_all(s)));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", s, e.what());
  }
}

nlohmann::json to_json(const ModelConfig& c) {
  return {{"image_encoder", stack_json(c.image_encoder)}, {"bytes_encoder", stack_json(c.bytes_encoder)},
          {"latent", stack_json(c.latent)},              {"bytes_decoder", stack_json(c.bytes_decoder)},
          {"bit_bias", c.bit_bias},                      {"modality_dropout", c.modality_dropout},
          {"max_word_length", c.max_word_length},        {"image_height", c.image_height},
          {"patch_width", c.patch_width},                {"max_patches", c.max_patches},
          {"rope_theta", c.rope_theta}};
}

}  // namespace ilt
