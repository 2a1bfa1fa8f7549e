// What a generated word may be (no LibTorch here): the bytes decoder writes a word byte by
// byte, and these rules keep it a word that segmentation could have produced.
#pragma once
#include <array>
#include <string_view>

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

}  // namespace ilt
