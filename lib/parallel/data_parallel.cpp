#include "parallel/data_parallel.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"

#ifdef ILT_HAVE_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef ILT_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace ilt {

bool have_c10d() {
#ifdef ILT_HAVE_C10D
  return true;
#else
  return false;
#endif
}
bool have_nccl() {
#ifdef ILT_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

#ifdef ILT_HAVE_C10D
namespace {
// The address of this machine's interface that reaches `host` (the route the kernel picks:
// a UDP "connect" sends nothing). Gloo listens there, so that ranks on other machines can
// connect back; the master's own address would not exist on them.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    fail("cannot resolve MASTER_ADDR {}", host);
  std::string out;
  int fd = socket(res->ai_family, SOCK_DGRAM, 0);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* a = local.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
    if (inet_ntop(local.ss_family, a, buf, sizeof buf)) out = buf;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  if (out.empty()) fail("no network route to MASTER_ADDR {}", host);
  return out;
}
}  // namespace

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef ILT_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0;
  // A failed collective: one line naming the rank and the operation, LibTorch's first line.
  [[noreturn]] void lost(const char* op, const std::exception& e) const {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    fail("rank {}: {} failed: another rank died or stopped answering ({})", rank, op, what);
  }
  template <class F>
  void run(const char* op, F&& f) const {
    try {
      f();
    } catch (const std::exception& e) {
      lost(op, e);
    }
  }
  void all_reduce(std::vector<torch::Tensor>& ts) {
#ifdef ILT_HAVE_NCCL
    if (ts[0].is_cuda()) {
      run("all-reduce (NCCL)", [&] { nccl->allreduce(ts)->wait(); });
      return;
    }
#endif
    if (ts[0].is_cuda()) fail("rank {}: CUDA tensors need NCCL, which this build lacks", rank);
    run("all-reduce", [&] { gloo->allreduce(ts)->wait(); });
  }
};

DataParallel::DataParallel(const DistEnv& env, const torch::Device& device, std::chrono::seconds timeout)
    : env_(env) {
  // A launched job joins c10d even at world size 1 (all-reduces then run over one rank: how
  // scripts/gpu-check.sh exercises NCCL on one GPU); a plain single process does not.
  if (env.source == "single") return;
  impl_ = std::make_unique<Impl>();
  impl_->rank = env.rank;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  try {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = size_t(env.world);
    so.waitWorkers = false;
    so.timeout = ms;
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix + "/ilt", store);
    auto go = c10d::ProcessGroupGloo::Options::create(ms);
    // GLOO_SOCKET_IFNAME (as in PyTorch) names the interface; else the one that reaches the master.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    go->devices.push_back(ifname && *ifname
                              ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                              : c10d::ProcessGroupGloo::createDeviceForHostname(
                                    local_address_towards(env.master_addr, env.master_port)));
    go->threads = 2;
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", impl_->store),
                                                             env.rank, env.world, go);
#ifdef ILT_HAVE_NCCL
    if (device.is_cuda()) {
      c10::cuda::set_device(device.index() < 0 ? 0 : device.index());
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = ms;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", impl_->store),
                                                               env.rank, env.world, no);
    }
#endif
  } catch (const std::exception& e) {
    std::string what = e.what();
    fail("rank {} of {}: cannot join the job at {}:{} within {} s ({})", env.rank, env.world, env.master_addr,
         env.master_port, timeout.count(), what.substr(0, what.find('\n')));
  }
#ifndef ILT_HAVE_NCCL
  if (device.is_cuda()) fail("rank {}: data-parallel training on CUDA needs NCCL, which this build lacks", env.rank);
#endif
}
#else
struct DataParallel::Impl {};
DataParallel::DataParallel(const DistEnv& env, const torch::Device&, std::chrono::seconds) : env_(env) {
  if (env.distributed())
    fail("{} ranks asked for ({}), but this build has no c10d with Gloo (Debian: apt install libgloo-dev, then "
         "rebuild)",
         env.world, env.source);
}
#endif

DataParallel::~DataParallel() = default;

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors) {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> one{t.detach()};
    c10d::BroadcastOptions bo;
    bo.rootRank = 0;
#ifdef ILT_HAVE_NCCL
    if (t.is_cuda()) {
      impl_->run("broadcast (NCCL)", [&] { impl_->nccl->broadcast(one, bo)->wait(); });
      continue;
    }
#endif
    impl_->run("broadcast", [&] { impl_->gloo->broadcast(one, bo)->wait(); });
  }
#else
  (void)tensors;
#endif
}

void DataParallel::allreduce(torch::Tensor& t) {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  std::vector<torch::Tensor> one{t};
  impl_->all_reduce(one);
#else
  (void)t;
#endif
}

void DataParallel::allreduce_gradients(const std::vector<torch::Tensor>& parameters, double bucket_mb) {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  torch::NoGradGuard no_grad;
  // A parameter no rank's batch reached keeps no gradient (AdamW leaves it alone, as in one
  // process); one that some rank's did gets zeros on the others, so that buckets match.
  auto reached = torch::zeros({int64_t(parameters.size())}, torch::kLong);
  for (size_t i = 0; i < parameters.size(); ++i) reached[int64_t(i)] = int64_t(parameters[i].grad().defined());
  {
    std::vector<torch::Tensor> one{reached};
    c10d::AllreduceOptions ao;
    ao.reduceOp = c10d::ReduceOp::MAX;
    impl_->run("agreeing on gradients", [&] { impl_->gloo->allreduce(one, ao)->wait(); });
  }
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const torch::Tensor& p = parameters[i];
    if (reached[int64_t(i)].item<int64_t>() == 0) continue;
    if (!p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  const int64_t limit = std::max<int64_t>(1, int64_t(bucket_mb * 1e6));
  size_t i = 0;
  while (i < grads.size()) {
    size_t j = i;
    int64_t bytes = 0;
    std::vector<torch::Tensor> flat;
    while (j < grads.size() && (j == i || (bytes + int64_t(grads[j].nbytes()) <= limit && grads[j].dtype() == grads[i].dtype()))) {
      bytes += int64_t(grads[j].nbytes());
      flat.push_back(grads[j].reshape({-1}));
      ++j;
    }
    std::vector<torch::Tensor> bucket{torch::cat(flat)};
    impl_->all_reduce(bucket);
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = grads[k].numel();
      grads[k].copy_(bucket[0].narrow(0, off, n).view_as(grads[k]));
      off += n;
    }
    i = j;
  }
#else
  (void)parameters;
  (void)bucket_mb;
#endif
}

int64_t DataParallel::max(int64_t value) {
#ifdef ILT_HAVE_C10D
  if (!active()) return value;
  std::vector<torch::Tensor> one{torch::full({1}, value, torch::kLong)};
  c10d::AllreduceOptions ao;
  ao.reduceOp = c10d::ReduceOp::MAX;
  impl_->run("agreeing with the other ranks", [&] { impl_->gloo->allreduce(one, ao)->wait(); });
  return one[0].item<int64_t>();
#else
  return value;
#endif
}

std::vector<std::string> DataParallel::gather_to_zero(const std::string& key, const std::string& mine) {
  if (!active()) return {mine};
#ifdef ILT_HAVE_C10D
  std::vector<std::string> out;
  impl_->run("gathering to rank 0", [&] {
    const std::string k = "gather/" + key + "/";
    if (rank() != 0) {
      impl_->store->set(k + std::to_string(rank()), std::vector<uint8_t>(mine.begin(), mine.end()));
      return;
    }
    out.push_back(mine);
    for (int r = 1; r < world(); ++r) {
      auto v = impl_->store->get(k + std::to_string(r));
      out.emplace_back(v.begin(), v.end());
      impl_->store->deleteKey(k + std::to_string(r));
    }
  });
  return out;
#else
  return {mine};
#endif
}

void DataParallel::barrier() {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  impl_->run("barrier", [&] { impl_->gloo->barrier()->wait(); });
#endif
}

}  // namespace ilt
