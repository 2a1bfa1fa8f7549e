// Little-endian integers and LEB128 varints for the binary record formats.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"

namespace ilt {

inline void put_u16(std::string& out, uint16_t v) {
  char b[2] = {char(v & 0xff), char(v >> 8)};
  out.append(b, 2);
}
inline void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = char((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}
inline void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = char((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

inline uint32_t load_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}
inline uint64_t load_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

// Bounds-checked reader over one record. Errors say what was being read and where.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      uint8_t b = uint8_t(data_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("malformed varint at byte {} of record", pos_);
  }
  uint16_t u16() {
    need(2);
    uint16_t v = uint16_t(uint8_t(data_[pos_]) | (uint8_t(data_[pos_ + 1]) << 8));
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    need(4);
    uint32_t v = load_u32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  std::string_view bytes(size_t n) {
    need(n);
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }

 private:
  void need(size_t n) const {
    if (data_.size() - pos_ < n)
      fail("record too short: need {} bytes at byte {} of {}", n, pos_, data_.size());
  }
  std::string_view data_;
  size_t pos_ = 0;
};

// CRC-32 (IEEE) for the small parts of a shard that zstd's own checksums do not cover.
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

}  // namespace ilt
