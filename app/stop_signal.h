#pragma once
// Ctrl-C (SIGINT) and SIGTERM as a request to stop cleanly: the first sets a flag that long-running work polls;
// the handler then steps aside, so a second signal ends the process at once.

#include <atomic>

namespace vit::app {

// Installs the handlers (once) and returns the flag they set.
const std::atomic<bool>& install_stop_handlers();

}  // namespace vit::app
