// The byte-level baseline's view of a batch: each row's words as one stream of bytes.
#pragma once
#include <cstdint>
#include <vector>

#include "data/loader.h"

namespace ilt {

// Rows of bytes [rows, length] (row-major, PAD after a row's end). A document piece's bytes are
// its first word's, then each position's label (the next word, or the text after the piece);
// a position without a label (inside a prefix block) adds the next word as context. Each label
// byte is the target of the stream byte before it; an empty label (the document's end) makes
// the piece's last byte predict EOS.
struct ByteStreams {
  int64_t rows = 0, length = 0;
  std::vector<int64_t> bytes;       // input byte
  std::vector<int64_t> target_of;   // the byte this slot predicts, -1: none
  std::vector<int64_t> positions;   // position within its document piece
  std::vector<int64_t> word;        // flat word index (row * L + l) whose label the target belongs to, -1: none
  std::vector<int32_t> doc, prefix; // document piece (-1: padding) and prefix block (-1: none), as in Batch
  std::vector<int64_t> piece_lengths;  // bytes of each document piece, row after row
  int64_t targets = 0;              // slots with a target
};
// Reads the batch's tensors on the host (a copy from the device if they are elsewhere).
ByteStreams byte_streams(const Batch& b);

}  // namespace ilt
