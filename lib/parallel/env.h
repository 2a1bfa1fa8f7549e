// Where this process sits in a data-parallel job, from the launcher's environment (no LibTorch
// here: the launcher and the tests use it too).
//
//   torchrun   RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
//              TORCHELASTIC_USE_AGENT_STORE: torchrun's agent hosts the store (every rank a
//              client), keys under /worker/attempt_<TORCHELASTIC_RESTART_COUNT>
//   Slurm      (srun, one task per device) SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//              SLURM_NTASKS_PER_NODE; the store on the first host of SLURM_STEP_NODELIST (or
//              SLURM_JOB_NODELIST), port MASTER_PORT or 29500 + SLURM_JOB_ID % 10000
//   ilt-train --nproc-per-node N sets torchrun's variables for its children.
#pragma once
#include <functional>
#include <string>

namespace ilt {

struct DistEnv {
  int rank = 0, world = 1;              // global
  int local_rank = 0, local_world = 1;  // on this node (the device index on GPU nodes)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;   // torchrun's agent serves the store: rank 0 connects as a client
  std::string store_prefix;   // key prefix (a restarted torchrun attempt must not see old keys)
  std::string source = "single";  // "torchrun", "slurm" or "single"
  bool distributed() const { return world > 1; }
};

// Reads the environment through `get` (getenv, or a map in tests). Slurm's variables count only
// inside an srun step (SLURM_STEP_NUM_TASKS set), so a single ilt-train in an sbatch script
// stays a single process. Throws ilt::Error naming the variable on a bad value.
DistEnv dist_env(const std::function<const char*(const char*)>& get);
DistEnv dist_env();  // from the process's environment

// The first host of a Slurm node list: "gpu[07-09,12],cpu1" -> "gpu07".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace ilt
