#pragma once
// A registry:2 storage tree (docker/registry/v2/...) read as untrusted input: the source of
// `wharf import-registry`. The filesystem driver's layout is read here; an S3 source (the same keys
// under a bucket prefix) implements the same interface.
//
// Layout: blobs/<algo>/<2 hex>/<hex>/data, repositories/<name>/_layers/<algo>/<hex>/link,
// repositories/<name>/_manifests/revisions/<algo>/<hex>/link,
// repositories/<name>/_manifests/tags/<tag>/current/link; repositories/<name>/_uploads is ignored.
#include <cstdint>
#include <expected>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "src/oci/digest.hpp"

namespace wharf::commands {

// Reads one blob's data from the start.
class TreeReader {
 public:
  virtual ~TreeReader() = default;
  // Size of the data, as the source reports it.
  virtual uint64_t size() const = 0;
  // Reads up to `n` bytes into `buf`: 0 at the end; fails with a message naming the object.
  virtual std::expected<size_t, std::string> read(char* buf, size_t n) = 0;
};

class RegistryTree {
 public:
  virtual ~RegistryTree() = default;
  // Every repository name under repositories/ (a directory holding _layers or _manifests); names that
  // cannot be read are reported through `problems`, never followed out of the tree.
  virtual std::vector<std::string> repositories(std::vector<std::string>& problems) = 0;
  // Names of the entries of directory `rel` (relative to v2/); empty if it does not exist; fails for a
  // symbolic link or anything that is not a directory.
  virtual std::expected<std::vector<std::string>, std::string> list(const std::string& rel) = 0;
  // The content of link file `rel`: at most 256 bytes, a regular file (not a symbolic link).
  virtual std::expected<std::string, std::string> read_link(const std::string& rel) = 0;
  // The data of blob `d`; fails if it is absent or not a regular file.
  virtual std::expected<std::unique_ptr<TreeReader>, std::string> open_blob(const oci::Digest& d) = 0;
};

// The tree of a filesystem-driver registry under `root` (its rootdirectory, holding docker/registry/v2);
// fails with a message if that directory is missing.
std::expected<std::unique_ptr<RegistryTree>, std::string> open_fs_tree(const std::string& root);

// How import-registry reaches a registry:2 tree in a bucket (SOURCE "s3://BUCKET[/ROOTDIRECTORY]").
struct S3TreeOptions {
  std::string endpoint;      // --s3-endpoint, else $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL; empty: AWS
  std::string region;        // --s3-region, else $AWS_REGION / $AWS_DEFAULT_REGION, else us-east-1
  bool verify_tls = true;    // --s3-insecure turns it off
  bool virtual_host = false;  // --s3-virtual-host: bucket.endpoint/key instead of endpoint/bucket/key
};

// True when SOURCE names a bucket (starts with "s3://").
bool is_s3_source(const std::string& source);

// The tree of a registry:2 S3 driver under `source` ("s3://BUCKET[/ROOTDIRECTORY]"), read with
// ListObjectsV2 and GetObject on a private event loop; credentials come from $AWS_ACCESS_KEY_ID,
// $AWS_SECRET_ACCESS_KEY (and $AWS_SESSION_TOKEN). Lists repositories/ once (at most 4 million keys);
// fails with a message naming the bucket, the option or the variable.
std::expected<std::unique_ptr<RegistryTree>, std::string> open_s3_tree(const std::string& source, const S3TreeOptions&);

// The entries of "directory" `dir` of a bucket listed into `keys` (keys are paths, directories are key
// prefixes): the distinct first components after "dir/", sorted; empty components ("a//b") are no entry.
std::vector<std::string> key_children(const std::set<std::string>& keys, const std::string& dir);

// The digest a link file names ("sha256:<hex>", surrounding whitespace allowed), or nullopt.
std::optional<oci::Digest> parse_link(const std::string& text);

}  // namespace wharf::commands
