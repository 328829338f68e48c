#pragma once
// Sums float32 arrays over the processes of one machine through a shared-memory segment: the all-reduce of a
// data-parallel step's gradients without c10d's Gloo, whose TCP transport copies every byte through the kernel's
// loopback sockets (the main job's 0.81 M gradients: 4.2 ms a step through Gloo, 1.5 ms here; see README,
// "Several processes"). Collectives uses it for float32 sums when every rank is on this machine.
//
// Each rank copies its array into its own slot, the ranks meet at a barrier, each adds up its share of the
// elements over all slots (in rank order, so that every rank gets the same bits) into a result area, they meet
// again, and each copies the whole result back. Longer arrays go through in chunks of a slot's size; two sets of
// slots alternate, so that passing a chunk's barriers also means every rank has read the chunk before.
//
// A waiting rank checks every 100 ms that the ranks it waits for are still there (the segment records each one's
// pid, start time and PID namespace, and a rank marks its slot when it leaves) and gives up after the timeout:
// SharedMemoryPeerLost names the ranks it waited for. No LibTorch here: the tests drive it from forked processes.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit::engine {

class SharedMemoryPeerLost : public std::runtime_error {
 public:
  SharedMemoryPeerLost(const std::string& message, std::vector<int> ranks)
      : std::runtime_error(message), ranks_(std::move(ranks)) {}
  const std::vector<int>& ranks() const { return ranks_; }

 private:
  std::vector<int> ranks_;
};

class SharedMemorySum {
 public:
  // Elements per slot for `world_size` ranks: 1 M floats (the main job's 0.81 M gradients in one go) while the
  // segment stays within 32 MiB, fewer beyond, so that it fits Docker's default 64 MiB /dev/shm.
  static std::size_t default_chunk_floats(int world_size);

  // Rank 0 creates a segment under a fresh name (name()); every other rank opens it by that name. Both throw
  // std::runtime_error saying why when the segment cannot be made, mapped or does not match. `chunk_floats`, a
  // multiple of 16 (0: the default), is the most elements summed in one go.
  static std::unique_ptr<SharedMemorySum> create(int world_size, std::size_t chunk_floats = 0);
  static std::unique_ptr<SharedMemorySum> open(const std::string& name, int rank, int world_size);
  // Marks this rank as gone, so that a peer waiting for it stops at once; rank 0 also removes the name if unlink()
  // was not reached (a peer that never opened the segment).
  ~SharedMemorySum();

  SharedMemorySum(const SharedMemorySum&) = delete;
  SharedMemorySum& operator=(const SharedMemorySum&) = delete;

  const std::string& name() const { return name_; }
  int rank() const { return rank_; }
  // Removes the name from /dev/shm; the mappings stay. Called once every rank has opened the segment, so that
  // nothing is left behind however the processes end.
  void unlink();
  // Whether every other rank's recorded process is alive as this process sees it (not so across PID namespaces,
  // where a peer's liveness cannot be checked).
  bool peers_visible() const;
  // data[0, count) summed element-wise over the ranks, in place. Every rank calls it with the same count.
  void sum(float* data, std::size_t count, std::chrono::milliseconds timeout);

 private:
  struct Layout;
  SharedMemorySum(std::string name, int rank, int world_size, std::size_t chunk_floats, void* base, std::size_t bytes);
  void wait_for_all(std::chrono::milliseconds timeout);
  std::vector<int> lost_peers() const;

  std::string name_;
  int rank_;
  int world_size_;
  std::size_t chunk_floats_;
  void* base_;
  std::size_t bytes_;
  bool linked_;              // rank 0 until unlink()
  uint32_t generation_ = 0;  // barriers passed
  uint64_t chunks_ = 0;      // chunks summed: which set of slots is next
};

}  // namespace vit::engine
