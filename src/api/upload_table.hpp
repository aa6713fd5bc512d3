#pragma once
// Open upload sessions: their data file, the bytes received so far and a running digest.
// Sessions survive restarts through the index record and the data file; a restored session has no
// running digest and is re-hashed from its file when completed.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "src/oci/digest.hpp"

namespace wharf::api {

struct UploadSession {
  std::string id;
  std::string repo;
  int fd = -1;           // data file, opened for appending
  uint64_t offset = 0;   // bytes received
  std::optional<oci::Hasher> hasher;  // sha256 over bytes 0..offset, if contiguous in this process
  bool busy = false;     // a request is writing or completing it
  int64_t started = 0;
  ~UploadSession();
};

class UploadTable {
 public:
  std::shared_ptr<UploadSession> find(const std::string& id) const {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  void put(std::shared_ptr<UploadSession> s) { sessions_[s->id] = std::move(s); }
  void erase(const std::string& id) { sessions_.erase(id); }
  size_t size() const { return sessions_.size(); }

 private:
  std::unordered_map<std::string, std::shared_ptr<UploadSession>> sessions_;
};

}  // namespace wharf::api
