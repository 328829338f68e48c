#pragma once
// Ctrl-C (SIGINT) and SIGTERM. For a command that stops cleanly (`vit train`), the first one sets a flag that the
// work polls; a second one, two seconds or more later, ends the process at once (sooner, it is the same request
// arriving twice, as under torchrun). For every other command they end the process, as by default.
//
// The signals are taken by a thread of their own (sigwait), never by a handler run on whichever thread the
// kernel picks: delivered into a compute thread in the middle of LibTorch / oneDNN work, a handler (however
// async-signal-safe) was followed by heap corruption in about one `vit train` in five (found by cli_kills and
// cli_disk_faults; reproduced on the pre-fix binary, `tests/cli/test_train.sh` now repeats it).

#include <atomic>

namespace vit::app {

// First thing in main(), before any thread exists, so that every thread inherits the blocked signals: starts the
// thread that takes them.
void watch_stop_signals();

// From now on the first signal asks the work to stop (the flag it returns) instead of ending the process.
const std::atomic<bool>& stop_cleanly_on_signals();

// For a launcher of processes that handle the signals themselves (`vit train --processes N`): from now on no
// signal ends this process; each one adds to the count returned, for the launcher to pass on.
const std::atomic<int>& count_signals_to_forward();

}  // namespace vit::app
