#pragma once
// For unit tests: a BlobBackend that passes every call to a real store, except that, once `down` is set,
// the checked stat, reads and the listing fail the way a network store does in an outage.
#include <string>

#include "cache/blob_backend.hpp"

namespace wharf::testing {

class FailingStore final : public cache::BlobBackend {
 public:
  explicit FailingStore(const cache::BlobBackend& real) : real_(real) {}
  bool down = false;

  cache::Backend kind() const override { return real_.kind(); }
  std::expected<std::unique_ptr<cache::BlobWriter>, cache::StoreError> begin_write(cache::StageArea a,
                                                                                   std::string_view n) const override {
    return real_.begin_write(a, n);
  }
  std::expected<std::unique_ptr<cache::BlobWriter>, cache::StoreError> resume_write(std::string_view n) const override {
    return real_.resume_write(n);
  }
  std::expected<uint64_t, cache::StoreError> upload_size(std::string_view n) const override {
    return real_.upload_size(n);
  }
  std::expected<std::pair<oci::Digest, uint64_t>, cache::StoreError> hash_staged(const cache::StagedKey& k,
                                                                                 oci::DigestAlgo a) const override {
    return real_.hash_staged(k, a);
  }
  void discard(const cache::StagedKey& k) const override { real_.discard(k); }
  cache::StagedKey upload_key(std::string_view n) const override { return real_.upload_key(n); }
  std::vector<cache::StagedItem> list_uploads() const override { return real_.list_uploads(); }
  std::expected<cache::StagedKey, std::string> stage(std::string_view b) const override { return real_.stage(b); }
  void clean_temp() const override { real_.clean_temp(); }
  std::vector<std::string> prepare(const std::vector<cache::Placement>& p) const override { return real_.prepare(p); }
  std::vector<std::string> place(const std::vector<cache::Placement>& p) const override { return real_.place(p); }
  std::optional<uint64_t> stat(const oci::Digest& d) const override { return down ? std::nullopt : real_.stat(d); }
  std::expected<std::optional<uint64_t>, std::string> stat_checked(const oci::Digest& d) const override {
    if (down) return std::unexpected(std::string("HeadObject: connection refused"));
    return real_.stat_checked(d);
  }
  std::optional<uint64_t> stat_recorded(const oci::Digest& d, const cache::Recorded& r) const override {
    return down ? std::nullopt : real_.stat_recorded(d, r);
  }
  std::expected<std::optional<cache::ReadPlan>, std::string> read(const oci::Digest& d, const cache::Recorded& r,
                                                                   uint64_t first, uint64_t length,
                                                                   cache::RedirectPolicy p) const override {
    return real_.read(d, r, first, length, p);
  }
  std::optional<std::string> read_small(const oci::Digest& d, uint64_t max) const override {
    return real_.read_small(d, max);
  }
  int open_local(const oci::Digest& d) const override { return real_.open_local(d); }
  bool intact(const oci::Digest& d) const override { return !down && real_.intact(d); }
  std::expected<void, std::string> read_all(const oci::Digest& d,
                                            const std::function<bool(const char*, size_t)>& sink) const override {
    if (down) return std::unexpected(std::string("GetObject: connection refused"));
    return real_.read_all(d, sink);
  }
  bool remove(const oci::Digest& d) const override { return real_.remove(d); }
  std::expected<void, std::string> list(const std::function<void(const cache::StoredBlob&)>& each) const override {
    if (down) return std::unexpected(std::string("ListObjectsV2: connection refused"));
    return real_.list(each);
  }

 private:
  const cache::BlobBackend& real_;
};

}  // namespace wharf::testing
