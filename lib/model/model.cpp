#include "model/model.h"

#include <optional>

#include <dlfcn.h>

#include <cmath>

#include "common/error.h"
#include "model/bytes_lm.h"
#include "model/torch_version.h"

#if ILT_TORCH_HAS_AUTOCAST
#include <ATen/autocast_mode.h>
#endif

namespace ilt {

namespace F = torch::nn::functional;
using torch::indexing::Slice;

// ------------------------------------------------------------------ building blocks

RMSNormImpl::RMSNormImpl(int64_t dim, double e) : eps(e) { weight = register_parameter("weight", torch::ones({dim})); }

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (y * weight).to(x.dtype());
}

torch::Tensor dense(const torch::nn::Linear& layer, const torch::Tensor& x) {
  // (Under autocast x may be bf16 while the weight is fp32: linear() casts, mv() would not.)
  if (x.numel() != x.size(-1) || !x.device().is_cpu() || x.scalar_type() != layer->weight.scalar_type())
    return F::linear(x, layer->weight, layer->bias);
  auto y = at::mv(layer->weight, x.reshape({-1}));
  if (layer->bias.defined()) y = y + layer->bias;
  auto shape = x.sizes().vec();
  shape.back() = y.size(0);
  return y.view(shape);
}

std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions, int64_t head_dim, double theta) {
  int64_t half = head_dim / 2;
  auto inv = torch::pow(theta, -torch::arange(half, torch::dtype(torch::kFloat).device(positions.device())) / half);
  auto ang = positions.to(torch::kFloat).unsqueeze(-1) * inv;  // [N, S, half]
  return {ang.cos().unsqueeze(1), ang.sin().unsqueeze(1)};       // [N, 1, S, half]
}

namespace {
torch::Tensor apply_rotary(const torch::Tensor& x, const std::pair<torch::Tensor, torch::Tensor>& rope) {
  int64_t half = x.size(-1) / 2;
  auto x1 = x.index({"...", Slice(0, half)}), x2 = x.index({"...", Slice(half)});
  const auto& [c, s] = rope;
  return torch::cat({x1 * c - x2 * s, x1 * s + x2 * c}, -1);
}

// Attention with a boolean mask (true = may attend). Uses the fused kernel where LibTorch has it.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, bool causal) {
#if ILT_TORCH_HAS_SDPA
  std::optional<at::Tensor> m;
  if (mask.defined()) m = mask;
  return at::scaled_dot_product_attention(q, k, v, m, 0.0, causal && !mask.defined());
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(q.size(-1)));
  if (mask.defined()) {
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  } else if (causal) {
    int64_t S = q.size(-2);
    auto tri = torch::ones({S, S}, torch::dtype(torch::kBool).device(q.device())).tril();
    scores = scores.masked_fill(tri.logical_not(), -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

// Attention within each packed sequence: q, k, v [N, heads, Dh] -> [N, heads, Dh].
torch::Tensor varlen_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const Varlen& vl) {
  const int64_t H = q.size(1), Dh = q.size(2);
#if ILT_TORCH_AT_LEAST(2, 4) && defined(ILT_TORCH_CUDA_VERSION)
  // The flash kernel takes packed sequences as they are (half precision, head width <= 256).
  // Under autocast v comes from a bf16 matmul while the rotary tables made q and k fp32: they
  // go to v's dtype, as autocast does for scaled_dot_product_attention.
  const auto dt = v.scalar_type();
  if (q.is_cuda() && (dt == torch::kBFloat16 || dt == torch::kHalf) && Dh % 8 == 0 && Dh <= 256)
    return std::get<0>(at::_flash_attention_forward(q.to(dt).contiguous(), k.to(dt).contiguous(), v.contiguous(),
                                                    vl.cu_seqlens, vl.cu_seqlens, vl.max_len, vl.max_len, 0.0,
                                                    vl.causal, false));
#endif
  // Generic: each sequence in a row of its own, padded to the longest; padded keys are masked
  // (or lie after every real query, when causal), padded queries are dropped.
  const int64_t S = vl.sequences, Lm = vl.max_len;
  auto pad = [&](const torch::Tensor& t) {
    return torch::zeros({S * Lm, H, Dh}, t.options()).index_copy(0, vl.slot, t).view({S, Lm, H, Dh}).transpose(1, 2);
  };
  auto o = attention(pad(q), pad(k), pad(v), vl.causal ? torch::Tensor() : vl.key_valid, vl.causal);  // [S, H, Lm, Dh]
  return o.transpose(1, 2).reshape({S * Lm, H, Dh}).index_select(0, vl.slot);
}
}  // namespace

torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda()) return t.to(device);
  // Page-locked staging: the copy is queued behind the running kernels and the host goes on
  // (LibTorch's host allocator keeps the buffer until the copy is done).
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

torch::Tensor host_to_device(const std::vector<int64_t>& values, const torch::Device& device) {
  auto t = torch::from_blob(const_cast<int64_t*>(values.data()), {int64_t(values.size())}, torch::kLong);
  return device.is_cuda() ? to_device_async(t, device) : t.clone();
}

Varlen make_varlen(const std::vector<int64_t>& lengths, bool causal, const torch::Device& device) {
  Varlen v;
  v.causal = causal;
  v.sequences = int64_t(lengths.size());
  for (int64_t l : lengths) {
    v.tokens += l;
    v.max_len = std::max(v.max_len, l);
  }
  // One host buffer, one transfer: [cu_seqlens S + 1 | positions N | sequence N | slot N | lengths S].
  const int64_t S = v.sequences, N = v.tokens;
  std::vector<int64_t> host(size_t(2 * S + 1 + 3 * N));
  int64_t *cu = host.data(), *pos = cu + S + 1, *seq = pos + N, *slot = seq + N, *len = slot + N;
  v.starts.reserve(lengths.size());
  int64_t t = 0;
  cu[0] = 0;
  for (int64_t s = 0; s < S; ++s) {
    v.starts.push_back(t);
    len[s] = lengths[size_t(s)];
    for (int64_t p = 0; p < len[s]; ++p, ++t) {
      pos[t] = p;
      seq[t] = s;
      slot[t] = s * v.max_len + p;
    }
    cu[s + 1] = t;
  }
  auto all = host_to_device(host, device);
  v.cu_seqlens = all.narrow(0, 0, S + 1).to(torch::kInt);
  v.positions = all.narrow(0, S + 1, N);
  v.sequence = all.narrow(0, S + 1 + N, N);
  v.slot = all.narrow(0, S + 1 + 2 * N, N);
  if (!causal) {
    auto l = all.narrow(0, S + 1 + 3 * N, S);
    v.key_valid = (torch::arange(v.max_len, l.options()).unsqueeze(0) < l.unsqueeze(1)).view({v.sequences, 1, 1, v.max_len});
  }
  return v;
}

BlockImpl::BlockImpl(const StackConfig& c) : heads(c.heads), ffn(c.ffn) {
  norm1 = register_module("norm1", RMSNorm(c.dim));
  norm2 = register_module("norm2", RMSNorm(c.dim));
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(c.dim, 3 * c.dim).bias(false)));
  proj = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.dim).bias(false)));
  if (c.mlp == "gelu")
    up = register_module("up", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.ffn).bias(false)));
  else
    gate_up = register_module("gate_up", torch::nn::Linear(torch::nn::LinearOptions(c.dim, 2 * c.ffn).bias(false)));
  down = register_module("down", torch::nn::Linear(torch::nn::LinearOptions(c.ffn, c.dim).bias(false)));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, bool causal,
                                 const std::pair<torch::Tensor, torch::Tensor>& rope, CacheSlot* cache) {
  const int64_t N = x.size(0), S = x.size(1), D = x.size(2), Dh = D / heads;
  auto h = dense(qkv, norm1(x)).view({N, S, 3, heads, Dh}).permute({2, 0, 3, 1, 4});  // [3, N, heads, S, Dh]
  auto q = apply_rotary(h[0], rope), k = apply_rotary(h[1], rope), v = h[2];
  if (cache) {  // store the new keys and values, attend over everything cached so far
    cache->k->scatter_(2, cache->write, k);
    cache->v->scatter_(2, cache->write, v);
    k = cache->k->narrow(2, 0, cache->used);
    v = cache->v->narrow(2, 0, cache->used);
  }
  auto a = attention(q, k, v, mask, causal).transpose(1, 2).reshape({N, S, D});
  return mlp(x + dense(proj, a));
}

torch::Tensor BlockImpl::forward_varlen(const torch::Tensor& x, const Varlen& vl,
                                        const std::pair<torch::Tensor, torch::Tensor>& rope) {
  const int64_t N = x.size(0), D = x.size(1), Dh = D / heads;
  auto h = dense(qkv, norm1(x)).view({N, 3, heads, Dh});  // [N, 3, heads, Dh]
  auto q = apply_rotary(h.select(1, 0), rope), k = apply_rotary(h.select(1, 1), rope), v = h.select(1, 2);
  auto a = varlen_attention(q, k, v, vl).reshape({N, D});
  return mlp(x + dense(proj, a));
}

torch::Tensor BlockImpl::mlp(const torch::Tensor& y) {
  if (up) return y + dense(down, F::gelu(dense(up, norm2(y))));
  auto gu = dense(gate_up, norm2(y)).chunk(2, -1);
  return y + dense(down, F::silu(gu[0]) * gu[1]);
}

StackImpl::StackImpl(const StackConfig& c) : head_dim(c.dim / c.heads) {
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.layers; ++i) blocks->push_back(Block(c));
  norm = register_module("norm", RMSNorm(c.dim));
}

torch::Tensor StackImpl::forward(torch::Tensor x, const torch::Tensor& mask, bool causal, const torch::Tensor& positions) {
  auto rope = rotary(positions, head_dim, theta);
  for (const auto& b : *blocks) x = b->as<Block>()->forward(x, mask, causal, rope);
  return norm(x);
}

torch::Tensor StackImpl::forward_varlen(torch::Tensor x, const Varlen& v) {
  auto rope = rotary(v.positions, head_dim, theta);  // [N, 1, Dh / 2]
  for (const auto& b : *blocks) x = b->as<Block>()->forward_varlen(x, v, rope);
  return norm(x);
}

torch::Tensor StackImpl::forward_cached(torch::Tensor x, const torch::Tensor& positions, KVCache* cache,
                                        const torch::Tensor& valid, const torch::Tensor& prefix_ids) {
  const int64_t R = x.size(0), S = x.size(1), D = x.size(2), heads = D / head_dim;
  if (cache->length.empty() && cache->k.empty()) cache->length.assign(size_t(R), 0);
  if (cache->rows() != R) fail("KV cache has {} rows, the input {}", cache->rows(), R);
  std::vector<int64_t> real(size_t(R), S);
  if (valid.defined()) {
    auto n = valid.sum(1).to(torch::kCPU, torch::kLong).contiguous();
    std::copy(n.data_ptr<int64_t>(), n.data_ptr<int64_t>() + R, real.begin());
  }
  int64_t need = 0;  // every new position (padding too) is written, below the capacity
  for (int64_t r = 0; r < R; ++r) need = std::max(need, cache->length[size_t(r)] + S);
  int64_t capacity = cache->k.empty() ? 0 : cache->k[0].size(2);
  if (need > capacity) {  // grow geometrically: a cached step should not copy the cache
    int64_t grown = std::max<int64_t>({need, 2 * capacity, 64});
    auto opts = x.options();
    for (size_t l = 0; l < blocks->size(); ++l) {
      auto k = torch::zeros({R, heads, grown, head_dim}, opts), v = torch::zeros_like(k);
      if (capacity > 0) {
        k.narrow(2, 0, capacity).copy_(cache->k[l]);
        v.narrow(2, 0, capacity).copy_(cache->v[l]);
      }
      if (cache->k.size() <= l) cache->k.push_back(k), cache->v.push_back(v);
      else cache->k[l] = k, cache->v[l] = v;
    }
  }
  auto dev = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  auto start = torch::tensor(cache->length, torch::kLong).to(x.device());           // [R]
  auto write = start.unsqueeze(1) + torch::arange(S, dev).unsqueeze(0);            // [R, S]
  CacheSlot slot{nullptr, nullptr, write.view({R, 1, S, 1}).expand({R, heads, S, head_dim}), need};
  // Query s of row r sees cache positions up to length[r] + s: its past and itself.
  auto mask = torch::arange(need, dev).view({1, 1, need}) <= write.unsqueeze(2);  // [R, S, need]
  if (prefix_ids.defined()) {  // and new positions of one block see each other, later ones too
    auto q = prefix_ids.unsqueeze(2), k = prefix_ids.unsqueeze(1);                 // [R, S, 1], [R, 1, S]
    auto same = q.eq(k) & q.ge(0);                                                 // [R, S, S]
    auto block = torch::zeros({R, S, need}, mask.options());
    block.scatter_(2, write.unsqueeze(1).expand({R, S, S}), same);
    mask = mask | block;
  }
  mask = mask.unsqueeze(1);  // [R, 1, S, need]
  auto rope = rotary(positions, head_dim, theta);
  for (size_t l = 0; l < blocks->size(); ++l) {
    slot.k = &cache->k[l];
    slot.v = &cache->v[l];
    x = blocks[l]->as<Block>()->forward(x, mask, false, rope, &slot);
  }
  for (int64_t r = 0; r < R; ++r) cache->length[size_t(r)] += real[size_t(r)];
  return norm(x);
}

void KVCache::keep(const std::vector<int64_t>& rows) {
  bool same = rows.size() == length.size();
  for (size_t i = 0; same && i < rows.size(); ++i) same = rows[i] == int64_t(i);
  if (same) return;  // the common case (no row ended, no beam moved): nothing to copy
  std::vector<int64_t> len;
  for (int64_t r : rows) len.push_back(length.at(size_t(r)));
  length = len;
  if (k.empty()) return;
  auto idx = torch::tensor(rows, torch::kLong).to(k[0].device());
  for (size_t l = 0; l < k.size(); ++l) {
    k[l] = k[l].index_select(0, idx);
    v[l] = v[l].index_select(0, idx);
  }
}

ByteEmbeddingImpl::ByteEmbeddingImpl(int64_t dim, bool bb, const std::string& bit_init) : bit_bias(bb) {
  byte_table = register_parameter("byte_table", torch::randn({256, dim}) * 0.02);
  if (bit_bias) {
    bit_table = register_parameter("bit_table", bit_init == "zero" ? torch::zeros({8, dim}) : torch::randn({8, dim}) * 0.02);
    auto v = torch::arange(256, torch::kLong).unsqueeze(1);
    bits = register_buffer("bits", v.bitwise_right_shift(torch::arange(8, torch::kLong)).bitwise_and(1).to(torch::kFloat));
  }
}

torch::Tensor ByteEmbeddingImpl::table() { return bit_bias ? byte_table + torch::matmul(bits, bit_table) : byte_table; }

torch::Tensor ByteEmbeddingImpl::forward(const torch::Tensor& bytes) { return F::embedding(bytes.to(torch::kLong), table()); }

// ------------------------------------------------------------------ the four parts

ImageEncoderImpl::ImageEncoderImpl(const ModelConfig& c) {
  patch_embed = register_module("patch_embed", torch::nn::Linear(c.image_height * c.patch_width, c.image_encoder.dim));
  stack = register_module("stack", Stack(c.image_encoder));
  stack->theta = c.rope_theta;
  if (c.image_pooling == "cls") {
    cls = register_parameter("cls", torch::randn({c.image_encoder.dim}) * 0.02);
    pool = register_module("pool", torch::nn::Linear(c.image_encoder.dim, c.image_encoder.dim));
  }
}

torch::Tensor ImageEncoderImpl::forward(const torch::Tensor& patches, const torch::Tensor& counts, bool packed,
                                        const std::vector<int64_t>* host_counts) {
  const int64_t N = counts.size(0), D = patch_embed->weight.size(0);
  auto out = torch::zeros({N, D}, patch_embed->weight.options());
  // Ink = 1, paper = 0, so blank space contributes nothing to the patch projection.
  auto x = patch_embed(1.0 - patches.to(out.dtype()).flatten(1) / 255.0);  // [P, D]
  if (packed) {
    // Every image one sequence of the packed batch: [CLS,] its patches, positions from 0.
    std::vector<int64_t> lengths, order;
    if (host_counts) {
      lengths = *host_counts;
    } else {  // reads the device (a sync on CUDA): batches from make_batch carry the counts
      auto cnt = counts.to(torch::kCPU, torch::kLong).contiguous();
      lengths.assign(cnt.data_ptr<int64_t>(), cnt.data_ptr<int64_t>() + N);
    }
    const std::vector<int64_t> c = lengths;
    const bool with_cls = cls.defined();
    if (with_cls) {  // token order: image i's CLS (row i of the CLS block), then its patches (rows N + ...)
      int64_t patch = 0;
      for (int64_t i = 0; i < N; ++i) {
        ++lengths[size_t(i)];
        order.push_back(i);
        for (int64_t k = 0; k < c[i]; ++k) order.push_back(N + patch++);
      }
    }
    Varlen v = make_varlen(lengths, false, x.device());
    auto tokens = x;  // [P, D]: patches are already image after image
    if (with_cls) {
      auto idx = host_to_device(order, x.device());
      tokens = torch::cat({cls.view({1, D}).expand({N, D}).to(x.dtype()), x}).index_select(0, idx);
    }
    auto h = stack->forward_varlen(tokens, v);  // [tokens, D]
    if (with_cls) return torch::tanh(pool(h.index_select(0, host_to_device(v.starts, x.device())))).to(out.dtype());
    auto sum = out.index_add(0, v.sequence, h.to(out.dtype()));
    return sum / counts.clamp_min(1).to(out.scalar_type()).unsqueeze(1);
  }
  auto cnt = counts.to(torch::kCPU).contiguous();
  auto starts = torch::cumsum(cnt, 0) - cnt;
  auto [widths, inverse] = at::_unique(cnt, true, true);
  for (int64_t w : std::vector<int64_t>(widths.data_ptr<int64_t>(), widths.data_ptr<int64_t>() + widths.numel())) {
    auto members = (cnt == w).nonzero().squeeze(1);                       // images of this width
    auto idx = (starts.index({members}).unsqueeze(1) + torch::arange(w)).flatten();  // their patches
    auto group = x.index({idx.to(x.device())}).view({members.size(0), w, D});  // [G, w, D]
    const int64_t G = members.size(0), S = w + (cls.defined() ? 1 : 0);
    if (cls.defined()) group = torch::cat({cls.view({1, 1, D}).expand({G, 1, D}).to(group.dtype()), group}, 1);
    auto pos = torch::arange(S, torch::dtype(torch::kLong).device(x.device())).unsqueeze(0).expand({G, S});
    auto y = stack(group, torch::Tensor(), false, pos);                          // [G, S, D]
    auto h = cls.defined() ? torch::tanh(pool(y.select(1, 0))) : y.mean(1);     // [G, D]
    out.index_put_({members.to(x.device())}, h.to(out.dtype()));  // autocast may compute in bf16
  }
  return out;
}

BytesEncoderImpl::BytesEncoderImpl(const ModelConfig& c) {
  embed = register_module("embed", ByteEmbedding(c.bytes_encoder.dim, c.bit_bias, c.bit_bias_init));
  stack = register_module("stack", Stack(c.bytes_encoder));
  stack->theta = c.rope_theta;
  bos_pooling = c.bytes_pooling == "bos";
}

namespace {
// Real length of each row of bytes-encoder input: last non-PAD byte + 1 (a NUL word,
// [BOS 0 EOS], keeps its 0).
torch::Tensor byte_lengths(const torch::Tensor& bytes) {
  auto idx = torch::arange(bytes.size(1), torch::dtype(torch::kLong).device(bytes.device()));
  return (bytes.ne(0).to(torch::kLong) * (idx + 1)).amax(1);
}
// Length buckets: words are encoded in groups trimmed to the group's longest word.
constexpr int64_t kBuckets[] = {8, 16, 32, 64, 128, 256};
}  // namespace

torch::Tensor BytesEncoderImpl::forward(const torch::Tensor& bytes, bool packed, const std::vector<int64_t>* host_lengths) {
  const int64_t N = bytes.size(0), D = embed->byte_table.size(1);
  auto len = byte_lengths(bytes);
  auto out = torch::zeros({N, D}, embed->byte_table.options());
  if (packed) {
    // Every word's real bytes one sequence of the packed batch (no PAD computed).
    std::vector<int64_t> lengths;
    if (host_lengths) {
      lengths = *host_lengths;
    } else {  // reads the device (a sync on CUDA): batches from make_batch carry the lengths
      auto l = len.to(torch::kCPU).contiguous();
      lengths.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + N);
    }
    Varlen v = make_varlen(lengths, false, bytes.device());
    auto src = v.sequence * bytes.size(1) + v.positions;                  // [tokens] into bytes [N * T]
    auto h = stack->forward_varlen(embed(bytes.flatten().index_select(0, src)), v);  // [tokens, D]
    if (bos_pooling) {
      std::vector<int64_t> rows, first;
      for (int64_t i = 0; i < N; ++i)
        if (lengths[size_t(i)] > 0) rows.push_back(i), first.push_back(v.starts[size_t(i)]);
      auto r = host_to_device(rows, bytes.device()), f = host_to_device(first, bytes.device());
      return out.index_copy(0, r, h.index_select(0, f).to(out.dtype()));
    }
    auto sum = out.index_add(0, v.sequence, h.to(out.dtype()));
    return sum / len.clamp_min(1).to(out.scalar_type()).unsqueeze(1);
  }
  auto len_cpu = len.to(torch::kCPU).contiguous();
  int64_t lo = 0;
  for (int64_t hi : kBuckets) {
    auto members = ((len_cpu > lo) & (len_cpu <= hi)).nonzero().squeeze(1);
    if (hi >= bytes.size(1)) members = (len_cpu > lo).nonzero().squeeze(1);
    lo = hi;
    if (members.numel() > 0) {
      auto m = members.to(bytes.device());
      auto l = len.index({m});
      int64_t S = std::max<int64_t>(1, len_cpu.index({members}).max().item<int64_t>());
      auto b = bytes.index({m}).index({Slice(), Slice(0, S)});
      auto idx = torch::arange(S, torch::dtype(torch::kLong).device(bytes.device()));
      auto valid = idx.unsqueeze(0) < l.unsqueeze(1);  // [G, S]
      auto mask = valid.unsqueeze(1).unsqueeze(2) | torch::eye(S, valid.options()).unsqueeze(0).unsqueeze(0);
      auto h = stack(embed(b), mask, false, idx.unsqueeze(0).expand({b.size(0), S}));  // [G, S, D]
      if (bos_pooling) {
        out.index_put_({m}, h.select(1, 0).to(out.dtype()));  // autocast may compute in bf16
      } else {
        auto w = valid.unsqueeze(-1).to(h.dtype());
        out.index_put_({m}, ((h * w).sum(1) / w.sum(1).clamp_min(1)).to(out.dtype()));
      }
    }
    if (hi >= bytes.size(1)) break;
  }
  return out;
}

// ------------------------------------------------------------------ the model

ImageLatentTransformerImpl::ImageLatentTransformerImpl(const ModelConfig& c) : config(c) {
  c.validate();
  if (c.bytes_lm()) {  // the byte-level baseline: byte embedding, causal stack, head
    latent = register_module("latent", Stack(c.latent));
    latent->theta = c.rope_theta;
    decoder_embed = register_module("decoder_embed", ByteEmbedding(c.latent.dim, c.bit_bias, c.bit_bias_init));
    if (!c.tie_head) head = register_module("head", torch::nn::Linear(c.latent.dim, 256));
    return;
  }
  int64_t fused = 0;
  if (c.has_image()) {
    image_encoder = register_module("image_encoder", ImageEncoder(c));
    fused += c.image_encoder.dim;
  }
  if (c.has_bytes()) {
    bytes_encoder = register_module("bytes_encoder", BytesEncoder(c));
    fused += c.bytes_encoder.dim;
  }
  fuse = register_module("fuse", torch::nn::Linear(fused, c.latent.dim));
  if (c.encoder_norm) encoder_norm = register_module("encoder_norm", RMSNorm(c.latent.dim));
  latent = register_module("latent", Stack(c.latent));
  latent->theta = c.rope_theta;
  latent_to_decoder = register_module("latent_to_decoder", torch::nn::Linear(c.latent.dim, c.bytes_decoder.dim));
  if (c.decoder_norm) decoder_norm = register_module("decoder_norm", RMSNorm(c.bytes_decoder.dim));
  decoder_embed = register_module("decoder_embed", ByteEmbedding(c.bytes_decoder.dim, c.bit_bias, c.bit_bias_init));
  decoder = register_module("decoder", Stack(c.bytes_decoder));
  decoder->theta = c.rope_theta;
  if (!c.tie_head) head = register_module("head", torch::nn::Linear(c.bytes_decoder.dim, 256));
}

torch::Tensor ImageLatentTransformerImpl::to_decoder(const torch::Tensor& latent_states) {
  auto h = dense(latent_to_decoder, latent_states);
  return decoder_norm ? decoder_norm(h) : h;
}

torch::Tensor ImageLatentTransformerImpl::byte_logits(const torch::Tensor& y) {
  if (head) return dense(head, y);
  return F::linear(y, decoder_embed->table().to(y.dtype()));  // tied: scores against every byte's embedding
}

namespace {
double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
// Adds the time since t0 to `acc` (after draining the device where the timing asks).
void lap(Timing* t, double Timing::*acc, std::chrono::steady_clock::time_point t0, const torch::Device& d) {
  if (!t) return;
  if (t->sync && d.is_cuda()) torch::cuda::synchronize(d.index());
  t->*acc += seconds(t0);
}
}  // namespace

torch::Tensor ImageLatentTransformerImpl::embed_words(const Batch& b, const ForwardOptions& o, Timing* t,
                                                      torch::Tensor* distinct) {
  const int64_t B = b.image_index.size(0), L = b.image_index.size(1);
  auto index = b.image_index.clamp_min(0).flatten();  // [B*L] -> distinct word
  std::vector<torch::Tensor> parts;
  const bool both = config.has_image() && config.has_bytes();
  const bool dropout = is_training() && both && config.modality_dropout > 0;
  const bool per_call = config.modality_dropout_mode == "call";
  // Modality dropout, "word": each word drops one part with probability p.
  torch::Tensor drop_image, drop_bytes;
  if (dropout && !per_call) {
    auto drop = torch::rand({B * L}) < config.modality_dropout;
    auto which = torch::rand({B * L}) < 0.5;
    drop_image = to_device_async(drop & which, fuse->weight.device());  // drawn on the CPU (its RNG is checkpointed)
    drop_bytes = to_device_async(drop & which.logical_not(), fuse->weight.device());
  }
  // "call": each part is dropped for the whole batch with probability p (both may go); a part
  // switched off for evaluation counts as dropped; survivors are scaled by parts / survivors.
  bool use_image = o.use_image, use_bytes = o.use_bytes;
  if (dropout && per_call) {
    use_image &= torch::rand({1}).item<double>() >= config.modality_dropout;
    use_bytes &= torch::rand({1}).item<double>() >= config.modality_dropout;
  }
  double scale = 1.0;
  if (per_call && both) {
    int active = int(use_image) + int(use_bytes);
    if (active > 0) scale = 2.0 / active;
  }
  std::vector<torch::Tensor> distinct_parts;
  auto add = [&](torch::Tensor v, bool use, const torch::Tensor& drop) {
    if (distinct) distinct_parts.push_back(v);
    v = v.index({index});  // [B*L, D]
    if (!use) v = torch::zeros_like(v);
    if (drop.defined()) v = v * drop.logical_not().unsqueeze(1).to(v.dtype());
    if (scale != 1.0) v = v * scale;
    parts.push_back(v);
  };
  if (config.has_image()) {
    auto t0 = std::chrono::steady_clock::now();
    add(image_encoder(b.image_patches, b.image_patch_counts, o.packed, b.layout.filled ? &b.layout.patch_counts : nullptr),
        use_image, drop_image);
    lap(t, &Timing::image, t0, fuse->weight.device());
  }
  if (config.has_bytes()) {
    auto t0 = std::chrono::steady_clock::now();
    add(bytes_encoder(b.unique_word_bytes, o.packed, b.layout.filled ? &b.layout.word_lengths : nullptr), use_bytes,
        drop_bytes);
    lap(t, &Timing::bytes, t0, fuse->weight.device());
  }
  auto x = dense(fuse, torch::cat(parts, 1)).view({B, L, -1});  // [B, L, Dl]
  if (distinct) {
    *distinct = dense(fuse, torch::cat(distinct_parts, 1));  // [N, Dl]
    if (encoder_norm) *distinct = encoder_norm(*distinct);
  }
  return encoder_norm ? encoder_norm(x) : x;
}

torch::Tensor latent_mask(const torch::Tensor& doc_ids, const torch::Tensor& prefix_ids) {
  const int64_t L = doc_ids.size(1);
  auto q_doc = doc_ids.unsqueeze(2), k_doc = doc_ids.unsqueeze(1);  // [B, L, 1], [B, 1, L]
  auto causal = torch::ones({L, L}, torch::dtype(torch::kBool).device(doc_ids.device())).tril().unsqueeze(0);
  auto same_prefix = prefix_ids.unsqueeze(2).eq(prefix_ids.unsqueeze(1)) & prefix_ids.unsqueeze(2).ge(0);
  auto m = q_doc.eq(k_doc) & k_doc.ge(0) & (causal | same_prefix);
  auto eye = torch::eye(L, m.options()).unsqueeze(0);
  return (m | eye).unsqueeze(1);  // [B, 1, L, L]; padding attends to itself only
}

torch::Tensor ImageLatentTransformerImpl::latent_forward(const torch::Tensor& words, const Batch& b) {
  return latent(words, latent_mask(b.doc_ids, b.prefix_ids), false, b.positions);
}

ForwardOutput ImageLatentTransformerImpl::forward(const Batch& b, const ForwardOptions& o, Timing* t) {
  if (config.bytes_lm()) return forward_bytes_lm(b, o);
  ForwardOutput out;
  torch::Tensor distinct;  // [N, Dl] each distinct word's vector, for the autoencoding loss
  const bool autoencode = is_training() && config.autoencode > 0;
  auto words = embed_words(b, o, t, autoencode ? &distinct : nullptr);
  if (autoencode) autoencode_loss(distinct, b, &out);
  auto t0 = std::chrono::steady_clock::now();
  out.latent = latent_forward(words, b);
  lap(t, &Timing::latent, t0, fuse->weight.device());
  t0 = std::chrono::steady_clock::now();

  // Bytes decoder over the words that have a label (not padding, not inside a prefix block),
  // bucketed by target length so that work follows the real label lengths, not B x L x T.
  const int64_t B = out.latent.size(0), L = out.latent.size(1);
  BatchLayout computed;  // a batch not from make_batch: read from the device (a sync on CUDA)
  const BatchLayout& lay = b.layout.filled ? b.layout : (computed = batch_layout(b));
  const torch::Device dev = out.latent.device();
  auto real = host_to_device(lay.label_rows, dev);                          // [M]
  auto h = to_decoder(out.latent.reshape({B * L, -1}).index_select(0, real));  // [M, Dd]
  auto word_nats = torch::zeros({B * L}, h.options().dtype(torch::kFloat));  // fp32 sums, under autocast too
  torch::Tensor word_correct, word_exact;
  if (o.accuracy) {
    word_correct = torch::zeros({B * L}, torch::dtype(torch::kLong).device(h.device()));
    word_exact = torch::zeros({B * L}, torch::dtype(torch::kBool).device(h.device()));
  }
  out.nats = torch::zeros({}, h.options().dtype(torch::kFloat));
  const int64_t T = b.decoder_input.size(2);
  if (o.packed && !o.return_logits) {
    decode_packed(h, real, lay, b, o, &out, word_nats, word_correct, word_exact);
  } else {
    auto lengths = b.target_lengths.flatten().index_select(0, real).to(torch::kLong);  // [M]
    auto inputs = b.decoder_input.reshape({B * L, -1}).index_select(0, real);
    auto targets = b.decoder_target.reshape({B * L, -1}).index_select(0, real);
    auto lengths_cpu = torch::tensor(lay.label_lengths, torch::kLong);
    decode_bucketed(h, real, lengths, lengths_cpu, inputs, targets, T, o, &out, word_nats, word_correct, word_exact);
  }
  out.target_bytes = lay.target_bytes;
  out.decoder_real = out.target_bytes;
  out.word_nats = word_nats.view({B, L});
  if (o.accuracy) {
    out.word_correct = word_correct.view({B, L});
    out.word_exact = word_exact.view({B, L});
  }
  out.loss = out.nats / double(std::max<int64_t>(1, out.target_bytes));
  lap(t, &Timing::decoder, t0, fuse->weight.device());
  return out;
}

torch::Tensor training_nats(const ForwardOutput& out, const ModelConfig& c) {
  torch::Tensor total;
  if (out.target_bytes > 0) total = out.nats;
  if (out.autoencode_nats.defined()) {
    auto ae = out.autoencode_nats * c.autoencode;
    total = total.defined() ? total + ae : ae;
  }
  return total;
}

void ImageLatentTransformerImpl::autoencode_loss(const torch::Tensor& distinct, const Batch& b, ForwardOutput* out) {
  const int64_t N = distinct.size(0), T = b.unique_word_bytes.size(1);
  std::vector<int64_t> lengths;  // BOS + word + EOS of each distinct word
  if (b.layout.filled) {
    lengths = b.layout.word_lengths;
  } else {
    auto l = byte_lengths(b.unique_word_bytes).to(torch::kCPU).contiguous();
    lengths.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + N);
  }
  // Word j is the decoder sequence [h_j, BOS, word bytes] (its `lengths[j]` tokens); outputs
  // 1.. predict the word bytes and EOS, read from the same row of unique_word_bytes one on.
  std::vector<int64_t> seq_len, order, src, target_token;
  int64_t byte = 0, token = 0;
  for (int64_t j = 0; j < N; ++j) {
    const int64_t len = lengths[size_t(j)];
    if (len < 2) continue;  // not a word (a row the batch does not use)
    seq_len.push_back(len);
    order.push_back(j);
    ++token;
    for (int64_t i = 0; i + 1 < len; ++i, ++byte, ++token) {
      order.push_back(N + byte);
      src.push_back(j * T + i);
      target_token.push_back(token);
    }
  }
  if (seq_len.empty()) return;
  const torch::Device dev = distinct.device();
  auto src_t = host_to_device(src, dev);
  auto flat = b.unique_word_bytes.flatten();
  auto h = to_decoder(latent->norm(distinct));  // [N, Dd]: the path of a vector the latent leaves unchanged
  auto x = torch::cat({h, decoder_embed(flat.index_select(0, src_t))}).index_select(0, host_to_device(order, dev));
  auto y = decoder->forward_varlen(x, make_varlen(seq_len, true, dev));  // [tokens, Dd]
  auto logits = byte_logits(y.index_select(0, host_to_device(target_token, dev))).to(torch::kFloat);
  auto tgt = flat.index_select(0, src_t + 1).to(torch::kLong);  // the next byte of the same row
  out->autoencode_nats = F::cross_entropy(logits, tgt, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  out->autoencode_targets = int64_t(src.size());
}

// The bytes decoder over every labelled word packed into one varlen batch: word j is the
// sequence [latent_j, BOS, label bytes] (target length + 1 tokens); outputs 1.. predict the targets.
void ImageLatentTransformerImpl::decode_packed(const torch::Tensor& h, const torch::Tensor& real, const BatchLayout& lay,
                                               const Batch& b, const ForwardOptions& o, ForwardOutput* out,
                                               torch::Tensor& word_nats, torch::Tensor& word_correct,
                                               torch::Tensor& word_exact) {
  const int64_t M = h.size(0), T = b.decoder_input.size(2);
  if (M == 0) return;
  const int64_t* rows = lay.label_rows.data();
  const int64_t* len = lay.label_lengths.data();
  std::vector<int64_t> seq_len, order, src, target_token, target_row;
  int64_t byte = 0, token = 0;
  for (int64_t j = 0; j < M; ++j) {
    seq_len.push_back(len[j] + 1);
    order.push_back(j);  // the latent slot: row j of h
    ++token;
    for (int64_t i = 0; i < len[j]; ++i, ++byte, ++token) {
      order.push_back(M + byte);           // row M + byte of the embedded decoder inputs
      src.push_back(rows[j] * T + i);      // decoder_input / decoder_target [B * L * T]
      target_token.push_back(token);       // whose output predicts target i
      target_row.push_back(rows[j]);
    }
  }
  const torch::Device dev = h.device();
  auto on_dev = [&](const std::vector<int64_t>& v) { return host_to_device(v, dev); };
  auto src_t = on_dev(src), row_t = on_dev(target_row);
  auto x = torch::cat({h, decoder_embed(b.decoder_input.flatten().index_select(0, src_t))}).index_select(0, on_dev(order));
  Varlen v = make_varlen(seq_len, true, dev);
  auto y = decoder->forward_varlen(x, v);                                // [tokens, Dd]
  auto logits = byte_logits(y.index_select(0, on_dev(target_token))).to(torch::kFloat);  // [targets, 256]
  auto tgt = b.decoder_target.flatten().index_select(0, src_t).to(torch::kLong);
  auto ce = F::cross_entropy(logits, tgt, F::CrossEntropyFuncOptions().reduction(torch::kNone));  // [targets]
  word_nats.index_add_(0, row_t, ce.to(word_nats.dtype()));
  if (o.accuracy) {
    word_correct.index_add_(0, row_t, (logits.argmax(-1) == tgt).to(torch::kLong));
    word_exact.index_put_({real}, word_correct.index_select(0, real) == on_dev(lay.label_lengths));
  }
  out->nats = out->nats + ce.sum();
  out->decoder_slots += int64_t(src.size());
}

// The padded path: words bucketed by target length (4, 8, 16, T), each bucket padded to its
// longest; the reference the packed path is tested against, and the path with logits.
void ImageLatentTransformerImpl::decode_bucketed(const torch::Tensor& h, const torch::Tensor& real,
                                                 const torch::Tensor& lengths, const torch::Tensor& lengths_cpu,
                                                 const torch::Tensor& inputs, const torch::Tensor& targets, int64_t T,
                                                 const ForwardOptions& o, ForwardOutput* out, torch::Tensor& word_nats,
                                                 torch::Tensor& word_correct, torch::Tensor& word_exact) {
  int64_t lo = 0;
  for (int64_t hi : {4L, 8L, 16L, T}) {
    if (hi > T) hi = T;
    if (hi <= lo) continue;
    auto members = ((lengths_cpu > lo) & (lengths_cpu <= hi)).nonzero().squeeze(1);
    lo = hi;
    if (members.numel() == 0) continue;
    auto m = members.to(h.device());
    auto len = lengths.index({m});
    int64_t n = lengths_cpu.index({members}).max().item<int64_t>();
    auto x = torch::cat({h.index({m}).unsqueeze(1), decoder_embed(inputs.index({m}).index({Slice(), Slice(0, n)}))}, 1);
    auto pos = torch::arange(n + 1, torch::dtype(torch::kLong).device(h.device())).unsqueeze(0).expand({x.size(0), n + 1});
    auto y = decoder(x, torch::Tensor(), true, pos).index({Slice(), Slice(1)});  // [G, n, Dd]
    auto logits = byte_logits(y).to(torch::kFloat);                              // [G, n, 256]
    auto tgt = targets.index({m}).index({Slice(), Slice(0, n)}).to(torch::kLong);
    auto valid = torch::arange(n, len.options()).unsqueeze(0) < len.unsqueeze(1);  // [G, n]
    auto ce = F::cross_entropy(logits.reshape({-1, 256}), tgt.reshape({-1}),
                               F::CrossEntropyFuncOptions().reduction(torch::kNone))
                  .view({-1, n}) * valid.to(logits.dtype());
    word_nats.index_add_(0, real.index({m}), ce.sum(1).to(word_nats.dtype()));
    if (o.accuracy) {
      // Greedy decoding from the gold context reproduces the gold word exactly when the
      // argmax is right at every target byte (it diverges at the first wrong one).
      auto right = (logits.argmax(-1) == tgt) & valid;
      auto count = right.sum(1);
      word_correct.index_put_({real.index({m})}, count);
      word_exact.index_put_({real.index({m})}, count == len);
    }
    out->nats = out->nats + ce.sum();
    out->decoder_slots += x.size(0) * n;
    if (o.return_logits) out->logits.push_back(logits);
  }
}

namespace {
// FLOPs of one stack over packed sequences of these lengths: matmuls on every token, attention
// (scores and weighted sum) over each sequence's own token pairs, x2 per multiply-add. Counted on
// real tokens only: the padding a path may compute is not useful work.
double stack_flops(const StackConfig& c, const std::vector<int64_t>& lengths, int64_t extra = 0) {
  if (c.layers == 0) return 0;
  double tokens = 0, pairs = 0;
  for (int64_t l : lengths) {
    const double n = double(l + extra);
    tokens += n;
    pairs += n * n;
  }
  double d = c.dim, f = c.ffn;
  double mlp = (c.mlp == "gelu" ? 2 : 3) * d * f;  // (gate+)up, down
  double matmul = 2 * tokens * (3 * d * d + d * d + mlp);  // qkv, proj, MLP
  double attn = 2 * 2 * pairs * d;
  return c.layers * (matmul + attn);
}
}  // namespace

double ImageLatentTransformerImpl::forward_flops(const Batch& b, bool every_occurrence, bool training) const {
  const ModelConfig& c = config;
  if (c.bytes_lm()) {  // the stack over each document piece's bytes, and the head on every target
    const ByteStreams s = byte_streams(b);
    return stack_flops(c.latent, s.piece_lengths) + 2 * double(s.targets) * c.latent.dim * 256;
  }
  BatchLayout computed;
  const BatchLayout& lay = b.layout.filled ? b.layout : (computed = batch_layout(b));
  double flops = 0;
  // The encoders' inputs: each distinct word of the batch once, or every occurrence.
  std::vector<int64_t> patch_counts = lay.patch_counts, word_lengths = lay.word_lengths;
  if (every_occurrence) {
    const torch::Tensor index = b.image_index.to(torch::kCPU).contiguous();
    const int64_t* idx = index.data_ptr<int64_t>();
    patch_counts.clear(), word_lengths.clear();
    for (int64_t i = 0; i < index.numel(); ++i)
      if (idx[i] >= 0) {
        patch_counts.push_back(lay.patch_counts.at(size_t(idx[i])));
        word_lengths.push_back(lay.word_lengths.at(size_t(idx[i])));
      }
  }
  if (c.has_image()) {
    double patches = 0;
    for (int64_t n : patch_counts) patches += double(n);
    flops += 2 * patches * c.image_height * c.patch_width * c.image_encoder.dim;
    flops += stack_flops(c.image_encoder, patch_counts, c.image_pooling == "cls" ? 1 : 0);
  }
  if (c.has_bytes()) flops += stack_flops(c.bytes_encoder, word_lengths);
  const double words = double(b.words);
  flops += 2 * words * (c.has_image() * c.image_encoder.dim + c.has_bytes() * c.bytes_encoder.dim) * c.latent.dim;
  flops += stack_flops(c.latent, lay.piece_lengths);
  const double targets = double(lay.target_bytes), labelled = double(lay.label_lengths.size());
  flops += 2 * labelled * c.latent.dim * c.bytes_decoder.dim;
  flops += stack_flops(c.bytes_decoder, lay.label_lengths, 1) + 2 * targets * c.bytes_decoder.dim * 256;
  if (training && c.autoencode > 0) {  // [h, BOS, word] per word: BOS + word + EOS tokens, one target less
    double spelled = 0, words_in = 0;
    for (int64_t n : word_lengths)
      if (n >= 2) spelled += double(n - 1), ++words_in;
    flops += 2 * words_in * c.latent.dim * c.bytes_decoder.dim;
    flops += stack_flops(c.bytes_decoder, word_lengths) + 2 * spelled * c.bytes_decoder.dim * 256;
  }
  return flops;
}

void set_cpu_threads(int threads) {
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
  torch::set_num_threads(std::max(1, threads));
}

LibraryVersions torch_versions() {
  LibraryVersions v = {{"LibTorch", TORCH_VERSION}};
#ifdef ILT_TORCH_CUDA_VERSION
  const int64_t n = int64_t(torch::cuda::device_count());
  v.push_back({"CUDA", fmt::format("{}: compiled, {}", ILT_TORCH_CUDA_VERSION,
                                   n == 0 ? std::string("no device") : fmt::format("{} device{}", n, n == 1 ? "" : "s"))});
#else
  v.push_back({"CUDA:", "not compiled (CPU-only LibTorch)"});
#endif
  return v;
}

torch::Device parse_device(const std::string& name, const std::string& flag) {
  std::optional<torch::Device> dev;
  try {
    dev.emplace(name);
  } catch (const c10::Error&) {
    fail("{} '{}': not a device (cpu, cuda or cuda:N)", flag, name);
  }
  if (!dev->is_cpu() && !dev->is_cuda()) fail("{} '{}': only cpu and cuda devices are supported", flag, name);
  if (dev->is_cuda()) {
#ifndef ILT_TORCH_CUDA_VERSION
    fail("{} {}: this build's LibTorch has no CUDA (CPU only; see --version)", flag, name);
#endif
    if (!torch::cuda::is_available()) fail("{} {}: no CUDA device on this machine (see --version)", flag, name);
    if (dev->has_index() && dev->index() >= int(torch::cuda::device_count()))
      fail("{} {}: this machine has {} CUDA device(s)", flag, name, torch::cuda::device_count());
  }
  return *dev;
}

void check_precision(const std::string& precision, const torch::Device& device, const std::string& flag) {
  if (precision == "fp32") return;
  if (precision != "bf16") fail("{} '{}': fp32 or bf16", flag, precision);
#if !ILT_TORCH_HAS_AUTOCAST
  fail("{} bf16 needs LibTorch 2.4 or newer (autocast on any device); this build has {}", flag, TORCH_VERSION);
#endif
  if (!device.is_cpu() && !device.is_cuda()) fail("{} bf16: only on cpu and cuda devices", flag);
}

Autocast::Autocast(const std::string& precision, const torch::Device& device) : type_(device.type()) {
  check_precision(precision, device);
  if (precision != "bf16") return;
#if ILT_TORCH_HAS_AUTOCAST
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  on_ = true;
#endif
}

Autocast::~Autocast() {
#if ILT_TORCH_HAS_AUTOCAST
  if (!on_) return;
  at::autocast::set_autocast_enabled(type_, false);
  at::autocast::clear_cache();
#endif
}

void set_tf32(bool on) {
  at::globalContext().setAllowTF32CuBLAS(on);
  at::globalContext().setAllowTF32CuDNN(on);
}

Batch to_device(const Batch& b, const torch::Device& d) {
  if (d.is_cpu()) return b;
  Batch o = b;
  for (torch::Tensor* t : {&o.word_bytes, &o.word_mask, &o.positions, &o.doc_ids, &o.prefix_ids, &o.decoder_input,
                           &o.decoder_target, &o.target_lengths, &o.image_index, &o.image_patches,
                           &o.image_patch_counts, &o.unique_word_bytes})
    if (t->defined()) *t = t->to(d, /*non_blocking=*/true);
  return o;
}

}  // namespace ilt
