#pragma once
// Builds and owns every service of a running wharf (no globals) and runs the event loop.
#include <memory>

#include "src/config/config.hpp"

namespace wharf {

// Runs `wharf serve` until SIGINT/SIGTERM; returns the process exit code. Startup failures are logged
// with the key or path at fault and give exit code 1.
int serve(const config::Config& cfg);

}  // namespace wharf
