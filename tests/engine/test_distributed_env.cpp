// Reading a multi-process launch from the environment: torchrun, Slurm, by hand, or none.

#include <map>
#include <string>

#include "engine/distributed_env.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::engine {
namespace {

std::function<std::string(const char*)> environment(std::map<std::string, std::string> variables) {
  return [variables](const char* name) {
    const auto it = variables.find(name);
    return it == variables.end() ? std::string() : it->second;
  };
}

}  // namespace

TEST_CASE("torchrun, Slurm, plain variables or one process", "[distributed]") {
  const auto none = read_distributed_env(environment({}));
  CHECK(none.launcher == "none");
  CHECK_FALSE(none.distributed());

  const auto torchrun = read_distributed_env(environment({{"RANK", "3"},
                                                          {"WORLD_SIZE", "4"},
                                                          {"LOCAL_RANK", "1"},
                                                          {"LOCAL_WORLD_SIZE", "2"},
                                                          {"MASTER_ADDR", "10.0.0.1"},
                                                          {"MASTER_PORT", "29511"},
                                                          {"TORCHELASTIC_RUN_ID", "job"},
                                                          {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                          {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  CHECK(torchrun.launcher == "torchrun");
  CHECK(torchrun.rank == 3);
  CHECK(torchrun.world_size == 4);
  CHECK(torchrun.local_rank == 1);
  CHECK(torchrun.local_world_size == 2);
  CHECK(torchrun.master_addr == "10.0.0.1");
  CHECK(torchrun.master_port == 29511);
  CHECK(torchrun.agent_store);
  CHECK(torchrun.restart_count == 2);

  const auto slurm = read_distributed_env(environment({{"SLURM_PROCID", "5"},
                                                       {"SLURM_NTASKS", "8"},
                                                       {"SLURM_LOCALID", "1"},
                                                       {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                                                       {"SLURM_JOB_NODELIST", "gpu[07-09,12],cpu1"}}));
  CHECK(slurm.launcher == "slurm");
  CHECK(slurm.rank == 5);
  CHECK(slurm.local_world_size == 4);
  CHECK(slurm.master_addr == "gpu07");
  CHECK(slurm.master_port == 29500);
  CHECK(first_slurm_host("cpu1,cpu2") == "cpu1");
  CHECK(first_slurm_host("node") == "node");

  const auto by_hand = read_distributed_env(
      environment({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "40000"}}));
  CHECK(by_hand.launcher == "env");
  CHECK(by_hand.local_world_size == 2);

  CHECK_THROWS_WITH(read_distributed_env(environment({{"RANK", "two"}, {"WORLD_SIZE", "2"}})),
                    Contains("RANK='two' is not a non-negative integer"));
  CHECK_THROWS_WITH(read_distributed_env(environment({{"RANK", "2"}, {"WORLD_SIZE", "2"}})),
                    Contains("rank 2 is outside a world of 2 processes"));
  CHECK_THROWS_WITH(read_distributed_env(environment({{"RANK", "0"}, {"WORLD_SIZE", "2"}})),
                    Contains("needs MASTER_ADDR and MASTER_PORT"));
}

}  // namespace vit::engine
