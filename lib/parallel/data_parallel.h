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
  // Each parameter's gradient becomes the sum over ranks; flat buckets of about bucket_mb MB,
  // one all-reduce each (after the backward pass; no overlap with it yet).
  void allreduce_gradients(const std::vector<torch::Tensor>& parameters, double bucket_mb = 25);
  // Sum over ranks, in place (device tensors over NCCL, CPU tensors over Gloo).
  void allreduce(torch::Tensor& t);
  // The maximum of a host value over ranks (Gloo; the GPU is not involved).
  int64_t max(int64_t value);
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
