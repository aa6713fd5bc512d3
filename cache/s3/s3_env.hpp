#pragma once
// The S3 store with everything it runs on: an HTTP client and an S3 client on an event loop, the bridge
// for blocking callers, and the store itself (staging under storage.filesystem.rootdirectory).
#include <event2/event.h>

#include <expected>
#include <memory>
#include <string>

#include "cache/s3/s3_bridge.hpp"
#include "cache/s3/s3_stats.hpp"
#include "cache/s3/s3_store.hpp"
#include "proxy/http_client.hpp"
#include "src/config/config.hpp"

namespace wharf::cache {

// Owns the S3 side of a process; members are destroyed store first, then bridge, clients, loop.
struct S3Env {
  struct BaseFree {
    void operator()(event_base* b) const { event_base_free(b); }
  };
  std::unique_ptr<event_base, BaseFree> own_base;  // Private mode only
  std::unique_ptr<S3Stats> stats = std::make_unique<S3Stats>();  // every call of the client
  std::unique_ptr<proxy::HttpClient> http;
  std::unique_ptr<s3::Client> client;
  std::unique_ptr<S3Bridge> bridge;
  std::unique_ptr<S3BlobStore> store;
  ~S3Env();
  // HEADs the bucket through the bridge (blocking: a worker); "" if it answered, else why not.
  std::string probe_bucket() const;
};

// Builds the S3 store of `cfg` on `base` (Shared: the server's loop, on this thread) or, with a null
// `base`, on a private loop the blocking calls run themselves (offline verbs). `local` stages writes.
// Fails with a message naming the config key.
std::expected<std::unique_ptr<S3Env>, std::string> open_s3_store(const config::Config& cfg, event_base* base,
                                                                 FsBlobStore local);

}  // namespace wharf::cache
