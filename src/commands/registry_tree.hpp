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

// The digest a link file names ("sha256:<hex>", surrounding whitespace allowed), or nullopt.
std::optional<oci::Digest> parse_link(const std::string& text);

}  // namespace wharf::commands
