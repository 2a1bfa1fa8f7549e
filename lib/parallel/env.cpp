#include "parallel/env.h"

#include <cstdlib>

#include "common/error.h"

namespace ilt {

namespace {
int int_var(const std::function<const char*(const char*)>& get, const char* name, int fallback, int lo, int hi) {
  const char* v = get(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) fail("environment variable {}={}: not an integer in [{}, {}]", name, v, lo, hi);
  return int(x);
}
std::string str_var(const std::function<const char*(const char*)>& get, const char* name, const std::string& fallback) {
  const char* v = get(name);
  return v && *v ? std::string(v) : fallback;
}
}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Up to the first comma outside brackets; a bracket range gives its first member.
  size_t i = 0;
  std::string prefix;
  while (i < nodelist.size() && nodelist[i] != ',' && nodelist[i] != '[') prefix += nodelist[i++];
  if (i >= nodelist.size() || nodelist[i] == ',') return prefix;
  size_t close = nodelist.find(']', i);
  if (close == std::string::npos) fail("Slurm node list {}: unclosed '['", nodelist);
  std::string inside = nodelist.substr(i + 1, close - i - 1);
  std::string first = inside.substr(0, inside.find_first_of(",-"));
  if (first.empty()) fail("Slurm node list {}: empty range", nodelist);
  return prefix + first;
}

DistEnv dist_env(const std::function<const char*(const char*)>& get) {
  DistEnv e;
  constexpr int kMax = 1 << 20;
  if (get("RANK") && *get("RANK")) {
    e.source = "torchrun";
    e.world = int_var(get, "WORLD_SIZE", 1, 1, kMax);
    e.rank = int_var(get, "RANK", 0, 0, e.world - 1);
    e.local_rank = int_var(get, "LOCAL_RANK", e.rank, 0, kMax);
    e.local_world = int_var(get, "LOCAL_WORLD_SIZE", e.world, 1, kMax);
    e.master_addr = str_var(get, "MASTER_ADDR", e.master_addr);
    e.master_port = int_var(get, "MASTER_PORT", e.master_port, 1, 65535);
    std::string agent = str_var(get, "TORCHELASTIC_USE_AGENT_STORE", "");
    e.agent_store = agent == "True" || agent == "true" || agent == "1";
    if (get("TORCHELASTIC_RESTART_COUNT"))
      e.store_prefix = "/worker/attempt_" + str_var(get, "TORCHELASTIC_RESTART_COUNT", "0");
    return e;
  }
  if (get("SLURM_STEP_NUM_TASKS") && get("SLURM_PROCID")) {
    e.source = "slurm";
    e.world = int_var(get, "SLURM_STEP_NUM_TASKS", 1, 1, kMax);
    e.rank = int_var(get, "SLURM_PROCID", 0, 0, e.world - 1);
    e.local_rank = int_var(get, "SLURM_LOCALID", 0, 0, kMax);
    // "4" or "4(x2)" or "4,2": this node's count is the first figure on uniform allocations.
    e.local_world = std::max(1, std::atoi(str_var(get, "SLURM_NTASKS_PER_NODE", "1").c_str()));
    std::string nodes = str_var(get, "SLURM_STEP_NODELIST", str_var(get, "SLURM_JOB_NODELIST", ""));
    e.master_addr = str_var(get, "MASTER_ADDR", nodes.empty() ? e.master_addr : first_slurm_host(nodes));
    e.master_port = int_var(get, "MASTER_PORT", 29500 + int_var(get, "SLURM_JOB_ID", 0, 0, 1 << 30) % 10000, 1, 65535);
    e.store_prefix = "/slurm/" + str_var(get, "SLURM_JOB_ID", "0") + "." + str_var(get, "SLURM_STEP_ID", "0") + "/" +
                     str_var(get, "SLURM_RESTART_COUNT", "0");
    return e;
  }
  return e;
}

DistEnv dist_env() {
  return dist_env([](const char* k) -> const char* { return std::getenv(k); });
}

}  // namespace ilt
