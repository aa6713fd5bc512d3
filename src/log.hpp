#pragma once
// Process logging through spdlog: level and text/JSON format from the configuration.
#include "src/config/config.hpp"

namespace wharf {

// Configures the default spdlog logger (stderr). Never fails.
void setup_logging(const config::Config& cfg);

}  // namespace wharf
