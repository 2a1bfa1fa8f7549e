// SHA-256 for input provenance (matches `sha256sum`), streaming.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ilt {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes; the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

// A fast 64-bit hash of bytes that is the same on every platform and in every release
// (FNV-1a with a final mix of the low bits): used where a split must be reproducible, e.g.
// documents into train/validation, distinct words into render parts.
uint64_t stable_hash(std::string_view data);
std::string sha256_file(const std::string& path);  // throws ilt::Error if unreadable

}  // namespace ilt
