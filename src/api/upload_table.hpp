#pragma once
// Open upload sessions: their data file, the bytes received so far and a running digest, and the
// limits on how many a client address, and everyone together, may hold open.
// A session holds no file descriptor: a request that writes to it opens the file for as long as it
// writes. Resumable sessions survive restarts through the index record and the data file; a restored
// session has no running digest and is re-hashed from its file when completed.
#include <cstdint>
#include <ctime>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "cache/blob_backend.hpp"
#include "src/oci/digest.hpp"

namespace wharf::api {

struct UploadSession {
  // Resumable: POST/PATCH/PUT, data under uploads/, kept until completed, cancelled or purged.
  // Monolithic: POST ?digest= with the body, data under tmp/, removed whenever it is not published.
  enum class Kind { Resumable, Monolithic };
  std::string id;
  std::string repo;
  std::string client;   // address that opened it; empty for one restored after a restart
  Kind kind = Kind::Resumable;
  cache::StagedKey path;                   // its staged data (BlobBackend)
  const cache::BlobBackend* store = nullptr;  // discards a monolithic upload's staged data at the end
  uint64_t offset = 0;         // bytes received
  std::optional<oci::Hasher> hasher;  // sha256 over bytes 0..offset, if contiguous in this process
  bool busy = false;     // a request is writing or completing it
  int64_t started = 0;
  int64_t touched = 0;   // when a request last began or ended writing to it (unix seconds)
  // Marks the session in use by a request (or not) and notes the time.
  void set_busy(bool b) {
    busy = b;
    touched = static_cast<int64_t>(::time(nullptr));
  }
  // The last time anyone used it: started or touched.
  int64_t last_used() const { return touched > started ? touched : started; }
  // Discards a monolithic upload's staged data (nothing, once published: it was moved away).
  ~UploadSession();
};

class UploadTable {
 public:
  // Why a new session may not open.
  enum class Admit { Ok, ClientFull, TotalFull };

  // Sets the caps (each at least 1): sessions in total, and per client address.
  void set_limits(size_t total, size_t per_client);
  // Whether `client` may open one more session now; a refusal is counted for refused().
  // At a cap, with `evicted` given, a resumable session not in use since before `idle_before` (the
  // client's own at the per-client cap, anyone's at the total cap; the least recently used) is taken
  // out of the table to make room: its id goes to *evicted (the caller removes its record and file),
  // and the answer is Ok. So a client whose pushes died is not locked out until the purge.
  Admit admit(const std::string& client, std::string* evicted = nullptr, int64_t idle_before = 0);
  // The resumable session `id`; nullptr if unknown (monolithic sessions are never found by id).
  std::shared_ptr<UploadSession> find(const std::string& id) const;
  // Adds (or replaces) a session; it holds a slot of its client until erased.
  void put(std::shared_ptr<UploadSession> s);
  // Removes a session and frees its slot; unknown ids are ignored. A resumable session's id is remembered
  // as ended (for an hour, up to kEndedKept ids), so a restore from the index that raced with its removal
  // (the record is deleted on a worker, after this) does not bring it back: see ended().
  void erase(const std::string& id);
  // Whether the session `id` was removed from this table recently: completed, cancelled, evicted or purged.
  bool ended(const std::string& id) const { return ended_.contains(id); }
  // Sessions open now.
  size_t size() const { return sessions_.size(); }
  // Sessions held by `client`.
  size_t held_by(const std::string& client) const;
  // Sessions refused by admit() so far.
  uint64_t refused() const { return refused_; }
  // Idle sessions taken out by admit() to make room so far.
  uint64_t evicted() const { return evicted_; }

 private:
  size_t max_total_ = 1000;
  size_t max_per_client_ = 100;
  uint64_t refused_ = 0;
  uint64_t evicted_ = 0;
  std::unordered_map<std::string, std::shared_ptr<UploadSession>> sessions_;
  std::unordered_map<std::string, size_t> per_client_;
  static constexpr size_t kEndedKept = 100000;
  static constexpr int64_t kEndedSeconds = 3600;
  std::unordered_set<std::string> ended_;
  std::deque<std::pair<int64_t, std::string>> ended_order_;  // oldest first
};

}  // namespace wharf::api
