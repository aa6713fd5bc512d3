#pragma once
// What `serve` needs from the machine before it starts: files it reads, the TLS pair, the root directory,
// and with storage.s3 a reachable, writable bucket.
// `wharf check-config` runs the same checks, so a config it accepts does not stop `serve`.
#include <string>
#include <vector>

#include "src/config/config.hpp"

namespace wharf {

// Every problem found, each naming the config key and the file or directory; empty when all is well.
// Reads files but creates and changes nothing locally; with storage.s3 it HEADs the bucket and writes,
// reads back and deletes one small probe object under storage.s3.rootdirectory.
std::vector<std::string> preflight(const config::Config& cfg);

// The authentication mode `cfg` selects, for check-config: "off", "htpasswd", or "token (...)" naming
// the issuer (wharf itself or the external realm) and service, then the number of access rules if any.
std::string auth_mode(const config::Config& cfg);

}  // namespace wharf
