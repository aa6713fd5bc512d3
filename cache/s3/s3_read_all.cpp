// S3BlobStore::read_all: a whole object streamed to a blocking caller's sink (offline verbs).
#include <memory>

#include "cache/s3/s3_store.hpp"

namespace wharf::cache {

std::expected<void, std::string> S3BlobStore::read_all(const oci::Digest& d,
                                                       const std::function<bool(const char*, size_t)>& sink) const {
  const std::string key = blob_key(d);
  auto stopped = std::make_shared<bool>(false);
  // A GET whose head reached the caller is never retried, so the sink sees each byte once.
  auto r = bridge_.call<void>([key, stopped, &sink](s3::Client& c, s3::Done<void> done) {
    s3::GetHandlers h;
    h.on_head = [](const s3::ObjectInfo&) {};
    h.on_data = [stopped, &sink](const char* p, size_t n) {
      if (sink(p, n)) return true;
      *stopped = true;
      return false;
    };
    h.on_done = std::move(done);
    return c.get_object(key, std::nullopt, std::move(h));
  });
  if (*stopped) return std::unexpected("reading blob " + d.str() + " was stopped");
  if (!r) return std::unexpected(std::string("S3 GetObject ").append(key).append(": ").append(r.error().str()));
  return {};
}

}  // namespace wharf::cache
