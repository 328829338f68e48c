#pragma once
// Ctrl-C (SIGINT) and SIGTERM as a request to stop cleanly: the first sets a flag that long-running work polls;
// a second one, two seconds or more later, ends the process at once (sooner, it is the same request arriving
// twice, as under torchrun).

#include <atomic>

namespace vit::app {

// Installs the handlers (once) and returns the flag they set.
const std::atomic<bool>& install_stop_handlers();

}  // namespace vit::app
