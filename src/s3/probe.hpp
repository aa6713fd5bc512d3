#pragma once
// `wharf check-config` (and serve's preflight) with storage.s3: the bucket must answer and be writable.
#include <string>
#include <vector>

#include "src/config/config.hpp"
#include "src/s3/client.hpp"

namespace wharf::s3 {

// The client settings for storage.s3 (endpoint, addressing, credentials, root, encryption, class).
ClientConfig client_config(const config::S3Storage& s3);

// HEADs the bucket, then PUTs, GETs and DELETEs a small probe object under rootdirectory, on a private event
// loop (bounded by the client's timeouts and retries). Each problem names the config key to fix, e.g.
// "storage.s3.secretkey: ..."; empty when all four steps worked.
std::vector<std::string> probe_bucket(const config::S3Storage& s3);

}  // namespace wharf::s3
