// The Image Latent Transformer, top to bottom (the paper's four parts):
//
//   image encoder    ViT over 16x16 patches of each distinct word image  -> [N, Di]
//   bytes encoder    bidirectional transformer over each word's bytes    -> [N, Db]
//   fusion           concat(present parts) -> Linear                     -> [B, L, Dl]
//   latent           causal transformer over words (block-diagonal over
//                    packed documents, bidirectional prefix blocks)      -> [B, L, Dl]
//   bytes decoder    causal transformer over [latent_i, BOS, label bytes]
//                    for every labelled word, packed without padding     -> logits [., 256]
//
// Shapes: B examples, L words, T max word length, N distinct words in the batch,
// M words with a label (B x L minus padding and prefix-block words), S a stack's sequence length.
#pragma once
#include <torch/torch.h>

#include "data/loader.h"
#include "model/config.h"
#include "model/torch_version.h"

namespace ilt {

// ------------------------------------------------------------------ building blocks

struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// A linear layer applied to x [..., K]. A single row goes through a matrix-vector product:
// OpenBLAS's sgemm copies (packs) the whole weight even for one row, which cost batch-1
// generation on CPU about half its time.
torch::Tensor dense(const torch::nn::Linear& layer, const torch::Tensor& x);

// Rotary position tables for integer positions [N, S]: cos and sin [N, 1, S, head_dim / 2].
std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions, int64_t head_dim, double theta);

// Keys and values of a causal stack's past positions, so that generation computes each new
// position once (the KV cache). Rows are sequences; each has its own length.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer [R, heads, capacity, Dh]
  std::vector<int64_t> length;      // [R] positions filled per row
  int64_t rows() const { return int64_t(length.size()); }
  // Keeps rows[i] as row i (drops finished sequences, reorders and copies beams).
  void keep(const std::vector<int64_t>& rows);
};

// Where a block writes and reads its cached keys and values during one cached call.
struct CacheSlot {
  torch::Tensor* k;      // [R, heads, capacity, Dh], written in place
  torch::Tensor* v;
  torch::Tensor write;   // [R, heads, S, Dh] int64: cache position of each new key
  int64_t used;          // cache positions to attend over (max length after the call)
};

// Sequences of different lengths packed end to end, with no padding: tokens [N, D], sequence
// s holding tokens cu_seqlens[s] .. cu_seqlens[s + 1] - 1. Built from lengths known on the
// host. Attention runs per sequence: on CUDA in bf16/fp16, ATen's variable-length flash kernel
// over the packed tokens; elsewhere (CPU, fp32, LibTorch 1.13) the generic path scatters q, k, v
// into a padded [S, heads, max_len, Dh] layout for attention alone (every matmul before and after
// it runs on the N real tokens) and gives the same numbers.
struct Varlen {
  torch::Tensor cu_seqlens;  // [S + 1] int32
  torch::Tensor positions;   // [N] int64: position of each token within its sequence
  torch::Tensor sequence;    // [N] int64: the sequence of each token
  torch::Tensor slot;        // [N] int64: sequence * max_len + position (the generic path's layout)
  torch::Tensor key_valid;   // [S, 1, 1, max_len] bool, non-causal generic path: real keys
  std::vector<int64_t> starts;  // host: first token of each sequence
  int64_t sequences = 0, tokens = 0, max_len = 0;
  bool causal = false;
};
Varlen make_varlen(const std::vector<int64_t>& lengths, bool causal, const torch::Device& device);

// Host values -> an int64 tensor on `device`. On CUDA through page-locked memory with a
// non-blocking copy: the host does not wait for the GPU (no sync in the training step).
torch::Tensor host_to_device(const std::vector<int64_t>& values, const torch::Device& device);
// A CPU tensor on `device`, likewise without the host waiting.
torch::Tensor to_device_async(const torch::Tensor& t, const torch::Device& device);

// Pre-norm block: x + attention(norm(x)), then x + MLP(norm(x)) (SwiGLU or GELU).
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const StackConfig& c);
  // x [N, S, D]. mask: bool [N, 1, S, S] (true = may attend) or undefined; causal: add the
  // causal triangle (used when mask is undefined). rope: from rotary(). With a cache slot, the
  // new keys and values are stored and the queries attend over the cache ([N, 1, S, used] mask).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, bool causal,
                        const std::pair<torch::Tensor, torch::Tensor>& rope, CacheSlot* cache = nullptr);
  // Packed tokens x [N, D] (rope from rotary(v.positions): [N, 1, Dh / 2]).
  torch::Tensor forward_varlen(const torch::Tensor& x, const Varlen& v, const std::pair<torch::Tensor, torch::Tensor>& rope);
  torch::Tensor mlp(const torch::Tensor& y);  // y + MLP(norm2(y))
  RMSNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::nn::Linear gate_up{nullptr}, up{nullptr}, down{nullptr};  // SwiGLU: gate_up; GELU: up
  int64_t heads, ffn;
};
TORCH_MODULE(Block);

// A stack of blocks with a final norm.
struct StackImpl : torch::nn::Module {
  explicit StackImpl(const StackConfig& c);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask, bool causal, const torch::Tensor& positions);
  // Packed sequences: x [N, D] -> [N, D]; each token sees its own sequence only (causally if v.causal).
  torch::Tensor forward_varlen(torch::Tensor x, const Varlen& v);
  // Causal, with a KV cache: appends the real positions of x [R, S, D] (valid [R, S] bool,
  // true for a prefix of each row; undefined = all) after each row's cached ones and returns
  // [R, S, D]. Equals forward() over the whole sequences at the new positions.
  // prefix_ids [R, S] int (-1: none): new positions with the same id attend to each other both
  // ways, as latent_mask() makes them in training (a prompt's ShiftOut ... ShiftIn block).
  // Only new positions can share a block: a cached key is never recomputed.
  torch::Tensor forward_cached(torch::Tensor x, const torch::Tensor& positions, KVCache* cache,
                               const torch::Tensor& valid = {}, const torch::Tensor& prefix_ids = {});
  torch::nn::ModuleList blocks;
  RMSNorm norm{nullptr};
  int64_t head_dim;
  double theta = 10000.0;
};
TORCH_MODULE(Stack);

// Byte embedding, optionally with the bit bias: e(b) = byte_table[b] + sum_k bit_k(b) * bit_table[k].
// bit_init "zero" starts the bit vectors at zero (the current reference), "random" like the table.
struct ByteEmbeddingImpl : torch::nn::Module {
  ByteEmbeddingImpl(int64_t dim, bool bit_bias, const std::string& bit_init = "random");
  torch::Tensor forward(const torch::Tensor& bytes);  // any shape of byte values -> [..., dim]
  torch::Tensor table();                               // every byte's embedding [256, dim]
  torch::Tensor byte_table, bit_table, bits;           // [256, D], [8, D], buffer [256, 8]
  bool bit_bias;
};
TORCH_MODULE(ByteEmbedding);

// ------------------------------------------------------------------ the four parts

// ViT over the patches of each distinct image; an image's vector depends on nothing else in
// the batch: images are grouped by width (patch count) and each group runs unpadded.
// Pooling "mean" over the patches, or "cls": a learned token in front, tanh(pool(its state)).
struct ImageEncoderImpl : torch::nn::Module {
  explicit ImageEncoderImpl(const ModelConfig& c);
  // patches [P, H, Wp] uint8 (image after image), counts [N] -> [N, D]. packed: every image's
  // patches in one varlen sequence (Varlen); else one pass per distinct patch count.
  // host_counts: the counts on the host (Batch::layout); without, they are read from the device.
  torch::Tensor forward(const torch::Tensor& patches, const torch::Tensor& counts, bool packed = true,
                        const std::vector<int64_t>* host_counts = nullptr);
  torch::nn::Linear patch_embed{nullptr};
  Stack stack{nullptr};
  torch::Tensor cls;                     // [D], "cls" pooling only
  torch::nn::Linear pool{nullptr};       // D -> D, "cls" pooling only
};
TORCH_MODULE(ImageEncoder);

// Bidirectional transformer over BOS + word + EOS; pooling "mean" over the real bytes, or "bos":
// the state at BOS (position 0).
struct BytesEncoderImpl : torch::nn::Module {
  explicit BytesEncoderImpl(const ModelConfig& c);
  // [N, T] uint8 -> [N, D]. packed: the real bytes of every word in one varlen sequence;
  // else words bucketed by length, each bucket padded to its longest.
  // host_lengths: each row's real length on the host (Batch::layout); without, read from the device.
  torch::Tensor forward(const torch::Tensor& bytes, bool packed = true, const std::vector<int64_t>* host_lengths = nullptr);
  ByteEmbedding embed{nullptr};
  Stack stack{nullptr};
  bool bos_pooling = false;
};
TORCH_MODULE(BytesEncoder);

struct ForwardOptions {
  bool use_image = true;  // evaluation-time switches: a disabled part contributes zeros
  bool use_bytes = true;
  bool return_logits = false;  // keep per-word logits (tests, generation)
  bool accuracy = false;       // fill word_correct / word_exact (evaluation)
  // Encoders and decoder over packed sequences (Varlen), no padding. false: the padded
  // (bucketed) path, kept as the reference the packed one is tested against.
  bool packed = true;
};

inline constexpr double kLn2 = 0.6931471805599453;  // nats -> bits

struct ForwardOutput {
  torch::Tensor loss;            // mean cross-entropy over real target bytes (scalar)
  torch::Tensor nats;            // summed cross-entropy (scalar)
  torch::Tensor autoencode_nats;  // training with config.autoencode: summed cross-entropy of spelling
                                  // each distinct word from its own vector (unweighted; else undefined)
  int64_t autoencode_targets = 0;  // its target bytes (words + EOS)
  torch::Tensor word_nats;       // [B, L] summed cross-entropy of each word's target bytes
  torch::Tensor latent;          // [B, L, Dl] the latent transformer's output
  torch::Tensor word_correct;    // [B, L] target bytes whose argmax is right (with accuracy)
  torch::Tensor word_exact;      // [B, L] bool: every target byte right = greedy decoding from
                                 // the gold context reproduces the gold word (with accuracy)
  torch::Tensor word_targets;    // [B, L] targets of each word, where they differ from target_lengths
                                 // (the bytes-lm: its label bytes, EOS only at a document's end)
  int64_t target_bytes = 0;      // real target bytes (labels + EOS)
  int64_t decoder_slots = 0;     // decoder positions computed (with bucket padding)
  int64_t decoder_real = 0;      // of which real
  std::vector<torch::Tensor> logits;  // with return_logits: [M_k, n_k, 256] per bucket
};

// The summed objective a training step backpropagates: the next-word nats plus the autoencoding
// loss weighted by c.autoencode (where the forward pass made one); undefined when the batch has
// nothing to learn from (only prefix blocks). The trainer divides gradients by the step's target bytes.
torch::Tensor training_nats(const ForwardOutput& out, const ModelConfig& c);

// Seconds spent in each part's forward pass (filled when a Timing is passed).
// sync: drain the CUDA device before each reading (CUDA runs asynchronously; set by benchmarks).
struct Timing {
  double image = 0, bytes = 0, latent = 0, decoder = 0;
  bool sync = false;
};

struct ImageLatentTransformerImpl : torch::nn::Module {
  explicit ImageLatentTransformerImpl(const ModelConfig& c);

  // Word vectors of the batch's words: [B, L, Dl] (fusion of the present encoders). distinct:
  // also each distinct word's vector [N, Dl], without modality dropout.
  torch::Tensor embed_words(const Batch& b, const ForwardOptions& o, Timing* t = nullptr, torch::Tensor* distinct = nullptr);
  // Latent transformer over word vectors with the batch's masks.
  torch::Tensor latent_forward(const torch::Tensor& words, const Batch& b);
  // Latent states [..., Dl] -> the bytes decoder's first position [..., Dd] (Linear, norm).
  torch::Tensor to_decoder(const torch::Tensor& latent);
  // Decoder states [..., Dd] -> byte logits [..., 256] (the head, or the tied embedding).
  torch::Tensor byte_logits(const torch::Tensor& y);
  ForwardOutput forward(const Batch& b, const ForwardOptions& o = {}, Timing* t = nullptr);
  // forward() of the byte-level baseline (config.bytes_lm(); lib/model/bytes_lm.cpp): `latent`
  // over each row's bytes, logits from decoder_embed's table or the head.
  ForwardOutput forward_bytes_lm(const Batch& b, const ForwardOptions& o);
  // The bytes decoder part of forward(): h [M, Dd] the decoder's first position of each
  // labelled word (rows `real` of B x L, on the host lay.label_rows, target lengths
  // lay.label_lengths); adds to out's nats and the per-word sums. Packed (varlen) or bucketed by
  // length (the padded reference).
  void decode_packed(const torch::Tensor& h, const torch::Tensor& real, const BatchLayout& lay, const Batch& b,
                     const ForwardOptions& o, ForwardOutput* out, torch::Tensor& word_nats, torch::Tensor& word_correct,
                     torch::Tensor& word_exact);
  void decode_bucketed(const torch::Tensor& h, const torch::Tensor& real, const torch::Tensor& lengths,
                       const torch::Tensor& lengths_cpu, const torch::Tensor& inputs, const torch::Tensor& targets, int64_t T,
                       const ForwardOptions& o, ForwardOutput* out, torch::Tensor& word_nats, torch::Tensor& word_correct,
                       torch::Tensor& word_exact);

  // The autoencoding loss (config.autoencode): the bytes decoder spells each distinct word of
  // the batch from to_decoder(latent.norm(its vector)), distinct [N, Dl] from embed_words; sets
  // out's autoencode_nats and autoencode_targets.
  void autoencode_loss(const torch::Tensor& distinct, const Batch& b, ForwardOutput* out);

  // Model FLOPs of one forward pass over this batch (matmuls and attention, x2 per MAC): the
  // work done, with each distinct word of the batch encoded once; every_occurrence: as if the
  // encoders ran on every word occurrence (the model's FLOPs, whatever the batch; experiments
  // compare architectures on this). training: with the autoencoding loss's decoder pass where
  // the config has one (over the same words as the encoders).
  double forward_flops(const Batch& b, bool every_occurrence = false, bool training = false) const;

  ModelConfig config;
  ImageEncoder image_encoder{nullptr};
  BytesEncoder bytes_encoder{nullptr};
  torch::nn::Linear fuse{nullptr};         // [Di + Db] -> Dl
  RMSNorm encoder_norm{nullptr};           // after fuse (config encoder_norm)
  Stack latent{nullptr};                   // bytes-lm: the causal transformer over bytes
  torch::nn::Linear latent_to_decoder{nullptr};  // Dl -> Dd
  RMSNorm decoder_norm{nullptr};           // after latent_to_decoder (config decoder_norm)
  ByteEmbedding decoder_embed{nullptr};    // bytes-lm: the input byte embedding (width latent.dim)
  Stack decoder{nullptr};
  torch::nn::Linear head{nullptr};         // Dd -> 256; none with tie_head
};
TORCH_MODULE(ImageLatentTransformer);

// Sets LibTorch's CPU threads. Also pins OpenBLAS (when LibTorch uses it) to one thread:
// LibTorch already runs ops on its own thread pool, and OpenBLAS's extra threads only spin
// against it (measured: a third of the CPU time in sched_yield on 2 cores).
void set_cpu_threads(int threads);

// "cpu", "cuda" or "cuda:N" -> a device that exists here; one-line ilt::Error otherwise
// (naming `flag`, e.g. "--device").
torch::Device parse_device(const std::string& name, const std::string& flag = "--device");

// Mixed precision. "fp32": nothing. "bf16": autocast to bfloat16 on the device (CUDA, or the
// CPU) while an Autocast lives; where this LibTorch cannot (before 2.4: no device-generic
// autocast), check_precision() refuses with one line instead of computing in fp32 unasked.
void check_precision(const std::string& precision, const torch::Device& device, const std::string& flag = "--precision");
class Autocast {
 public:
  Autocast(const std::string& precision, const torch::Device& device);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_ = false;
  c10::DeviceType type_;
};

// TF32 for fp32 matmuls and convolutions on CUDA (Ampere and newer): about 8x the fp32 rate
// at a 10-bit mantissa in the products. ilt turns it on for CUDA runs (--no-tf32: off);
// LibTorch's own default leaves cuBLAS at full fp32. No effect on the CPU.
void set_tf32(bool on);

// Moves a batch's tensors to a device (uint8 stays uint8: widened by the model).
Batch to_device(const Batch& b, const torch::Device& d);

// The latent attention mask [B, 1, L, L] (true = may attend): same document, earlier or same
// position or same prefix block; padding attends only to itself.
torch::Tensor latent_mask(const torch::Tensor& doc_ids, const torch::Tensor& prefix_ids);

}  // namespace ilt
