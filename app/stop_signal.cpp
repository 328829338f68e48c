#include "app/stop_signal.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace vit::app {
namespace {

std::atomic<bool> stop_requested{false};
std::atomic<int64_t> first_signal_ns{0};

// A repeat this soon is the same request: Ctrl-C on a terminal reaches a process that torchrun launched both
// directly and through torchrun, which forwards it.
constexpr int64_t kSameRequestNs = 2'000'000'000;

void on_stop_signal(int signal_number) {
  // Only async-signal-safe calls here: clock_gettime(2), write(2), signal(2), raise(3); lock-free atomics.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t now_ns = static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  int64_t first = 0;
  if (first_signal_ns.compare_exchange_strong(first, now_ns)) {
    stop_requested.store(true);
    constexpr char kMessage[] = "\nstopping after the current step and saving (send the signal again to abort)\n";
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    return;
  }
  if (now_ns - first < kSameRequestNs) return;
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

}  // namespace

const std::atomic<bool>& install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  return stop_requested;
}

}  // namespace vit::app
