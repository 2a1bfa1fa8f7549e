// Data-parallel communication on c10d, the distributed engine LibTorch ships (as PyTorch's
// DistributedDataParallel uses it, without the Python):
//
//   rendezvous   a c10d::TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 serves it, or torchrun's agent)
//   CPU tensors  ProcessGroupGloo (also the control channel of GPU runs: agreeing on whether to
//                stop costs the GPU nothing)
//   CUDA tensors ProcessGroupNCCL (CUDA builds of LibTorch 2.x)
//
// Every call is collective: all ranks make the same calls in the same order. A rank that dies
// or stops answering makes the others' call fail within the timeout with one ilt::Error line.
// A plain single process communicates nothing (and needs no c10d).
#pragma once
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/env.h"

namespace ilt {

class DataParallel {
 public:
  DataParallel(const DistEnv& env, const torch::Device& device, std::chrono::seconds timeout);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  // Communicating: launched by torchrun, Slurm or --nproc-per-node (also with one rank).
  bool active() const { return impl_ != nullptr; }
  const DistEnv& env() const { return env_; }

  // Rank 0's values into every rank's tensors (the parameters at start).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Gradients summed over ranks while the backward pass runs, as PyTorch's DDP reducer does:
  // the parameters go into flat buckets of about bucket_mb MB in reverse order (the order
  // backward produces their gradients); a hook on each parameter copies its gradient into its
  // bucket, and a bucket's all-reduce starts as soon as it is full and every earlier bucket
  // has started, so all ranks start the same all-reduces in the same order. Buckets whose
  // gradients never came (parts of the model a rank's batch did not reach) start after the
  // backward pass, filled with zeros.
  //   watch_gradients   once, after the parameters are final (registers the hooks)
  //   arm_gradients     before the backward pass that completes a step (the last micro-batch)
  //   reduce_gradients  after it: starts the rest, waits, writes the sums into .grad; a
  //                     parameter no rank reached keeps no gradient, as in one process
  void watch_gradients(const std::vector<torch::Tensor>& parameters, double bucket_mb = 25);
  void arm_gradients();
  void reduce_gradients();
  // Of the last reduce_gradients' buckets, the share started during the backward pass.
  double gradient_overlap() const;
  // Sum over ranks, in place (device tensors over NCCL, CPU tensors over Gloo).
  void allreduce(torch::Tensor& t);
  // The maximum of host values over ranks, element by element (Gloo; the GPU is not involved).
  std::vector<int64_t> max(std::vector<int64_t> values);
  // Small host data from every rank to rank 0 (through the store): rank 0 gets each rank's
  // bytes in rank order, the others an empty vector. `key` must be new for each call.
  std::vector<std::string> gather_to_zero(const std::string& key, const std::string& mine);
  void barrier();

 private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

// Whether this build can run more than one rank (c10d with Gloo compiled in), and NCCL.
bool have_c10d();
bool have_nccl();

}  // namespace ilt
