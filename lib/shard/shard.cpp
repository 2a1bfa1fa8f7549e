#include "shard/shard.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/io.h"

namespace ilt {
namespace {

constexpr char kMagic[8] = {'I', 'L', 'T', 'S', 'H', 'A', 'R', 'D'};
constexpr char kEnd[8] = {'I', 'L', 'T', 'E', 'N', 'D', '0', '1'};
constexpr char kBlockMagic[4] = {'B', 'L', 'K', '1'};
constexpr char kIndexMagic[4] = {'I', 'D', 'X', '1'};
constexpr size_t kTrailerSize = 24;
constexpr uint32_t kMaxHeaderJson = 64u << 20;
constexpr uint32_t kMaxBlock = 1u << 30;

std::string compress(std::string_view raw, int level, const std::string& path) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) fail("{}: zstd compression failed: {}", path, ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

// Most bytes a zstd frame of `z` bytes can decompress to: every block has a header of at least
// 3 bytes and gives at most ZSTD_BLOCKSIZE_MAX (128 KiB). Sizes claimed by headers are checked
// against it before anything is allocated, so a damaged length cannot ask for a gigabyte.
bool fits_frame(uint64_t raw, uint64_t z) { return raw <= z / 3 * uint64_t(ZSTD_BLOCKSIZE_MAX); }

struct BlockInfo {
  uint64_t offset;
  uint64_t first;
  uint32_t records;
};

}  // namespace

// ---------------------------------------------------------------------------- writer

// Blocks are compressed on a background thread while the caller fills the next one, so
// compression overlaps with the producing stage's own work. Output order is unchanged.
struct ShardWriter::Impl {
  OutputFile out;
  ShardWriterOptions opt;
  std::string block;
  uint32_t block_records = 0;
  uint64_t records = 0;
  std::vector<BlockInfo> blocks;
  bool finished = false;
  // The block being compressed in the background: its records, raw size and result.
  std::future<std::string> pending;
  uint32_t pending_records = 0, pending_raw = 0;

  Impl(const std::string& path, ShardWriterOptions o) : out(path), opt(o) {}
  ~Impl() {
    if (pending.valid()) pending.wait();
  }

  void write_pending() {
    if (!pending.valid()) return;
    std::string z = pending.get();
    if (z.size() >= kMaxBlock) fail("{}: block too large", out.path());
    uint64_t first = blocks.empty() ? 0 : blocks.back().first + blocks.back().records;
    blocks.push_back({out.offset(), first, pending_records});
    std::string head(kBlockMagic, 4);
    put_u32(head, pending_records);
    put_u32(head, pending_raw);
    put_u32(head, uint32_t(z.size()));
    out.write(head);
    out.write(z);
  }

  void flush() {
    if (block_records == 0) return;
    if (block.size() >= kMaxBlock) fail("{}: block too large", out.path());
    write_pending();
    pending_records = block_records;
    pending_raw = uint32_t(block.size());
    pending = std::async(std::launch::async, [raw = std::move(block), level = opt.zstd_level,
                                              path = out.path()] { return compress(raw, level, path); });
    block = std::string();
    block.reserve(opt.block_bytes + 1024);
    block_records = 0;
  }
};

ShardWriter::ShardWriter(const std::string& path, const std::string& kind,
                         const nlohmann::json& header, ShardWriterOptions options)
    : impl_(std::make_unique<Impl>(path, options)) {
  if (kind.empty() || kind.size() > 255) fail("{}: invalid shard kind '{}'", path, kind);
  if (!header.is_object()) fail("{}: shard header must be a JSON object", path);
  std::string js = header.dump();
  std::string h(kMagic, 8);
  put_u32(h, kShardVersion);
  put_u16(h, uint16_t(kind.size()));
  h += kind;
  put_u32(h, uint32_t(js.size()));
  h += js;
  put_u32(h, crc32(h.data(), h.size()));
  impl_->out.write(h);
}

ShardWriter::~ShardWriter() = default;

void ShardWriter::add(std::string_view record) {
  Impl& m = *impl_;
  if (m.finished) fail("{}: add after finish", m.out.path());
  put_varint(m.block, record.size());
  m.block.append(record);
  ++m.block_records;
  ++m.records;
  if (m.block.size() >= m.opt.block_bytes) m.flush();
}

uint64_t ShardWriter::records() const { return impl_->records; }

void ShardWriter::finish(const nlohmann::json& footer) {
  Impl& m = *impl_;
  if (m.finished) return;
  m.flush();
  m.write_pending();
  uint64_t index_offset = m.out.offset();
  std::string idx;
  put_u64(idx, m.blocks.size());
  for (const BlockInfo& b : m.blocks) {
    put_u64(idx, b.offset);
    put_u64(idx, b.first);
    put_u32(idx, b.records);
  }
  put_u64(idx, m.records);
  if (!footer.is_null() && !footer.is_object()) fail("{}: shard footer must be a JSON object", m.out.path());
  std::string js = footer.is_null() ? std::string("{}") : footer.dump();
  put_u32(idx, uint32_t(js.size()));
  idx += js;
  std::string z = compress(idx, m.opt.zstd_level, m.out.path());
  std::string sec(kIndexMagic, 4);
  put_u32(sec, uint32_t(z.size()));
  sec += z;
  put_u64(sec, index_offset);
  put_u64(sec, m.records);
  sec.append(kEnd, 8);
  m.out.write(sec);
  m.out.commit();
  m.finished = true;
}

// ---------------------------------------------------------------------------- reader

struct ShardReader::Impl {
  std::unique_ptr<InputFile> in;
  std::string kind;
  uint32_t version = 0;
  nlohmann::json header, footer = nlohmann::json::object();
  uint64_t data_start = 0;
  bool have_index = false;
  uint64_t total = 0;
  std::vector<BlockInfo> blocks;
  uint64_t index_offset = 0;
  // Pipes: where each block was and its record count, checked against the index at the end.
  std::vector<BlockInfo> streamed;

  // The decoded block in `raw` (shared by next() and get()) and its record views.
  std::string raw, zbuf;
  int64_t cur_block = -1;
  std::vector<std::string_view> recs;
  // Sequential cursor: the block it is in and its position there.
  bool ended = false;
  int64_t seq_block = -1;
  size_t seq_pos = 0;
  uint64_t seq_record = 0;
  ZSTD_DCtx* dctx = ZSTD_createDCtx();

  ~Impl() { ZSTD_freeDCtx(dctx); }

  const std::string& name() const { return in->name(); }

  void read_exact(void* p, size_t n, const char* what) {
    uint64_t at = in->offset();
    if (in->read(p, n) != n)
      fail("{}: truncated: file ends inside the {} at byte {} (incomplete or killed write?)",
           name(), what, at);
  }

  // Reads n bytes into *buf, growing it only as the bytes arrive, so that a damaged length
  // field costs no more memory than the input really holds.
  void read_exact(std::string* buf, size_t n, const char* what) {
    uint64_t at = in->offset();
    buf->clear();
    while (buf->size() < n) {
      size_t old = buf->size(), chunk = std::min(n - old, std::max<size_t>(old, 1 << 20));
      buf->resize(old + chunk);
      if (in->read(buf->data() + old, chunk) != chunk)
        fail("{}: truncated: file ends inside the {} at byte {} (incomplete or killed write?)", name(), what, at);
    }
  }

  void read_header(std::string_view expect) {
    char magic[8];
    std::string h;
    if (in->read(magic, 8) != 8 || std::memcmp(magic, kMagic, 8) != 0)
      fail("{}: not an ilt shard (bad magic at byte 0)", name());
    h.append(magic, 8);
    char b[4];
    read_exact(b, 4, "header");
    h.append(b, 4);
    version = load_u32(b);
    if (version > kShardVersion)
      fail("{}: shard format version {} is newer than this ilt reads ({}); upgrade ilt", name(),
           version, kShardVersion);
    if (version == 0) fail("{}: invalid shard format version 0", name());
    read_exact(b, 2, "header");
    h.append(b, 2);
    uint16_t klen = uint16_t(uint8_t(b[0]) | (uint8_t(b[1]) << 8));
    kind.resize(klen);
    read_exact(kind.data(), klen, "header");
    h += kind;
    read_exact(b, 4, "header");
    h.append(b, 4);
    uint32_t jlen = load_u32(b);
    if (jlen > kMaxHeaderJson) fail("{}: corrupt header (JSON length {})", name(), jlen);
    std::string js;
    read_exact(&js, jlen, "header");
    h += js;
    read_exact(b, 4, "header");
    if (load_u32(b) != crc32(h.data(), h.size()))
      fail("{}: corrupt header (checksum mismatch)", name());
    try {
      header = nlohmann::json::parse(js);
      if (!header.is_object()) fail("not a JSON object");
    } catch (const std::exception& e) {
      fail("{}: corrupt header JSON: {}", name(), e.what());
    }
    if (!expect.empty() && kind != expect)
      fail("{}: is a '{}' shard, expected '{}'", name(), kind, expect);
    data_start = in->offset();
  }

  // Parses the index section payload (after its magic) and the trailer.
  void parse_index(std::string_view z, uint64_t at, uint64_t trailer_offset, uint64_t trailer_records) {
    size_t rawsize = ZSTD_getFrameContentSize(z.data(), z.size());
    if (rawsize == ZSTD_CONTENTSIZE_ERROR || rawsize == ZSTD_CONTENTSIZE_UNKNOWN || rawsize > kMaxBlock ||
        !fits_frame(rawsize, z.size()))
      fail("{}: corrupt index at byte {}", name(), at);
    std::string idx(rawsize, '\0');
    size_t n = ZSTD_decompressDCtx(dctx, idx.data(), idx.size(), z.data(), z.size());
    if (ZSTD_isError(n) || n != rawsize)
      fail("{}: corrupt index at byte {}: {}", name(), at, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    try {
      ByteReader r(idx);
      uint64_t nb = load_u64(r.bytes(8).data());
      if (nb > idx.size() / 20) fail("bad block count {}", nb);
      blocks.resize(nb);
      for (auto& b : blocks) {
        b.offset = load_u64(r.bytes(8).data());
        b.first = load_u64(r.bytes(8).data());
        b.records = r.u32();
      }
      total = load_u64(r.bytes(8).data());
      uint32_t jl = r.u32();
      footer = nlohmann::json::parse(r.bytes(jl));
      if (!footer.is_object()) fail("footer is not a JSON object");
      if (!r.done()) fail("{} stray bytes after the footer", r.remaining());
    } catch (const std::exception& e) {
      fail("{}: corrupt index at byte {}: {}", name(), at, e.what());
    }
    if (trailer_offset != at || trailer_records != total)
      fail("{}: corrupt trailer (index at byte {} with {} records, trailer says byte {} and {} records)",
           name(), at, total, trailer_offset, trailer_records);
    uint64_t expect_first = 0;
    for (size_t i = 0; i < blocks.size(); ++i) {
      // Blocks in file order, each after the previous one's 16-byte header at least.
      if (blocks[i].first != expect_first || blocks[i].offset < data_start || blocks[i].offset >= at ||
          (i > 0 && blocks[i].offset < blocks[i - 1].offset + 16))
        fail("{}: corrupt index entry for block {}", name(), i);
      expect_first += blocks[i].records;
    }
    if (expect_first != total) fail("{}: corrupt index (record counts disagree)", name());
    index_offset = at;
    have_index = true;
  }

  void read_index_from_end() {
    uint64_t size = in->size();
    if (size < data_start + 8 + kTrailerSize)
      fail("{}: truncated: no index or trailer ({} bytes; incomplete or killed write?)", name(), size);
    char t[kTrailerSize];
    in->seek(size - kTrailerSize);
    read_exact(t, kTrailerSize, "trailer");
    if (std::memcmp(t + 16, kEnd, 8) != 0)
      fail("{}: truncated or corrupt: no end marker in the last {} bytes (incomplete or killed write?)",
           name(), kTrailerSize);
    uint64_t at = load_u64(t), recs = load_u64(t + 8);
    if (at < data_start || at > size - 8 - kTrailerSize)
      fail("{}: corrupt trailer (index offset {})", name(), at);
    in->seek(at);
    char h[8];
    read_exact(h, 8, "index");
    if (std::memcmp(h, kIndexMagic, 4) != 0) fail("{}: corrupt index magic at byte {}", name(), at);
    uint32_t zl = load_u32(h + 4);
    if (at + 8 + zl + kTrailerSize != size) fail("{}: corrupt index length at byte {}", name(), at);
    std::string z(zl, '\0');
    read_exact(z.data(), zl, "index");
    parse_index(z, at, at, recs);
    in->seek(data_start);
  }

  // Reads and decodes the block whose header starts at the current input position.
  // Returns false when the index section starts instead (pipes).
  bool read_block_here(uint64_t expect_number) {
    uint64_t at = in->offset();
    char h[16];
    size_t got = in->read(h, 4);
    if (got != 4) fail("{}: truncated: file ends at byte {} before the index (incomplete or killed write?)", name(), at + got);
    if (std::memcmp(h, kIndexMagic, 4) == 0) {
      read_exact(h + 4, 4, "index");
      uint32_t zl = load_u32(h + 4);
      if (zl > kMaxBlock) fail("{}: corrupt index length at byte {}", name(), at);
      std::string z;
      read_exact(&z, zl, "index");
      char t[kTrailerSize];
      read_exact(t, kTrailerSize, "trailer");
      if (std::memcmp(t + 16, kEnd, 8) != 0) fail("{}: corrupt trailer at byte {}", name(), at + 8 + zl);
      parse_index(z, at, load_u64(t), load_u64(t + 8));
      char extra;
      if (in->read(&extra, 1) != 0) fail("{}: unexpected data after the trailer at byte {}", name(), in->offset() - 1);
      return false;
    }
    if (std::memcmp(h, kBlockMagic, 4) != 0)
      fail("{}: block {} at byte {}: bad block magic (corrupt file)", name(), expect_number, at);
    read_exact(h + 4, 12, "block header");
    uint32_t nrec = load_u32(h + 4), rawlen = load_u32(h + 8), zlen = load_u32(h + 12);
    if (rawlen > kMaxBlock || zlen > kMaxBlock || nrec > rawlen || !fits_frame(rawlen, zlen))
      fail("{}: block {} at byte {}: corrupt block header", name(), expect_number, at);
    if (have_index) {
      if (expect_number >= blocks.size() || blocks[expect_number].offset != at || blocks[expect_number].records != nrec)
        fail("{}: block {} at byte {}: disagrees with the index", name(), expect_number, at);
    }
    read_exact(&zbuf, zlen, "block");
    raw.resize(rawlen);
    size_t n = ZSTD_decompressDCtx(dctx, raw.data(), raw.size(), zbuf.data(), zbuf.size());
    if (ZSTD_isError(n))
      fail("{}: block {} at byte {}: corrupt data ({})", name(), expect_number, at, ZSTD_getErrorName(n));
    if (n != rawlen) fail("{}: block {} at byte {}: size mismatch", name(), expect_number, at);
    recs.clear();
    try {
      ByteReader r(raw);
      for (uint32_t i = 0; i < nrec; ++i) recs.push_back(r.bytes(r.varint()));
      if (!r.done()) fail("{} stray bytes", r.remaining());
    } catch (const Error& e) {
      fail("{}: block {} at byte {}: corrupt records: {}", name(), expect_number, at, e.what());
    }
    if (!have_index) streamed.push_back({at, 0, nrec});
    cur_block = int64_t(expect_number);
    return true;
  }
};

ShardReader::ShardReader(const std::string& path, std::string_view expect_kind)
    : impl_(std::make_unique<Impl>()) {
  impl_->in = std::make_unique<InputFile>(path);
  impl_->read_header(expect_kind);
  if (impl_->in->seekable()) impl_->read_index_from_end();
}

ShardReader::~ShardReader() = default;
ShardReader::ShardReader(ShardReader&&) noexcept = default;
ShardReader& ShardReader::operator=(ShardReader&&) noexcept = default;

const std::string& ShardReader::path() const { return impl_->in->path(); }
const std::string& ShardReader::kind() const { return impl_->kind; }
uint32_t ShardReader::version() const { return impl_->version; }
const nlohmann::json& ShardReader::header() const { return impl_->header; }
const nlohmann::json& ShardReader::footer() const { return impl_->footer; }
nlohmann::json ShardReader::meta() const {
  nlohmann::json m = impl_->header;
  if (!m.is_object()) m = nlohmann::json::object();
  for (auto it = impl_->footer.begin(); it != impl_->footer.end(); ++it) m[it.key()] = it.value();
  return m;
}
bool ShardReader::random_access() const { return impl_->in->seekable(); }
uint64_t ShardReader::num_blocks() const { return impl_->blocks.size(); }
uint64_t ShardReader::block_first(uint64_t b) const { return impl_->blocks.at(b).first; }
uint64_t ShardReader::block_records(uint64_t b) const { return impl_->blocks.at(b).records; }
uint64_t ShardReader::next_index() const { return impl_->seq_record; }

uint64_t ShardReader::size() const {
  if (!impl_->have_index) fail("{}: record count of a pipe is known only after reading it", impl_->name());
  return impl_->total;
}

bool ShardReader::next(std::string_view* record) {
  Impl& m = *impl_;
  while (!m.ended) {
    if (m.seq_block >= 0 && m.cur_block == m.seq_block && m.seq_pos < m.recs.size()) {
      *record = m.recs[m.seq_pos++];
      ++m.seq_record;
      return true;
    }
    // Next block, or reload the cursor's block if get() replaced the buffer.
    int64_t want = (m.seq_block < 0 || m.cur_block == m.seq_block) ? m.seq_block + 1 : m.seq_block;
    if (m.in->seekable()) {
      if (uint64_t(want) >= m.blocks.size()) break;
      if (m.in->offset() != m.blocks[want].offset) m.in->seek(m.blocks[want].offset);
      m.read_block_here(uint64_t(want));
    } else if (!m.read_block_here(uint64_t(want))) {
      if (uint64_t(want) != m.blocks.size() || m.seq_record != m.total)
        fail("{}: the index lists {} blocks and {} records, the stream had {} and {}", m.name(),
             m.blocks.size(), m.total, want, m.seq_record);
      for (size_t i = 0; i < m.blocks.size(); ++i)
        if (m.streamed[i].offset != m.blocks[i].offset || m.streamed[i].records != m.blocks[i].records)
          fail("{}: block {} at byte {}: disagrees with the index", m.name(), i, m.streamed[i].offset);
      break;
    }
    if (want != m.seq_block) m.seq_pos = 0;
    m.seq_block = want;
  }
  m.ended = true;
  return false;
}

std::string_view ShardReader::get(uint64_t i) {
  Impl& m = *impl_;
  if (!m.in->seekable()) fail("{}: random access needs a file, not a pipe", m.name());
  if (i >= m.total) fail("{}: record {} out of range ({} records)", m.name(), i, m.total);
  auto it = std::upper_bound(m.blocks.begin(), m.blocks.end(), i,
                             [](uint64_t v, const BlockInfo& b) { return v < b.first; });
  uint64_t b = uint64_t(it - m.blocks.begin()) - 1;
  if (m.cur_block != int64_t(b)) {
    m.in->seek(m.blocks[b].offset);
    m.read_block_here(b);
  }
  return m.recs[i - m.blocks[b].first];
}

nlohmann::json shard_source(const std::string& path, uint64_t records) {
  nlohmann::json j = {{"name", path}, {"records", records}};
  if (path != "-") j["sha256"] = sha256_file(path);
  return j;
}

void ShardReader::verify() {
  std::string_view r;
  while (next(&r)) {
  }
}

}  // namespace ilt
