#pragma once
// Putting verified content into the store. The rule that keeps acknowledged blobs: a blob becomes
// visible under its content address only inside the index write transaction that records it, and
// leaves only inside an index write transaction that finds no record for it (cache/gc.hpp). LMDB's
// writer lock, which every process opening the index shares, orders the two, so no deleter ever sees
// a published blob that is not yet indexed, whatever its age. BlobBackend::prepare (the fsync) runs
// before the lock is taken; inside it only BlobBackend::place (rename + directory fsync on the
// filesystem) and the records happen. The record names the backend that holds the bytes.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/index.hpp"
#include "src/oci/digest.hpp"

namespace wharf::cache {

// One verified temp file to store as blob `digest` (of `size` bytes) and link into `repo`.
struct BlobPublication {
  StagedKey tmp;  // from BlobWriter::key() or BlobBackend::stage()
  oci::Digest digest;
  std::string repo;
  uint64_t size = 0;
  Origin origin = Origin::Pushed;
};

// Stores and links every item; the temp files are consumed (moved into blobs/, or removed when the
// blob is already there). Returns one message per item, in order ("" on success); a failed item is not
// linked and its temp file is left to the caller. Blocking: call from a worker.
std::vector<std::string> publish_blobs(Index&, const BlobBackend&, const std::vector<BlobPublication>&);

// One verified manifest in a temp file, to store and record in `repo` (tagged `tag` when given).
struct ManifestPublication {
  StagedKey tmp;
  oci::Digest digest;
  std::string repo;
  ManifestRecord rec;
  std::optional<std::string> tag;
  std::vector<std::string> required;  // digests that must still be linked in / manifests of `repo`
};

// Stores and records the manifest in one step, after checking inside the same transaction that every
// `required` digest is still in the repository. Returns the first missing digest (nothing written,
// the temp file left to the caller) or nullopt; fails with a message if the disk or the index does.
std::expected<std::optional<std::string>, std::string> publish_manifest(Index&, const BlobBackend&,
                                                                        const ManifestPublication&);

// publish_manifest of `bytes` (verified to hash to m.digest; m.tmp is ignored): stages them in a temp
// file first, and removes it whatever happens.
std::expected<std::optional<std::string>, std::string> publish_manifest_bytes(Index&, const BlobBackend&,
                                                                              std::string_view bytes,
                                                                              ManifestPublication m);

}  // namespace wharf::cache
