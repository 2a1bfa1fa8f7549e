// Ranks from the launchers' environments (lib/parallel/env.h).
#include <map>

#include "catch.h"
#include "common/error.h"
#include "parallel/env.h"
#include "parallel/launch.h"

using namespace ilt;

namespace {
DistEnv from(const std::map<std::string, std::string>& vars) {
  return dist_env([&](const char* k) -> const char* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST_CASE("parallel env: nothing set is one process") {
  DistEnv e = from({});
  CHECK(e.world == 1);
  CHECK(e.rank == 0);
  CHECK_FALSE(e.distributed());
  CHECK(e.source == "single");
}

TEST_CASE("parallel env: torchrun's variables, its agent store and restart prefix") {
  DistEnv e = from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                    {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29555"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                    {"TORCHELASTIC_RESTART_COUNT", "2"}});
  CHECK(e.source == "torchrun");
  CHECK(e.rank == 3);
  CHECK(e.world == 8);
  CHECK(e.local_rank == 1);
  CHECK(e.local_world == 2);
  CHECK(e.master_addr == "node7");
  CHECK(e.master_port == 29555);
  CHECK(e.agent_store);
  CHECK(e.store_prefix == "/worker/attempt_2");
  CHECK_FALSE(from({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).agent_store);
}

TEST_CASE("parallel env: bad values name the variable") {
  auto error = [](const std::map<std::string, std::string>& v) { return ILT_ERROR_OF(from(v)); };
  CHECK(error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2") != std::string::npos);
  CHECK(error({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK=x") != std::string::npos);
  CHECK(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000") !=
        std::string::npos);
}

TEST_CASE("parallel env: Slurm inside an srun step, while an sbatch script alone stays one process") {
  std::map<std::string, std::string> v = {{"SLURM_PROCID", "5"},        {"SLURM_NTASKS", "8"},
                                          {"SLURM_LOCALID", "1"},       {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                                          {"SLURM_JOB_NODELIST", "gpu[07-08]"}, {"SLURM_JOB_ID", "123456"}};
  CHECK(from(v).world == 1);  // the batch script itself: no step yet
  v["SLURM_STEP_NUM_TASKS"] = "8";
  v["SLURM_STEP_NODELIST"] = "gpu[07-08]";
  DistEnv e = from(v);
  CHECK(e.source == "slurm");
  CHECK(e.rank == 5);
  CHECK(e.world == 8);
  CHECK(e.local_rank == 1);
  CHECK(e.local_world == 4);
  CHECK(e.master_addr == "gpu07");
  CHECK(e.master_port == 29500 + 123456 % 10000);
  v["MASTER_PORT"] = "31000";
  CHECK(from(v).master_port == 31000);
}

TEST_CASE("parallel env: the first host of Slurm node lists") {
  CHECK(first_slurm_host("node1") == "node1");
  CHECK(first_slurm_host("node1,node2") == "node1");
  CHECK(first_slurm_host("gpu[07-09,12],cpu1") == "gpu07");
  CHECK(first_slurm_host("a[3,5]") == "a3");
  CHECK(ILT_ERROR_OF(first_slurm_host("a[3-5")).find("unclosed") != std::string::npos);
}

TEST_CASE("parallel launch: --nproc-per-node is taken out of the ranks' arguments") {
  std::vector<std::string> a = {"ilt-train", "--nproc-per-node", "2", "--output", "r", "--nproc-per-node=4", "-o", "x"};
  CHECK(without_option(a, "--nproc-per-node") == std::vector<std::string>{"ilt-train", "--output", "r", "-o", "x"});
}
