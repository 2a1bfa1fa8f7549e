// Fuzz target: the checkpoint readers that need no model: load_safetensors
// (lib/model/safetensors.h) and the model configuration (lib/model/config.h).
//
// Input: a u16 (little-endian) length L, then L bytes of config.json text, then the bytes
// of a model.safetensors file (L is cut to what there is). The config text goes through
// model_config(FILE) and, parsed, through model_config_from_json() as a checkpoint's
// config.json does (its "model" object) and as a bare config file does (the whole object);
// a JSON syntax error is the caller's (load_checkpoint's) rejection. The safetensors bytes
// are loaded from a file (memfd). Invariants (a failure aborts): loaded tensors are defined,
// on the CPU, contiguous; configs that load validate.
#include <ATen/Parallel.h>

#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "model/config.h"
#include "model/safetensors.h"

using namespace ilt;
using ilt::fuzz::accepts;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t L = std::min<size_t>(size_t(data[0]) | size_t(data[1]) << 8, size - 2);
  std::string_view config = ilt::fuzz::as_view(data + 2, L);
  std::string_view tensors = ilt::fuzz::as_view(data + 2 + L, size - 2 - L);

  {
    ilt::fuzz::MemFile f(config);
    accepts([&] { model_config(f.path()).validate(); });
  }
  nlohmann::json j = nlohmann::json::parse(config.begin(), config.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    if (j.is_object() && j.contains("model")) accepts([&] { model_config_from_json(j["model"]).validate(); });
    accepts([&] { model_config_from_json(j).validate(); });
  }

  ilt::fuzz::MemFile f(tensors);
  std::map<std::string, std::string> meta;
  accepts([&] {
    auto loaded = load_safetensors(f.path(), &meta);
    for (const auto& [name, t] : loaded) {
      FUZZ_CHECK(t.defined() && t.device().is_cpu() && t.is_contiguous(), "tensor '%s' is not a defined CPU tensor",
                 name.c_str());
      (void)t.sum();  // every element is readable
    }
  });
  return 0;
}
