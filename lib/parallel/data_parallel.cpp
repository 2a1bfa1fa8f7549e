#include "parallel/data_parallel.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <mutex>

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

// The overlapped gradient all-reduce (see the header). Hooks run on the autograd engine's
// threads, hence the lock.
struct GradientSync {
  using Work = decltype(std::declval<c10d::ProcessGroupGloo&>().allreduce(std::declval<std::vector<at::Tensor>&>()));
  struct Bucket {
    std::vector<size_t> params;  // indices into `params`, in bucket order
    torch::Tensor flat;          // [sum of numel]
    size_t pending = 0;          // gradients still to come in this pass
    Work work;
    std::vector<torch::Tensor> io;
  };
  std::vector<torch::Tensor> params;
  std::vector<size_t> bucket_of, offset;  // per parameter
  std::vector<char> ready;                // per parameter, this pass
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;
  size_t next_launch = 0, in_backward = 0;  // buckets started; of them, from a hook
  bool armed = false;
  std::mutex mu;
  std::function<Work(std::vector<torch::Tensor>&)> start;  // an all-reduce, not waited for

  torch::Tensor slot(size_t i) {
    return buckets[bucket_of[i]].flat.narrow(0, int64_t(offset[i]), params[i].numel()).view_as(params[i]);
  }
  // The parameter's final gradient this step: what earlier micro-batches accumulated plus `g`.
  void fill(size_t i, const torch::Tensor* g) {
    torch::Tensor dst = slot(i);
    const torch::Tensor& acc = params[i].grad();
    if (g && acc.defined()) torch::add_out(dst, acc, *g);
    else if (g) dst.copy_(*g);
    else if (acc.defined()) dst.copy_(acc);
    else dst.zero_();
  }
  void launch_ready() {  // in bucket order only: every rank starts the same sequence
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch++];
      b.io = {b.flat};
      b.work = start(b.io);
    }
  }
  void on_grad(size_t i, const torch::Tensor& g) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || ready[i]) return;
    torch::NoGradGuard no_grad;
    fill(i, &g);
    ready[i] = 1;
    --buckets[bucket_of[i]].pending;
    launch_ready();
    in_backward = next_launch;
  }
};

struct DataParallel::Impl {
  std::unique_ptr<GradientSync> sync;  // declared first: destroyed last, after the groups
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

#ifdef ILT_HAVE_C10D
DataParallel::~DataParallel() {
  // The hooks point into the gradient sync; the parameters may outlive it.
  if (impl_ && impl_->sync)
    for (size_t k = 0; k < impl_->sync->params.size(); ++k) impl_->sync->params[k].remove_hook(impl_->sync->hooks[k]);
}
#else
DataParallel::~DataParallel() = default;
#endif

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


void DataParallel::watch_gradients(const std::vector<torch::Tensor>& parameters, double bucket_mb) {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  if (impl_->sync) fail("watch_gradients called twice");
  auto gs = std::make_unique<GradientSync>();
  for (const auto& p : parameters)
    if (p.requires_grad()) gs->params.push_back(p);
  const size_t n = gs->params.size();
  gs->bucket_of.assign(n, 0);
  gs->offset.assign(n, 0);
  gs->ready.assign(n, 0);
  const int64_t limit = std::max<int64_t>(1, int64_t(bucket_mb * 1e6));
  int64_t bytes = 0, numel = 0;
  for (size_t k = n; k-- > 0;) {  // reverse order: the last layers' gradients come first
    const torch::Tensor& p = gs->params[k];
    const bool fresh = gs->buckets.empty() || bytes + int64_t(p.nbytes()) > limit ||
                       p.dtype() != gs->params[gs->buckets.back().params[0]].dtype() ||
                       p.device() != gs->params[gs->buckets.back().params[0]].device();
    if (fresh) {
      if (!gs->buckets.empty())
        gs->buckets.back().flat = torch::empty({numel}, gs->params[gs->buckets.back().params[0]].options());
      gs->buckets.emplace_back();
      bytes = numel = 0;
    }
    gs->bucket_of[k] = gs->buckets.size() - 1;
    gs->offset[k] = size_t(numel);
    gs->buckets.back().params.push_back(k);
    bytes += int64_t(p.nbytes());
    numel += p.numel();
  }
  if (!gs->buckets.empty())
    gs->buckets.back().flat = torch::empty({numel}, gs->params[gs->buckets.back().params[0]].options());
  Impl* im = impl_.get();
  gs->start = [im](std::vector<torch::Tensor>& io) -> GradientSync::Work {
    GradientSync::Work w;
    im->run("all-reduce of gradients", [&] {
#ifdef ILT_HAVE_NCCL
      if (io[0].is_cuda()) {
        w = im->nccl->allreduce(io);
        return;
      }
#endif
      if (io[0].is_cuda()) fail("rank {}: CUDA tensors need NCCL, which this build lacks", im->rank);
      w = im->gloo->allreduce(io);
    });
    return w;
  };
  GradientSync* g = gs.get();
  for (size_t k = 0; k < n; ++k)
    gs->hooks.push_back(gs->params[k].register_hook([g, k](const torch::Tensor& grad) { g->on_grad(k, grad); }));
  impl_->sync = std::move(gs);
#else
  (void)parameters;
  (void)bucket_mb;
#endif
}

void DataParallel::arm_gradients() {
#ifdef ILT_HAVE_C10D
  if (!active() || !impl_->sync) return;
  GradientSync& g = *impl_->sync;
  std::lock_guard<std::mutex> lock(g.mu);
  std::fill(g.ready.begin(), g.ready.end(), 0);
  for (auto& b : g.buckets) b.pending = b.params.size();
  g.next_launch = g.in_backward = 0;
  g.armed = true;
#endif
}

void DataParallel::reduce_gradients() {
#ifdef ILT_HAVE_C10D
  if (!active()) return;
  if (!impl_->sync) fail("reduce_gradients before watch_gradients");
  GradientSync& g = *impl_->sync;
  torch::NoGradGuard no_grad;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    if (!g.armed) fail("reduce_gradients without arm_gradients");
    g.armed = false;
    // What backward did not bring: earlier micro-batches' sums, or zeros.
    for (size_t k = 0; k < g.params.size(); ++k)
      if (!g.ready[k]) {
        g.fill(k, nullptr);
        g.ready[k] = 1;
        --g.buckets[g.bucket_of[k]].pending;
      }
    g.launch_ready();
  }
  // Which parameters some rank reached (MAX over ranks): the others keep no gradient.
  std::vector<int64_t> reached(g.params.size());
  for (size_t k = 0; k < g.params.size(); ++k) reached[k] = int64_t(g.params[k].grad().defined());
  reached = max(std::move(reached));
  for (auto& b : g.buckets) impl_->run("all-reduce of gradients", [&] { b.work->wait(); });
  for (size_t k = 0; k < g.params.size(); ++k) {
    torch::Tensor& p = g.params[k];
    if (reached[k] == 0) continue;  // no rank reached it: its gradient stays undefined
    if (!p.grad().defined()) p.mutable_grad() = torch::empty_like(p);
    p.mutable_grad().copy_(g.slot(k));
  }
#endif
}

double DataParallel::gradient_overlap() const {
#ifdef ILT_HAVE_C10D
  if (impl_ && impl_->sync && !impl_->sync->buckets.empty())
    return double(impl_->sync->in_backward) / double(impl_->sync->buckets.size());
#endif
  return 0;
}

std::vector<int64_t> DataParallel::max(std::vector<int64_t> values) {
#ifdef ILT_HAVE_C10D
  if (!active() || values.empty()) return values;
  std::vector<torch::Tensor> one{torch::tensor(values, torch::kLong)};
  c10d::AllreduceOptions ao;
  ao.reduceOp = c10d::ReduceOp::MAX;
  impl_->run("agreeing with the other ranks", [&] { impl_->gloo->allreduce(one, ao)->wait(); });
  const int64_t* v = one[0].data_ptr<int64_t>();
  return std::vector<int64_t>(v, v + values.size());
#else
  return values;
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
