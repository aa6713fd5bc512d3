#pragma once
// `wharf check`: the store's consistency check (an fsck), offline. The index must agree with itself
// (every reference points at a record, refcounts match the links) and with blobs/ (every indexed file
// exists with its recorded size and, when asked, hashes to its digest; manifests always do, they are
// small). With repair, what blobs/ still holds is put back into the index and records whose content is
// gone and that nothing references are dropped; what a manifest still needs is reported, not dropped.
#include <cstddef>
#include <string>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/index.hpp"

namespace wharf::cache {

enum class VerifyContent { No, Yes };
enum class Repair { No, Yes };

struct FsckOptions {
  VerifyContent verify = VerifyContent::No;
  Repair repair = Repair::No;
};

// One problem: what it is about ("blob sha256:...", "tag repo:tag", ...), what is wrong, and whether
// it was repaired (only with Repair::Yes) or cannot be (repairable == false).
struct Finding {
  std::string subject;
  std::string problem;
  bool repairable = true;
  bool repaired = false;
};

// How many strays a report names one by one (all are counted).
inline constexpr size_t kMaxStrayList = 1000;

struct FsckReport {
  std::vector<Finding> findings;
  size_t blobs = 0, manifests = 0, tags = 0, links = 0;  // records checked
  size_t strays = 0;          // files in blobs/ with no record (harmless; garbage-collect removes them)
  std::vector<std::string> stray_list;  // the first kMaxStrayList of them, as "sha256:... (N bytes)"
  std::string fatal;          // set when the index could not be read or written, or the store could not answer: the check stopped
  // Problems not repaired (all of them without Repair::Yes).
  size_t left() const;
};

// Checks (and with Repair::Yes repairs) the store; `damage` is what LmdbIndex::open(…, Damaged::Open)
// found undecodable. Never throws; LMDB failures end the check with report.fatal set. Blocking.
FsckReport fsck(Index&, const BlobBackend&, const std::vector<std::string>& damage, const FsckOptions&);

}  // namespace wharf::cache
