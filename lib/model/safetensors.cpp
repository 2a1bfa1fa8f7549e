#include "model/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/error.h"
#include "common/io.h"
#include "common/json_error.h"

namespace ilt {

namespace {
const std::vector<std::pair<torch::ScalarType, const char*>>& dtypes() {
  static const std::vector<std::pair<torch::ScalarType, const char*>> d = {
      {torch::kFloat, "F32"}, {torch::kHalf, "F16"}, {torch::kBFloat16, "BF16"}, {torch::kDouble, "F64"},
      {torch::kLong, "I64"},  {torch::kInt, "I32"},  {torch::kUInt8, "U8"},       {torch::kBool, "BOOL"}};
  return d;
}
const char* dtype_name(torch::ScalarType t) {
  for (auto& [s, n] : dtypes())
    if (s == t) return n;
  fail("safetensors: unsupported dtype {}", c10::toString(t));
}
torch::ScalarType dtype_of(const std::string& n, const std::string& path) {
  for (auto& [s, name] : dtypes())
    if (n == name) return s;
  fail("{}: unsupported safetensors dtype '{}'", path, n);
}
}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    uint64_t n = uint64_t(c.numel()) * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string js = header.dump();
  js.append((8 - js.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string head;
  put_u64(head, js.size());
  OutputFile out(path);
  out.write(head);
  out.write(js);
  for (const auto& c : data) out.write(c.data_ptr(), size_t(c.numel()) * c.element_size());
  out.commit();
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::map<std::string, std::string>* metadata) {
  std::string bytes = read_all(path);
  if (bytes.size() < 8) fail("{}: not a safetensors file (too short)", path);
  uint64_t n = load_u64(bytes.data());
  if (n > bytes.size() - 8) fail("{}: corrupt safetensors header length {}", path, n);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const std::exception& e) {
    fail("{}: corrupt safetensors header: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: corrupt safetensors header: not a JSON object", path);
  const char* base = bytes.data() + 8 + n;
  uint64_t avail = bytes.size() - 8 - n;
  std::map<std::string, torch::Tensor> out;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (metadata) *metadata = it.value().get<std::map<std::string, std::string>>();
        continue;
      }
      if (!it.value().is_object()) fail("{}: tensor '{}': entry is not a JSON object", path, it.key());
      auto type = dtype_of(it.value().at("dtype").get<std::string>(), path);
      auto shape = it.value().at("shape").get<std::vector<int64_t>>();
      auto off = it.value().at("data_offsets").get<std::vector<uint64_t>>();
      // The size is checked against the data before anything is allocated: a header must
      // not be able to ask for more memory than the file holds.
      uint64_t elements = 1;
      for (int64_t d : shape) {
        if (d < 0) fail("{}: tensor '{}' has a negative dimension {}", path, it.key(), d);
        if (d != 0 && elements > avail / uint64_t(d)) fail("{}: tensor '{}' is larger than the file", path, it.key());
        elements *= uint64_t(d);
      }
      uint64_t size = elements * uint64_t(c10::elementSize(type));
      if (off.size() != 2 || off[1] < off[0] || off[1] > avail || off[1] - off[0] != size)
        fail("{}: tensor '{}' has bad data offsets", path, it.key());
      auto t = torch::empty(shape, torch::dtype(type));
      if (size) std::memcpy(t.data_ptr(), base + off[0], size);
      out[it.key()] = t;
    }
  } catch (const nlohmann::json::exception& e) {
    fail_json(path + " (safetensors header)", e);
  }
  return out;
}

}  // namespace ilt
