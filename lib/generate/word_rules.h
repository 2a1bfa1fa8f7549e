// What a generated word may be (no LibTorch here): the bytes decoder writes a word byte by
// byte, and these rules keep it a word that segmentation could have produced.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace ilt {

// True if `word` is finished: it ends in Unicode whitespace, or it is one control character
// (C0 or DEL, which segmentation always makes words of their own).
bool word_complete(std::string_view word);

// Bytes that may follow `word` (valid UTF-8, possibly ending inside a character) so that it
// stays valid UTF-8 of at most `limit` bytes: the continuation bytes the open character needs,
// or, at a character boundary, characters that fit whole. Control characters only as the
// whole word; NUL, BOS and EOS never as content. allowed[kEos] says whether the word may end
// here (at a character boundary; an empty word ends the text).
std::array<bool, 256> allowed_next_bytes(std::string_view word, size_t limit);

// Stop strings, shared by the ILT and byte-level loops. stop_cut: where the first stop string
// found in `text` begins (npos: none). held_back: the longest tail of `text` that begins some
// stop string (not streamed yet: a later byte may complete it).
size_t stop_cut(const std::string& text, const std::vector<std::string>& stop);
size_t held_back(const std::string& text, const std::vector<std::string>& stop);

}  // namespace ilt
