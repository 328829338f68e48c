#pragma once
// Where this process stands in a multi-process run, from the launcher's environment: torchrun's (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
// TORCHELASTIC_RESTART_COUNT), else Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE,
// the first host of SLURM_JOB_NODELIST for the store, MASTER_PORT or 29500), else one process.

#include <functional>
#include <string>

namespace vit::engine {

struct DistributedEnv {
  std::string launcher = "none";  // "torchrun", "slurm", "env" (RANK/WORLD_SIZE by hand) or "none"
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // where the TCPStore listens (rank 0's host)
  int master_port = 0;
  // torchrun's agent already hosts the store: every rank is a client, under the restart count's prefix.
  bool agent_store = false;
  int restart_count = 0;

  bool distributed() const { return world_size > 1; }
};

// Reads the variables above through `get` (std::getenv by default; empty means unset). Throws
// std::invalid_argument naming the variable for a value that is not a number, a rank outside the world, or a
// multi-process run without MASTER_ADDR / MASTER_PORT.
DistributedEnv read_distributed_env(const std::function<std::string(const char*)>& get = {});

// The first host of a Slurm node list: "gpu[07-09,12],cpu1" -> "gpu07".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace vit::engine
