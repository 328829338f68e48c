#include "engine/collectives.h"

#include <ATen/ops/full.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "engine/shared_memory_sum.h"

#ifdef VIT_HAVE_C10D
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VIT_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace vit::engine {

bool all_ranks_ok(Collectives& group, bool ok) {
  at::Tensor failed = at::full({1}, ok ? 0.0f : 1.0f);
  group.all_reduce_max(failed);
  return failed.item<float>() == 0.0f;
}

std::vector<std::string> distributed_backends() {
#ifdef VIT_HAVE_C10D
#ifdef VIT_HAVE_NCCL
  return {"gloo", "nccl"};
#else
  return {"gloo"};
#endif
#else
  return {};
#endif
}

bool distributed_available() { return !distributed_backends().empty(); }

#ifndef VIT_HAVE_C10D

namespace {
[[noreturn]] void no_c10d() {
  throw std::invalid_argument(
      "this build of vit cannot run on several processes: its LibTorch was found without c10d's Gloo headers "
      "(on Debian, install libgloo-dev and rebuild)");
}
}  // namespace

std::unique_ptr<Collectives> Collectives::connect(const DistributedEnv&, const CollectivesOptions&) { no_c10d(); }
std::unique_ptr<Collectives> Collectives::connect_file(const std::filesystem::path&, int, int,
                                                       const CollectivesOptions&) {
  no_c10d();
}

#else

namespace {

using namespace std::chrono_literals;

// ProcessGroupGloo and ProcessGroupNCCL share their collectives' signatures but, across LibTorch versions, not
// their base class (ProcessGroup in 1.x, Backend in 2.x): one small interface over either.
class Group {
 public:
  virtual ~Group() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(at::Tensor& tensor, c10d::ReduceOp op) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(at::Tensor& tensor) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
};

template <typename ProcessGroup>
class GroupOf final : public Group {
 public:
  explicit GroupOf(c10::intrusive_ptr<ProcessGroup> group) : group_(std::move(group)) {}
  c10::intrusive_ptr<c10d::Work> allreduce(at::Tensor& tensor, c10d::ReduceOp op) override {
    std::vector<at::Tensor> one{tensor};  // c10d's list is one tensor per device, not a batch of tensors
    c10d::AllreduceOptions options;
    options.reduceOp = op;
    return group_->allreduce(one, options);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(at::Tensor& tensor) override {
    std::vector<at::Tensor> one{tensor};
    return group_->broadcast(one);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return group_->barrier(); }

 private:
  c10::intrusive_ptr<ProcessGroup> group_;
};

class C10dCollectives final : public Collectives {
 public:
  // `loopback`: every rank is on this machine and meets on 127.0.0.1.
  C10dCollectives(c10::intrusive_ptr<c10d::Store> store, std::string store_where, int rank, int world_size,
                  int local_rank, bool loopback, const CollectivesOptions& options)
      : store_(std::move(store)), store_where_(std::move(store_where)), rank_(rank), world_size_(world_size),
        timeout_(options.timeout),
        device_(options.cuda ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank)) : c10::kCPU) {
    backend_ = choose_backend(options);
    // The group's keys under their own prefix, as init_process_group keeps them apart from the roll call's.
    auto group_store = c10::make_intrusive<c10d::PrefixStore>("default_pg", store_);
    try {
      if (backend_ == "gloo") {
        auto gloo = c10d::ProcessGroupGloo::Options::create(timeout_);
        gloo->devices = gloo_devices(loopback);
        group_ = std::make_unique<GroupOf<c10d::ProcessGroupGloo>>(
            c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, rank_, world_size_, gloo));
      } else {
#ifdef VIT_HAVE_NCCL
        auto nccl = c10d::ProcessGroupNCCL::Options::create();
        nccl->timeout = timeout_;
        group_ = std::make_unique<GroupOf<c10d::ProcessGroupNCCL>>(
            c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, rank_, world_size_, nccl));
#endif
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("rank " + std::to_string(rank_) + " could not join the " + backend_ +
                               " process group of " + std::to_string(world_size_) + " through " + store_where_ +
                               ": " + first_line(e.what()));
    }
    if (backend_ == "gloo" && world_size_ > 1) share_memory(loopback);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string backend() const override { return backend_; }
  bool sums_in_shared_memory() const override { return shared_ != nullptr; }

  void broadcast(std::vector<at::Tensor>& tensors) override {
    run(tensors, "a broadcast from rank 0", [&](at::Tensor& t) { return group_->broadcast(t); });
  }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    std::vector<at::Tensor> others;
    for (auto& tensor : tensors) {
      if (!shared_ || tensor.scalar_type() != at::kFloat || !tensor.device().is_cpu() || !tensor.is_contiguous()) {
        others.push_back(tensor);
        continue;
      }
      try {
        shared_->sum(tensor.data_ptr<float>(), static_cast<std::size_t>(tensor.numel()), timeout_);
      } catch (const SharedMemoryPeerLost& e) {
        throw lost_peer("an all-reduce", e.what());
      }
    }
    if (others.empty()) return;
    run(others, "an all-reduce", [&](at::Tensor& t) { return group_->allreduce(t, c10d::ReduceOp::SUM); });
  }

  void all_reduce_max(at::Tensor& tensor) override {
    std::vector<at::Tensor> one{tensor};
    run(one, "an all-reduce", [&](at::Tensor& t) { return group_->allreduce(t, c10d::ReduceOp::MAX); });
  }

  void barrier() override { wait({group_->barrier()}, "a barrier"); }

 private:
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  std::string choose_backend(const CollectivesOptions& options) const {
    const auto backends = distributed_backends();
    const bool has_nccl = std::find(backends.begin(), backends.end(), "nccl") != backends.end();
    if (options.backend == "auto") return options.cuda && has_nccl ? "nccl" : "gloo";
    if (options.backend == "gloo") return "gloo";
    if (options.backend != "nccl")
      throw std::invalid_argument("--dist-backend must be auto, gloo or nccl, got '" + options.backend + "'");
    if (!options.cuda) throw std::invalid_argument("--dist-backend nccl needs --device cuda (NCCL joins GPUs)");
    if (!has_nccl)
      throw std::invalid_argument("--dist-backend nccl: this build of vit has no NCCL (a CUDA LibTorch with NCCL's "
                                  "headers is needed); use --dist-backend gloo");
    return "nccl";
  }

  // GLOO_SOCKET_IFNAME's interfaces (comma-separated); else, for ranks that all meet on 127.0.0.1, the loopback
  // interface; else the one the host name resolves to, as PyTorch does (which on a machine whose name does not
  // resolve falls back to loopback with a warning).
  static std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(bool loopback) {
    std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
    const char* names = std::getenv("GLOO_SOCKET_IFNAME");
    std::stringstream list(names ? names : "");
    for (std::string name; std::getline(list, name, ',');)
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    if (devices.empty() && loopback) devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    if (devices.empty()) devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    return devices;
  }

  // With every rank on this machine, float32 sums (the gradients) go through shared memory rather than Gloo's
  // sockets (shared_memory_sum.h). Rank 0 alone decides (`loopback`, and VIT_SHARED_MEMORY=0 in its environment
  // keeps Gloo, to compare the two), makes the segment and passes its name through the store, empty for none;
  // then every rank takes part in agreeing through Gloo that all of them have it and can see each other's
  // processes, or all keep Gloo.
  void share_memory(bool loopback) {
    const std::string key = "vit/shared_memory_sum";
    std::unique_ptr<SharedMemorySum> shared;
    try {
      if (rank_ == 0) {
        const char* setting = std::getenv("VIT_SHARED_MEMORY");
        if (loopback && !(setting && std::strcmp(setting, "0") == 0)) {
          try {
            shared = SharedMemorySum::create(world_size_);
          } catch (const std::exception&) {
            // No segment: the empty name below tells the others, so that none waits for one.
          }
        }
        const std::string name = shared ? shared->name() : std::string();
        store_->set(key, std::vector<uint8_t>(name.begin(), name.end()));
      } else {
        const auto name = store_->get(key);
        if (!name.empty()) shared = SharedMemorySum::open(std::string(name.begin(), name.end()), rank_, world_size_);
      }
    } catch (const std::exception&) {
      shared.reset();  // Gloo carries the sums instead; the run is not worse off than without this path
    }
    const bool everyone_attached = all_ranks_ok(*this, shared != nullptr);
    if (shared && rank_ == 0) shared->unlink();  // every rank that could open it has: no name is left behind
    if (everyone_attached && all_ranks_ok(*this, shared->peers_visible())) shared_ = std::move(shared);
  }

  // Starts `op` on every tensor, then waits for all. c10d wants contiguous tensors, and NCCL wants them on this
  // process's GPU: others are staged through a copy and written back.
  template <typename Op>
  void run(std::vector<at::Tensor>& tensors, const std::string& what, Op op) {
    std::vector<at::Tensor> staged;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& tensor : tensors) {
      const bool move = backend_ == "nccl" && tensor.device() != device_;
      staged.push_back(move ? tensor.to(device_).contiguous() : tensor.contiguous());
      works.push_back(op(staged.back()));
    }
    wait(works, what);
    for (size_t i = 0; i < tensors.size(); ++i)
      if (!staged[i].is_same(tensors[i])) tensors[i].copy_(staged[i]);
  }

  void wait(const std::vector<c10::intrusive_ptr<c10d::Work>>& works, const std::string& what) {
    try {
      for (const auto& work : works) work->wait();
    } catch (const std::exception& e) {
      throw lost_peer(what, first_line(e.what()));
    }
  }

  // After a failed collective every surviving rank reports to the store; whoever has not within a few seconds
  // is named. A store that no longer answers means the process hosting it is gone.
  LostPeerError lost_peer(const std::string& what, const std::string& cause) {
    const auto key = [](int rank) { return "vit/roll_call/" + std::to_string(rank); };
    std::vector<int> silent;
    try {
      store_->set(key(rank_), std::vector<uint8_t>{1});
      const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout_, 5s);
      do {
        silent.clear();
        for (int r = 0; r < world_size_; ++r)
          if (r != rank_ && !store_->check({key(r)})) silent.push_back(r);
        if (silent.empty()) break;
        std::this_thread::sleep_for(100ms);
      } while (std::chrono::steady_clock::now() < deadline);
    } catch (const std::exception&) {
      return LostPeerError("lost " + store_where_ + " after " + what + " failed (" + cause +
                               "): the process hosting the store is gone",
                           {0});
    }
    if (silent.empty())
      return LostPeerError(what + " failed on rank " + std::to_string(rank_) + ": " + cause, {});
    std::string names;
    for (const int r : silent) names += (names.empty() ? "" : ", ") + std::to_string(r);
    return LostPeerError("lost rank" + std::string(silent.size() > 1 ? "s " : " ") + names +
                             " of " + std::to_string(world_size_) + " (killed, crashed or stuck: see " +
                             (silent.size() > 1 ? "their logs" : "its log") + ") during " + what + ": " + cause,
                         silent);
  }

  c10::intrusive_ptr<c10d::Store> store_;
  std::string store_where_;
  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  c10::Device device_;  // where NCCL's tensors live
  std::string backend_;
  std::unique_ptr<Group> group_;
  std::unique_ptr<SharedMemorySum> shared_;  // float32 sums, when every rank is on this machine
};

}  // namespace

namespace {

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "localhost" || address == "::1";
}

}  // namespace

std::unique_ptr<Collectives> Collectives::connect(const DistributedEnv& env, const CollectivesOptions& options) {
  const std::string where = "the store at " + env.master_addr + ":" + std::to_string(env.master_port) +
                            (env.agent_store ? " (torchrun's agent)" : " (hosted by rank 0)");
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(env.master_port);
  store_options.timeout = options.timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    if (env.agent_store) {
      // The launcher hosts the store; a restarted worker group starts afresh under its attempt's prefix.
      store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + std::to_string(env.restart_count),
          c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options));
    } else {
      store_options.isServer = env.rank == 0;
      store_options.numWorkers = static_cast<size_t>(env.world_size);
      store_options.multiTenant = true;
      store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(env.rank) + " could not reach " + where + ": " +
                             e.what() + (env.rank == 0 && !env.agent_store ? " (is MASTER_PORT free?)" : ""));
  }
  return std::make_unique<C10dCollectives>(store, where, env.rank, env.world_size, env.local_rank,
                                           is_loopback(env.master_addr), options);
}

std::unique_ptr<Collectives> Collectives::connect_file(const std::filesystem::path& path, int rank, int world_size,
                                                       const CollectivesOptions& options) {
  auto store = c10::make_intrusive<c10d::FileStore>(path.string(), world_size);
  store->setTimeout(options.timeout);
  return std::make_unique<C10dCollectives>(store, "the file store '" + path.string() + "'", rank, world_size,
                                           rank, /*loopback=*/true, options);
}

#endif  // VIT_HAVE_C10D

}  // namespace vit::engine
