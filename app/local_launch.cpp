#include "app/local_launch.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "app/stop_signal.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace vit::app {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPoll = std::chrono::milliseconds(50);

// The variables a launcher sets for each rank; any already in the environment are replaced, and torchrun's agent
// variables (TORCHELASTIC_*) dropped: the ranks are this launcher's, not an agent's.
constexpr const char* kRankVariables[] = {"RANK",        "WORLD_SIZE",  "LOCAL_RANK",      "LOCAL_WORLD_SIZE",
                                          "MASTER_ADDR", "MASTER_PORT", "VIT_LAUNCHER_PID"};
constexpr const char kAgentPrefix[] = "TORCHELASTIC_";

std::string system_error(const std::string& what, int error) { return what + ": " + std::strerror(error); }

// A port nothing listens on now: bound with port 0 (the kernel picks one), read back, released. Rank 0's store binds
// it a moment later, as torchrun's standalone rendezvous does with its own.
int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(system_error("--processes: cannot open a socket", errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  if (!bound) throw std::runtime_error(system_error("--processes: cannot find a free port on 127.0.0.1", error));
  return ntohs(address.sin_port);
}

bool is_launcher_variable(const std::string& entry) {
  if (entry.compare(0, sizeof(kAgentPrefix) - 1, kAgentPrefix) == 0) return true;
  for (const char* name : kRankVariables) {
    const std::string prefix = std::string(name) + "=";
    if (entry.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

std::vector<std::string> rank_environment(int rank, int processes, int port) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!is_launcher_variable(*entry)) environment.emplace_back(*entry);
  }
  const std::string values[] = {
      std::to_string(rank), std::to_string(processes), std::to_string(rank),      std::to_string(processes),
      "127.0.0.1",          std::to_string(port),      std::to_string(::getpid())};
  for (std::size_t i = 0; i < std::size(kRankVariables); ++i)
    environment.push_back(std::string(kRankVariables[i]) + "=" + values[i]);
  return environment;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// This executable again (/proc/self/exe: the same file even if its path was replaced since), with SIGINT and
// SIGTERM unblocked and at their defaults, as a process started from a shell has them: vit blocks them in every
// thread (stop_signal.h), and a spawned process would inherit that.
pid_t spawn_self(std::vector<std::string> arguments, std::vector<std::string> environment) {
  const std::vector<char*> argv = c_strings(arguments);
  const std::vector<char*> envp = c_strings(environment);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, &attributes, argv.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  if (error != 0) throw std::runtime_error(system_error("--processes: cannot start vit again", error));
  return pid;
}

// The shell's convention: the exit code, or 128 + the signal that ended the process.
int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

// Whether a rank that ended this way stopped as asked rather than failed: exit 130 is a rank's clean stop after
// a signal (train_command.cpp), whoever sent it; after this launcher passed a signal on, a rank may also have
// been ended by it (before it took signals itself, or by a second one, which aborts).
bool stopped_as_asked(int wait_status, bool signal_passed_on) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status) == 130;
  return signal_passed_on && WIFSIGNALED(wait_status) &&
         (WTERMSIG(wait_status) == SIGINT || WTERMSIG(wait_status) == SIGTERM);
}

struct Rank {
  pid_t pid = 0;
  std::optional<int> wait_status;  // once it has ended
};

class Ranks {
 public:
  explicit Ranks(std::vector<Rank> ranks) : ranks_(std::move(ranks)) {}

  int running() const {
    int n = 0;
    for (const Rank& r : ranks_) n += r.wait_status ? 0 : 1;
    return n;
  }

  void signal_running(int signal_number) const {
    for (const Rank& r : ranks_) {
      if (!r.wait_status) ::kill(r.pid, signal_number);
    }
  }

  // Reaps one process that has ended, if any: its rank, or nothing.
  std::optional<int> reap() {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == ECHILD) return lost_all();
    for (std::size_t rank = 0; pid > 0 && rank < ranks_.size(); ++rank) {
      if (ranks_[rank].pid != pid) continue;
      ranks_[rank].wait_status = status;
      return static_cast<int>(rank);
    }
    return std::nullopt;
  }

  const Rank& operator[](int rank) const { return ranks_[static_cast<std::size_t>(rank)]; }

  // Rank 0's code, or when it succeeded the first failing rank's.
  int outcome() const {
    if (const int rank0 = exit_code(ranks_[0].wait_status.value_or(0)); rank0 != 0) return rank0;
    for (const Rank& r : ranks_) {
      if (const int code = exit_code(r.wait_status.value_or(0)); code != 0) return code;
    }
    return 0;
  }

 private:
  // No child left to wait for, yet some never reaped: they count as failed, the first such rank returned. With
  // SIGCHLD at its default action (reset before the ranks start) only this launcher reaps them, so this is a guard:
  // were they ever reaped elsewhere, the launcher would otherwise wait for them forever.
  std::optional<int> lost_all() {
    std::optional<int> first;
    for (std::size_t rank = 0; rank < ranks_.size(); ++rank) {
      if (ranks_[rank].wait_status) continue;
      spdlog::error("rank {} (pid {}) ended unseen: its exit status is lost", rank, ranks_[rank].pid);
      ranks_[rank].wait_status = 1 << 8;  // as exit(1) reports it
      if (!first) first = static_cast<int>(rank);
    }
    return first;
  }

  std::vector<Rank> ranks_;
};

void log_failure(int rank, const Rank& r) {
  const int status = *r.wait_status;
  if (WIFSIGNALED(status)) {
    spdlog::error("rank {} (pid {}) was ended by signal {} ({})", rank, r.pid, WTERMSIG(status),
                  ::strsignal(WTERMSIG(status)));
  } else {
    spdlog::error("rank {} (pid {}) exited with status {}", rank, r.pid, exit_code(status));
  }
}

}  // namespace

std::vector<std::string> without_option(const std::vector<std::string>& arguments, const std::string& option) {
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    if (arguments[i] == option) {
      ++i;  // and its value
    } else if (arguments[i].compare(0, option.size() + 1, option + "=") != 0) {
      kept.push_back(arguments[i]);
    }
  }
  return kept;
}

std::vector<std::string> own_command_line() {
  std::ifstream file("/proc/self/cmdline", std::ios::binary);
  if (!file) throw std::runtime_error("--processes: cannot read /proc/self/cmdline");
  const std::string all((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> arguments;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = all.find('\0', start);
    arguments.push_back(all.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return arguments;
}

int launch_local_processes(int processes, const std::vector<std::string>& arguments, double grace_seconds) {
  const auto grace = std::chrono::duration<double>(grace_seconds);
  // From here on a SIGINT or SIGTERM sent to this process is passed on, never ends it: the ranks stop cleanly and
  // this process waits for them.
  const std::atomic<int>& signals = count_signals_to_forward();
  // Reaping needs SIGCHLD at its default: ignored (inherited from whoever started vit), ended children would
  // vanish unseen.
  ::signal(SIGCHLD, SIG_DFL);
  const int port = free_local_port();
  spdlog::info("starting {} processes on this machine (store at 127.0.0.1:{})", processes, port);
  std::vector<Rank> started;
  for (int rank = 0; rank < processes; ++rank) {
    try {
      started.push_back(Rank{spawn_self(arguments, rank_environment(rank, processes, port)), std::nullopt});
    } catch (const std::exception&) {
      Ranks(started).signal_running(SIGKILL);  // the others would wait for this one until --dist-timeout
      while (::waitpid(-1, nullptr, 0) > 0) {
      }
      throw;
    }
  }
  Ranks ranks(std::move(started));
  int forwarded = 0;
  std::optional<Clock::time_point> failed_at;
  bool terminated = false;
  bool killed = false;
  while (ranks.running() > 0) {
    if (const std::optional<int> rank = ranks.reap()) {
      const int status = *ranks[*rank].wait_status;
      if (exit_code(status) != 0 && !stopped_as_asked(status, forwarded > 0)) {
        log_failure(*rank, ranks[*rank]);
        if (!failed_at) failed_at = Clock::now();
      }
      continue;
    }
    if (const int taken = signals.load(); taken > forwarded) {
      forwarded = taken;
      ranks.signal_running(SIGTERM);
    }
    if (failed_at && !terminated && Clock::now() - *failed_at >= grace) {
      spdlog::warn("{} process{} still running {:g} s after a rank failed: asking {} to stop", ranks.running(),
                   ranks.running() == 1 ? "" : "es", grace_seconds, ranks.running() == 1 ? "it" : "them");
      ranks.signal_running(SIGTERM);
      terminated = true;
    } else if (terminated && !killed && Clock::now() - *failed_at >= 2 * grace) {
      spdlog::warn("killing the {} process{} still running", ranks.running(), ranks.running() == 1 ? "" : "es");
      ranks.signal_running(SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return ranks.outcome();
}

}  // namespace vit::app

namespace vit::app {

void stop_with_launcher() {
  const char* launcher = std::getenv("VIT_LAUNCHER_PID");
  if (launcher == nullptr) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The launcher may have ended before the line above: this process is then another's child already.
  if (std::to_string(::getppid()) != launcher) ::kill(::getpid(), SIGTERM);
}

}  // namespace vit::app
