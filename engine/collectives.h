#pragma once
// The processes of a data-parallel run, joined through PyTorch's c10d: a store for the rendezvous (TCPStore, as
// torchrun and init_process_group set it up) and a process group for the collectives (Gloo on CPU, NCCL on CUDA
// where this LibTorch has it). c10d's headers stay in collectives.cpp; the trainer sees only this interface.
//
// A collective that fails (a peer was killed, crashed or stopped answering within the timeout) throws
// LostPeerError naming the ranks that did not answer a roll call through the store, instead of c10d's message
// about a socket.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "engine/distributed_env.h"

namespace vit::engine {

struct CollectivesOptions {
  std::string backend = "auto";  // "gloo", "nccl", or "auto": NCCL for CUDA tensors where built, else Gloo
  bool cuda = false;              // the tensors live on this process's GPU (cuda:LOCAL_RANK)
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // rendezvous and every collective
};

class LostPeerError : public std::runtime_error {
 public:
  LostPeerError(const std::string& message, std::vector<int> lost) : std::runtime_error(message), lost_(lost) {}
  const std::vector<int>& lost_ranks() const { return lost_; }

 private:
  std::vector<int> lost_;
};

// True when this build can join processes (Debian's LibTorch has c10d with Gloo).
bool distributed_available();
// The backends this build has: "gloo", and "nccl" in a CUDA build with NCCL.
std::vector<std::string> distributed_backends();

class Collectives {
 public:
  virtual ~Collectives() = default;

  // Joins the run `env` describes: the store at MASTER_ADDR:MASTER_PORT, hosted by rank 0 or, under torchrun's
  // agent store, by the launcher (every rank a client, keys under the restart count's prefix as PyTorch's own
  // rendezvous does). Gloo binds to GLOO_SOCKET_IFNAME's interfaces when set. Throws std::invalid_argument for
  // an unknown or missing backend, std::runtime_error when the rendezvous times out.
  static std::unique_ptr<Collectives> connect(const DistributedEnv& env, const CollectivesOptions& options);
  // The same through a FileStore at `path` (init_method="file://..."): for processes or threads of one machine.
  static std::unique_ptr<Collectives> connect_file(const std::filesystem::path& path, int rank, int world_size,
                                                   const CollectivesOptions& options);

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;
  // Whether float32 sums travel through shared memory rather than the backend (every rank on this machine).
  virtual bool sums_in_shared_memory() const { return false; }

  // Rank 0's values into every rank's tensors, in place.
  virtual void broadcast(std::vector<at::Tensor>& tensors) = 0;
  // Element-wise sums over the ranks, in place: all started before any is waited on.
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // Element-wise maxima over the ranks, in place.
  virtual void all_reduce_max(at::Tensor& tensor) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;
};

// Every rank's `ok`, and-ed: lets the others stop with a clear message when one rank failed to prepare, instead
// of waiting for it in the next collective until the timeout.
bool all_ranks_ok(Collectives& group, bool ok);

}  // namespace vit::engine
