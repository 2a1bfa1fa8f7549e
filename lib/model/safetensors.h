// Reading and writing the safetensors format (a JSON header with names, dtypes, shapes
// and offsets, then raw little-endian data), so other tools can read ilt's weights.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ilt {

// Writes tensors (contiguous copies, moved to CPU) to PATH atomically.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor of a safetensors file (F32, F16, BF16, I64, I32, U8, BOOL).
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::map<std::string, std::string>* metadata = nullptr);

}  // namespace ilt
