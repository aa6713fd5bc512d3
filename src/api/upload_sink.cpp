#include "src/api/upload_sink.hpp"

#include <fcntl.h>

#include <string>
#include <utility>
#include <vector>

#include "src/api/respond.hpp"

namespace wharf::api {

namespace {

// Staged bytes between two writeback requests: the kernel writes them out while the body still
// arrives, so the sync at publication finds little left to write.
constexpr uint64_t kWritebackEvery = 4 << 20;

// What the sink and its jobs share (the sink lives on the loop; a job may outlive it). Each block in
// flight has a write job (the writer) and a hash job (the session's hasher) running side by side on
// the pool; the loop leaves the block, the writer and the hasher alone until both have completed.
class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  Pipe(util::WorkPool& pool, http::ExchangePtr ex, std::shared_ptr<UploadSession> s,
       std::unique_ptr<cache::BlobWriter> writer, std::function<void()> done, std::function<void()> dropped)
      : pool_(pool), ex_(std::move(ex)), s_(std::move(s)), writer_(std::move(writer)), done_(std::move(done)),
        dropped_(std::move(dropped)), kicked_(writer_->size()) {}

  // A piece of the body (loop).
  void add(const char* p, size_t n) {
    if (failed_ || settled_) return;
    filling_.insert(filling_.end(), p, p + n);
    if (filling_.size() < kUploadBlock) return;
    if (jobs_ == 0) return submit();
    if (!paused_) {
      paused_ = true;
      ex_->pause_body();
    }
  }

  // The whole body has arrived (loop).
  void end() {
    ended_ = true;
    if (jobs_ > 0 || failed_) return;
    if (!filling_.empty()) return submit();
    finish();
  }

  // The sink is gone: the request is over, complete or not (loop). Bytes that did arrive are still
  // staged (a client resumes a broken PATCH from the Range the session then reports).
  void sink_gone() {
    gone_ = true;
    if (jobs_ > 0) return;
    if (!filling_.empty() && !failed_ && !settled_) return submit();
    release();
  }

 private:
  void submit() {
    std::swap(filling_, writing_);
    filling_.clear();
    auto self = shared_from_this();
    if (oci::Hasher* hasher = s_->hasher ? &*s_->hasher : nullptr) {
      ++jobs_;
      pool_.submit([self, hasher] { hasher->update(self->writing_.data(), self->writing_.size()); },
                   [self] { self->job_done(); });
    }
    ++jobs_;
    pool_.submit(
        [self] {
          auto wrote = self->writer_->append(self->writing_.data(), self->writing_.size(), nullptr);
          if (!wrote) self->error_ = std::move(wrote.error());
          else self->write_back();
        },
        [self] { self->job_done(); });
  }

  // Asks the kernel to start writing staged bytes out (a worker, after a successful append).
  void write_back() {
    const int fd = writer_->read_fd();
    const uint64_t size = writer_->size();
    if (fd < 0 || size - kicked_ < kWritebackEvery) return;
    ::sync_file_range(fd, off64_t(kicked_), off64_t(size - kicked_), SYNC_FILE_RANGE_WRITE);  // a hint
    kicked_ = size;
  }

  void job_done() {
    if (--jobs_ == 0) written();
  }

  // After the block's jobs (loop).
  void written() {
    writing_.clear();
    s_->offset = writer_->size();  // a failed append keeps nothing of its bytes
    if (!error_.empty()) s_->hasher.reset();
    if (gone_) return error_.empty() && !filling_.empty() ? submit() : release();
    if (!error_.empty()) {
      failed_ = true;
      std::vector<char>().swap(filling_);
      // Answering ends the body (the sink goes, and release() runs) unless it had arrived already.
      if (writer_->conflicted()) return fail_upload_range(ex_, *s_, error_);
      return fail(ex_, oci::ErrorCode::Unavailable, "cannot store upload data: " + error_);
    }
    if (filling_.size() >= kUploadBlock || (ended_ && !filling_.empty())) submit();
    else if (ended_) return finish();
    if (paused_ && filling_.size() < kUploadBlock) {
      paused_ = false;
      ex_->resume_body();  // may feed more pieces (and end the body) right away
    }
  }

  void finish() {
    settled_ = true;
    std::vector<char>().swap(filling_);
    std::vector<char>().swap(writing_);
    close_writer([self = shared_from_this()](const std::string& error) {
      if (error.empty()) {
        if (auto done = std::move(self->done_)) done();
        return;
      }
      self->s_->set_busy(false);
      if (auto dropped = std::move(self->dropped_)) dropped();
      if (self->conflicted_) return fail_upload_range(self->ex_, *self->s_, error);
      fail(self->ex_, oci::ErrorCode::Unavailable, "cannot store upload data: " + error);
    });
  }

  void release() {
    if (settled_) return;
    settled_ = true;
    close_writer([self = shared_from_this()](const std::string&) {
      self->s_->set_busy(false);
      if (auto dropped = std::move(self->dropped_)) dropped();
    });
  }

  // Closes the writer on a worker (a backend may make its last bytes durable only then), then runs
  // `then` on the loop with "" or why the last bytes were not kept; the session's offset is then final.
  void close_writer(std::function<void(const std::string&)> then) {
    auto self = shared_from_this();
    auto error = std::make_shared<std::string>();
    pool_.submit(
        [self, error] {
          if (auto r = self->writer_->close(); !r) *error = std::move(r.error());
        },
        [self, error, then = std::move(then)] {
          self->s_->offset = self->writer_->size();
          self->conflicted_ = self->writer_->conflicted();
          if (!error->empty()) self->s_->hasher.reset();
          self->writer_.reset();
          then(*error);
        });
  }

  util::WorkPool& pool_;
  http::ExchangePtr ex_;
  std::shared_ptr<UploadSession> s_;
  std::unique_ptr<cache::BlobWriter> writer_;
  std::function<void()> done_;
  std::function<void()> dropped_;
  std::vector<char> filling_;  // gathered on the loop
  std::vector<char> writing_;  // in the workers' hands while jobs_ > 0
  std::string error_;          // set by a failed write job
  uint64_t kicked_;            // staged bytes up to here were handed to writeback (write job only)
  int jobs_ = 0;               // jobs of the block in flight not completed yet
  bool paused_ = false;   // we paused the body: both blocks are full
  bool ended_ = false;    // the whole body has arrived
  bool failed_ = false;   // a write failed and was answered
  bool gone_ = false;     // the sink is gone
  bool settled_ = false;  // done_ or dropped_ has run (or is no longer due)
  bool conflicted_ = false;  // the writer's close failed because another front continued the upload
};

class UploadSink final : public http::BodySink {
 public:
  explicit UploadSink(std::shared_ptr<Pipe> pipe) : pipe_(std::move(pipe)) {}
  ~UploadSink() override { pipe_->sink_gone(); }
  UploadSink(const UploadSink&) = delete;
  UploadSink& operator=(const UploadSink&) = delete;
  bool on_data(const char* p, size_t n) override {
    pipe_->add(p, n);
    return true;
  }
  void on_end() override { pipe_->end(); }

 private:
  std::shared_ptr<Pipe> pipe_;
};

}  // namespace

void fail_upload_range(const http::ExchangePtr& ex, const UploadSession& s, std::string message) {
  auto res = error_response(oci::ErrorCode::RangeInvalid, std::move(message), {}, 416);
  res.header("Location", std::string("/v2/").append(s.repo).append("/blobs/uploads/").append(s.id));
  res.header("Range", std::string("0-").append(std::to_string(s.offset == 0 ? 0 : s.offset - 1)));
  res.header("Docker-Upload-UUID", s.id);
  ex->respond(std::move(res));
}

std::unique_ptr<http::BodySink> make_upload_sink(util::WorkPool& pool, http::ExchangePtr ex,
                                                 std::shared_ptr<UploadSession> s,
                                                 std::unique_ptr<cache::BlobWriter> writer,
                                                 std::function<void()> done, std::function<void()> dropped) {
  return std::make_unique<UploadSink>(std::make_shared<Pipe>(pool, std::move(ex), std::move(s), std::move(writer),
                                                             std::move(done), std::move(dropped)));
}

}  // namespace wharf::api
