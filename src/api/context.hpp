#pragma once
// What the API handlers share: the configuration and the services built by the App.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "cache/blob_backend.hpp"
#include "cache/index.hpp"
#include "src/api/access_tracker.hpp"
#include "src/api/small_cache.hpp"
#include "src/api/tag_cache.hpp"
#include "src/api/upload_table.hpp"
#include "src/config/config.hpp"
#include "src/util/work_pool.hpp"

struct event_base;

namespace wharf::api {

class Mirror;

struct Context {
  const config::Config& cfg;
  cache::Index& index;
  cache::BlobBackend& store;  // the blob bytes: handlers and the mirror only ever see this interface
  util::WorkPool& pool;
  event_base* base;
  AccessTracker& access;
  UploadTable& uploads;
  Mirror* mirror = nullptr;  // set when upstreams are configured
  SmallCache small;          // bytes of small manifests and blobs, by digest
  TagCache tags{};           // manifest lookups of a blocking index, kept fresh by LISTEN/NOTIFY (off by default)
};

}  // namespace wharf::api
