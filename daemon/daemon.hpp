// rpibootd as a whole: wires the event loop, configuration, device sources,
// registry, workers, D-Bus adapter and systemd notification together.
//
// The one place that knows the order things start and stop in: load the
// configuration (refuse to start on a broken one), start the bus adapter and
// the device sources, tell systemd READY, then run the loop; on SIGTERM stop
// the sources, let the workers end, and exit. Reload (SIGHUP or D-Bus) swaps
// the configuration only when the new one is valid. No global state.
#pragma once

#include "options.hpp"

namespace rpibootd {

// Runs the daemon until it is told to stop; returns the process exit status.
int runDaemon(const DaemonOptions& options);

// --check-config: loads and validates, prints what it found; exit status.
int checkConfiguration(const DaemonOptions& options);

}  // namespace rpibootd
