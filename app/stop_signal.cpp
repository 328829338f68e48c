#include "app/stop_signal.h"

#include <signal.h>
#include <unistd.h>

namespace vit::app {
namespace {

std::atomic<bool> stop_requested{false};

void on_stop_signal(int signal_number) {
  stop_requested.store(true);
  // Only async-signal-safe calls here: write(2) and resetting the disposition.
  constexpr char kMessage[] = "\nstopping after the current step and saving (send the signal again to abort)\n";
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  ::signal(signal_number, SIG_DFL);
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
