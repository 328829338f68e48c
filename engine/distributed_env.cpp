#include "engine/distributed_env.h"

#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "util/text.h"

namespace vit::engine {
namespace {

int number(const std::function<std::string(const char*)>& get, const char* name, int fallback) {
  const std::string text = get(name);
  if (text.empty()) return fallback;
  const auto value = parse_integer(text);
  if (!value || *value < 0 || *value > std::numeric_limits<int>::max())
    throw std::invalid_argument("environment variable " + std::string(name) + "='" + text +
                                "' is not a non-negative integer");
  return static_cast<int>(*value);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  const auto bracket = nodelist.find('[');
  const auto comma = nodelist.find(',');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket))
    return nodelist.substr(0, comma);  // "cpu1,cpu2" -> "cpu1"
  // "gpu[07-09,12]": the prefix and the first number of the range, its zero padding kept.
  const auto end = nodelist.find_first_of("-,]", bracket + 1);
  return nodelist.substr(0, bracket) + nodelist.substr(bracket + 1, end - bracket - 1);
}

DistributedEnv read_distributed_env(const std::function<std::string(const char*)>& get_or_null) {
  const std::function<std::string(const char*)> get = get_or_null ? get_or_null : [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "");
  };
  DistributedEnv e;
  if (!get("RANK").empty() || !get("WORLD_SIZE").empty()) {
    e.launcher = get("TORCHELASTIC_RUN_ID").empty() ? "env" : "torchrun";
    e.rank = number(get, "RANK", 0);
    e.world_size = number(get, "WORLD_SIZE", 1);
    e.local_rank = number(get, "LOCAL_RANK", e.rank);
    e.local_world_size = number(get, "LOCAL_WORLD_SIZE", e.world_size);
    e.master_addr = get("MASTER_ADDR");
    e.master_port = number(get, "MASTER_PORT", 0);
    e.agent_store = get("TORCHELASTIC_USE_AGENT_STORE") == "True" || get("TORCHELASTIC_USE_AGENT_STORE") == "1";
    e.restart_count = number(get, "TORCHELASTIC_RESTART_COUNT", 0);
  } else if (!get("SLURM_PROCID").empty() && !get("SLURM_NTASKS").empty()) {
    e.launcher = "slurm";
    e.rank = number(get, "SLURM_PROCID", 0);
    e.world_size = number(get, "SLURM_NTASKS", 1);
    e.local_rank = number(get, "SLURM_LOCALID", 0);
    // SLURM_NTASKS_PER_NODE reads "4", or "4(x2)" / "4,2" across nodes: this node's is the first.
    const std::string per_node = get("SLURM_NTASKS_PER_NODE");
    const auto per_node_first = per_node.substr(0, per_node.find_first_of("(,"));
    e.local_world_size = number([&](const char*) { return per_node_first; }, "SLURM_NTASKS_PER_NODE", e.world_size);
    e.master_addr = get("MASTER_ADDR").empty() ? first_slurm_host(get("SLURM_JOB_NODELIST")) : get("MASTER_ADDR");
    e.master_port = number(get, "MASTER_PORT", 29500);  // PyTorch's default port
  } else {
    return e;
  }
  if (e.world_size < 1 || e.rank >= e.world_size)
    throw std::invalid_argument("rank " + std::to_string(e.rank) + " is outside a world of " +
                                std::to_string(e.world_size) + " processes (" + e.launcher + " environment)");
  if (e.local_rank >= e.local_world_size)
    throw std::invalid_argument("local rank " + std::to_string(e.local_rank) + " is outside " +
                                std::to_string(e.local_world_size) + " local processes (" + e.launcher +
                                " environment)");
  if (e.distributed() && (e.master_addr.empty() || e.master_port == 0))
    throw std::invalid_argument("a run of " + std::to_string(e.world_size) +
                                " processes needs MASTER_ADDR and MASTER_PORT (where rank 0's store listens)");
  return e;
}

}  // namespace vit::engine
