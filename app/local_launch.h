#pragma once
// `vit train --processes N`: the N processes of a data-parallel run on this machine, started by vit itself, as
// `torchrun --standalone --nproc-per-node N` would start them. Each is this executable with the same arguments
// less --processes, in the environment a launcher gives (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT), in this process's group, so a terminal's Ctrl-C reaches them
// all. The launcher passes on every SIGINT / SIGTERM it gets itself (`kill`, a scheduler), and when one process
// fails it asks the others to stop (SIGTERM, after a grace period SIGKILL), as torchrun does: none is left waiting
// for a peer that is gone. Should the launcher itself end, its ranks stop and save.

#include <string>
#include <vector>

namespace vit::app {

// The command line without an option and its value ("--processes 2" or "--processes=2").
std::vector<std::string> without_option(const std::vector<std::string>& arguments, const std::string& option);

// This process's own command line, as the kernel holds it (/proc/self/cmdline).
std::vector<std::string> own_command_line();

// Runs `arguments` (argv[0] first) with this executable (/proc/self/exe) as `processes` ranks and waits for them
// all. Once one has failed, the others get `grace_seconds` to notice by themselves (at their next collective, where
// they name the lost rank), then a SIGTERM and as long again to stop and save, then a SIGKILL. Returns rank 0's
// exit status, or when rank 0 succeeded the first failing rank's (128 + N for a rank ended by signal N). Throws
// std::runtime_error when a process cannot be started.
int launch_local_processes(int processes, const std::vector<std::string>& arguments, double grace_seconds);

// In a rank this launcher started (VIT_LAUNCHER_PID set): asks the kernel for a SIGTERM when the launcher ends
// (killed with -9, say), so that no rank trains on alone; the rank then stops cleanly and saves. Elsewhere it does
// nothing.
void stop_with_launcher();

}  // namespace vit::app
