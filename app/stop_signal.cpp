#include "app/stop_signal.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace vit::app {
namespace {

std::atomic<bool> stop_cleanly{false};
std::atomic<bool> stop_requested{false};
std::atomic<bool> forward_signals{false};
std::atomic<int> signals_to_forward{0};

// A repeat this soon is the same request: Ctrl-C on a terminal reaches a process that torchrun launched both
// directly and through torchrun, which forwards it.
constexpr auto kSameRequest = std::chrono::seconds(2);

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Ends the process as the signal's default action would (the shell then reports it as killed by that signal).
[[noreturn]] void end_by(int signal_number) {
  ::signal(signal_number, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal_number);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  ::raise(signal_number);
  std::_Exit(128 + signal_number);  // not reached
}

void take_signals(sigset_t set) {
  std::chrono::steady_clock::time_point first{};
  bool requested = false;
  while (true) {
    int signal_number = 0;
    if (sigwait(&set, &signal_number) != 0) continue;
    if (forward_signals.load()) {
      signals_to_forward.fetch_add(1);
      continue;
    }
    if (!stop_cleanly.load()) end_by(signal_number);
    const auto now = std::chrono::steady_clock::now();
    if (!requested) {
      requested = true;
      first = now;
      stop_requested.store(true);
      constexpr char kMessage[] = "\nstopping after the current step and saving (send the signal again to abort)\n";
      [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
      continue;
    }
    if (now - first >= kSameRequest) end_by(signal_number);
  }
}

}  // namespace

void watch_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(take_signals, set).detach();
}

const std::atomic<bool>& stop_cleanly_on_signals() {
  stop_cleanly.store(true);
  return stop_requested;
}

const std::atomic<int>& count_signals_to_forward() {
  forward_signals.store(true);
  return signals_to_forward;
}

}  // namespace vit::app
