#include "engine/shared_memory_sum.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

namespace vit::engine {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMagic = 0x76697473756d3031;  // "vitsum01"
constexpr std::size_t kLine = 64;                // one cache line per rank's flags: no false sharing

struct Header {
  uint64_t magic;
  uint32_t world_size;
  uint32_t reserved;
  uint64_t chunk_floats;
};

struct alignas(kLine) RankState {
  std::atomic<uint32_t> arrived;  // barriers this rank has reached
  std::atomic<uint32_t> gone;     // set when it leaves
  std::atomic<int32_t> pid;       // 0 until the rank has opened the segment; published after the two below
  uint64_t start_time;            // /proc/PID/stat's, so that a reused pid is not taken for the rank
  uint64_t pid_namespace;         // /proc/self/ns/pid's inode: pids compare only within one namespace
};
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<int32_t>::is_always_lock_free,
              "the flags must be usable across processes");

std::size_t align_up(std::size_t n) { return (n + kLine - 1) / kLine * kLine; }

std::string errno_text() { return std::strerror(errno); }

// A process's state letter and start time (in clock ticks since boot) from /proc; nothing when it is gone.
struct ProcessStat {
  char state;
  uint64_t start_time;
};
std::optional<ProcessStat> process_stat(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!file || !std::getline(file, text)) return std::nullopt;
  const auto name_end = text.rfind(')');  // the command name may hold spaces and parentheses
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(name_end + 2));
  ProcessStat stat{};
  fields >> stat.state;
  std::string skipped;
  for (int field = 4; field < 22; ++field) fields >> skipped;  // ppid ... itrealvalue
  fields >> stat.start_time;
  if (!fields) return std::nullopt;
  return stat;
}

uint64_t pid_namespace() {
  struct stat info {};
  return ::stat("/proc/self/ns/pid", &info) == 0 ? static_cast<uint64_t>(info.st_ino) : 0;
}

void pause_briefly() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

// Header, then one RankState per rank, then two sets (alternating chunks) of one slot per rank and a result.
struct SharedMemorySum::Layout {
  static std::size_t states_offset() { return align_up(sizeof(Header)); }
  static std::size_t data_offset(int world_size) { return states_offset() + sizeof(RankState) * world_size; }
  static std::size_t bytes(int world_size, std::size_t chunk) {
    return data_offset(world_size) + 2 * (static_cast<std::size_t>(world_size) + 1) * chunk * sizeof(float);
  }
  static Header* header(void* base) { return static_cast<Header*>(base); }
  static RankState* state(void* base, int rank) {
    return reinterpret_cast<RankState*>(static_cast<char*>(base) + states_offset()) + rank;
  }
  // Slot `index` (a rank, or world_size for the result) of the set `parity`.
  static float* slot(void* base, int world_size, std::size_t chunk, uint64_t parity, int index) {
    auto* data = reinterpret_cast<float*>(static_cast<char*>(base) + data_offset(world_size));
    return data + (parity * (static_cast<std::size_t>(world_size) + 1) + static_cast<std::size_t>(index)) * chunk;
  }
};

SharedMemorySum::SharedMemorySum(std::string name, int rank, int world_size, std::size_t chunk_floats, void* base,
                                 std::size_t bytes)
    : name_(std::move(name)),
      rank_(rank),
      world_size_(world_size),
      chunk_floats_(chunk_floats),
      base_(base),
      bytes_(bytes),
      linked_(rank == 0) {
  RankState* me = Layout::state(base_, rank_);
  const auto stat = process_stat(getpid());
  me->start_time = stat ? stat->start_time : 0;
  me->pid_namespace = pid_namespace();
  me->pid.store(static_cast<int32_t>(getpid()), std::memory_order_release);
}

std::size_t SharedMemorySum::default_chunk_floats(int world_size) {
  constexpr std::size_t kBudget = std::size_t{32} << 20;  // bytes of slots and results
  const std::size_t line = kLine / sizeof(float);
  const std::size_t fits = kBudget / (2 * (static_cast<std::size_t>(std::max(world_size, 1)) + 1) * sizeof(float));
  return std::clamp(fits / line * line, line, std::size_t{1} << 20);
}

std::unique_ptr<SharedMemorySum> SharedMemorySum::create(int world_size, std::size_t chunk_floats) {
  if (chunk_floats == 0) chunk_floats = default_chunk_floats(world_size);
  if (world_size < 1 || chunk_floats % (kLine / sizeof(float)) != 0)
    throw std::invalid_argument("shared-memory sum: bad world size or chunk");
  std::random_device random;
  const std::string name = "/vit-sum-" + std::to_string(getpid()) + "-" + std::to_string(random());
  const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create shared memory " + name + ": " + errno_text());
  const std::size_t bytes = Layout::bytes(world_size, chunk_floats);
  // posix_fallocate reserves the pages now: a full /dev/shm fails here rather than with SIGBUS at the first touch.
  const int failed =
      ftruncate(fd, static_cast<off_t>(bytes)) != 0 ? errno : posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  void* base = failed ? MAP_FAILED : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_error = errno;
  close(fd);
  if (failed || base == MAP_FAILED) {
    shm_unlink(name.c_str());
    throw std::runtime_error("cannot reserve " + std::to_string(bytes >> 20) + " MiB of shared memory (" + name +
                             "): " + std::strerror(failed ? failed : map_error));
  }
  new (base) Header{kMagic, static_cast<uint32_t>(world_size), 0, chunk_floats};
  for (int r = 0; r < world_size; ++r) new (Layout::state(base, r)) RankState{};
  return std::unique_ptr<SharedMemorySum>(new SharedMemorySum(name, 0, world_size, chunk_floats, base, bytes));
}

std::unique_ptr<SharedMemorySum> SharedMemorySum::open(const std::string& name, int rank, int world_size) {
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) throw std::runtime_error("cannot open shared memory " + name + ": " + errno_text());
  struct stat info {};
  void* base = MAP_FAILED;
  std::size_t bytes = 0;
  if (fstat(fd, &info) == 0 && info.st_size >= static_cast<off_t>(sizeof(Header))) {
    bytes = static_cast<std::size_t>(info.st_size);
    base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd);
  if (base == MAP_FAILED) throw std::runtime_error("cannot map shared memory " + name);
  const Header* header = Layout::header(base);
  if (header->magic != kMagic || header->world_size != static_cast<uint32_t>(world_size) || rank < 1 ||
      rank >= world_size || bytes != Layout::bytes(world_size, header->chunk_floats)) {
    munmap(base, bytes);
    throw std::runtime_error("shared memory " + name + " is not a sum segment for " + std::to_string(world_size) +
                             " ranks");
  }
  return std::unique_ptr<SharedMemorySum>(
      new SharedMemorySum(name, rank, world_size, header->chunk_floats, base, bytes));
}

SharedMemorySum::~SharedMemorySum() {
  Layout::state(base_, rank_)->gone.store(1, std::memory_order_release);
  munmap(base_, bytes_);
  unlink();
}

void SharedMemorySum::unlink() {
  if (linked_) shm_unlink(name_.c_str());
  linked_ = false;
}

bool SharedMemorySum::peers_visible() const { return lost_peers().empty(); }

// The other ranks that have left, or whose process is gone (dead, a zombie, or its pid now another process's), or
// cannot be seen from here (another PID namespace).
std::vector<int> SharedMemorySum::lost_peers() const {
  std::vector<int> lost;
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    const RankState* peer = Layout::state(base_, r);
    if (peer->gone.load(std::memory_order_acquire)) {
      lost.push_back(r);
      continue;
    }
    const int32_t pid = peer->pid.load(std::memory_order_acquire);
    if (pid == 0) continue;  // not attached yet: only the timeout can tell
    if (peer->pid_namespace != Layout::state(base_, rank_)->pid_namespace) {  // ours, read once when attached
      lost.push_back(r);
      continue;
    }
    if (pid == getpid()) continue;  // ranks as threads of one process (the tests)
    const auto stat = process_stat(pid);
    if (!stat || stat->state == 'Z' || stat->state == 'X' || stat->start_time != peer->start_time) lost.push_back(r);
  }
  return lost;
}

// A barrier: this rank's count goes up, then it waits until every rank's has. It spins for the first ~50 us
// (the others usually arrive within them), then polls every 50 us so as not to take a core from the work left.
void SharedMemorySum::wait_for_all(std::chrono::milliseconds timeout) {
  ++generation_;
  Layout::state(base_, rank_)->arrived.store(generation_, std::memory_order_release);
  const auto start = Clock::now();
  auto next_check = start + std::chrono::milliseconds(100);
  for (int r = 0; r < world_size_; ++r) {
    const RankState* peer = Layout::state(base_, r);
    for (uint64_t tries = 0;; ++tries) {
      // Counts compared by their difference: correct across the wrap of 2^32 barriers.
      if (static_cast<int32_t>(peer->arrived.load(std::memory_order_acquire) - generation_) >= 0) break;
      if (tries < 2000) {
        pause_briefly();
        continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      const auto now = Clock::now();
      if (now < next_check) continue;
      next_check = now + std::chrono::milliseconds(100);
      // Only a rank still missing from this barrier counts: one that arrived may have gone on and ended since.
      std::vector<int> lost;
      for (const int peer : lost_peers())
        if (static_cast<int32_t>(Layout::state(base_, peer)->arrived.load(std::memory_order_acquire) - generation_) < 0)
          lost.push_back(peer);
      if (!lost.empty())
        throw SharedMemoryPeerLost(
            "rank " + std::to_string(lost.front()) + "'s process is gone (seen from the sums' shared memory)", lost);
      if (now - start >= timeout)
        throw SharedMemoryPeerLost("no answer from rank " + std::to_string(r) + " within " +
                                       std::to_string(std::chrono::duration<double>(timeout).count()) + " s",
                                   {r});
    }
  }
}

void SharedMemorySum::sum(float* data, std::size_t count, std::chrono::milliseconds timeout) {
  for (std::size_t offset = 0; offset < count; offset += chunk_floats_, ++chunks_) {
    const std::size_t n = std::min(chunk_floats_, count - offset);
    const uint64_t parity = chunks_ & 1;
    std::memcpy(Layout::slot(base_, world_size_, chunk_floats_, parity, rank_), data + offset, n * sizeof(float));
    wait_for_all(timeout);
    // This rank's share, in whole cache lines.
    const std::size_t line = kLine / sizeof(float);
    const std::size_t share = (n + static_cast<std::size_t>(world_size_) * line - 1) / (world_size_ * line) * line;
    const std::size_t begin = std::min(n, share * static_cast<std::size_t>(rank_));
    const std::size_t end = std::min(n, begin + share);
    float* result = Layout::slot(base_, world_size_, chunk_floats_, parity, world_size_);
    const float* first = Layout::slot(base_, world_size_, chunk_floats_, parity, 0);
    std::copy(first + begin, first + end, result + begin);
    for (int r = 1; r < world_size_; ++r) {
      const float* slot = Layout::slot(base_, world_size_, chunk_floats_, parity, r);
      for (std::size_t i = begin; i < end; ++i) result[i] += slot[i];
    }
    wait_for_all(timeout);
    std::memcpy(data + offset, result, n * sizeof(float));
  }
}

}  // namespace vit::engine
