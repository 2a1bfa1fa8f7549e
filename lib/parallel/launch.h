// ilt-train --nproc-per-node N: N ranks on this machine without torchrun (no Python needed).
#pragma once
#include <string>
#include <vector>

namespace ilt {

// Runs `args` (args[0]: the program) as `nproc` processes with torchrun's variables (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT: a free port)
// and waits for them. SIGINT/SIGTERM to the launcher go to every rank (they save and stop
// together). When a rank fails, the others are sent SIGTERM, then SIGKILL after
// `grace_seconds`; the launcher prints one line naming the rank and returns its status
// (0 when every rank succeeded).
int launch_local(int nproc, const std::vector<std::string>& args, double grace_seconds = 30);

// args without "--nproc-per-node N" / "--nproc-per-node=N".
std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name);

}  // namespace ilt
