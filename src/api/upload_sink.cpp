#include "src/api/upload_sink.hpp"

#include <string>
#include <utility>
#include <vector>

#include "src/api/respond.hpp"

namespace wharf::api {

namespace {

// What the sink and its write jobs share (the sink lives on the loop; a job may outlive it). The job
// touches only the block in flight, the writer and the session's hasher; the loop leaves those alone
// until the job's completion has run.
class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  Pipe(util::WorkPool& pool, http::ExchangePtr ex, std::shared_ptr<UploadSession> s,
       std::unique_ptr<cache::BlobWriter> writer, std::function<void()> done, std::function<void()> dropped)
      : pool_(pool), ex_(std::move(ex)), s_(std::move(s)), writer_(std::move(writer)), done_(std::move(done)),
        dropped_(std::move(dropped)) {}

  // A piece of the body (loop).
  void add(const char* p, size_t n) {
    if (failed_ || settled_) return;
    filling_.insert(filling_.end(), p, p + n);
    if (filling_.size() < kUploadBlock) return;
    if (!in_flight_) return submit();
    if (!paused_) {
      paused_ = true;
      ex_->pause_body();
    }
  }

  // The whole body has arrived (loop).
  void end() {
    ended_ = true;
    if (in_flight_ || failed_) return;
    if (!filling_.empty()) return submit();
    finish();
  }

  // The sink is gone: the request is over, complete or not (loop). Bytes that did arrive are still
  // staged (a client resumes a broken PATCH from the Range the session then reports).
  void sink_gone() {
    gone_ = true;
    if (in_flight_) return;
    if (!filling_.empty() && !failed_ && !settled_) return submit();
    release();
  }

 private:
  void submit() {
    in_flight_ = true;
    std::swap(filling_, writing_);
    filling_.clear();
    oci::Hasher* hasher = s_->hasher ? &*s_->hasher : nullptr;
    pool_.submit(
        [self = shared_from_this(), hasher] {
          auto wrote = self->writer_->append(self->writing_.data(), self->writing_.size(), hasher);
          if (!wrote) self->error_ = std::move(wrote.error());
        },
        [self = shared_from_this()] { self->written(); });
  }

  // After a write job (loop).
  void written() {
    in_flight_ = false;
    writing_.clear();
    s_->offset = writer_->size();  // a failed append keeps nothing of its bytes
    if (!error_.empty()) s_->hasher.reset();
    if (gone_) return error_.empty() && !filling_.empty() ? submit() : release();
    if (!error_.empty()) {
      failed_ = true;
      std::vector<char>().swap(filling_);
      // Answering ends the body (the sink goes, and release() runs) unless it had arrived already.
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
    writer_.reset();
    std::vector<char>().swap(filling_);
    std::vector<char>().swap(writing_);
    if (auto done = std::move(done_)) done();
  }

  void release() {
    if (settled_) return;
    settled_ = true;
    writer_.reset();
    s_->set_busy(false);
    if (auto dropped = std::move(dropped_)) dropped();
  }

  util::WorkPool& pool_;
  http::ExchangePtr ex_;
  std::shared_ptr<UploadSession> s_;
  std::unique_ptr<cache::BlobWriter> writer_;
  std::function<void()> done_;
  std::function<void()> dropped_;
  std::vector<char> filling_;  // gathered on the loop
  std::vector<char> writing_;  // in a worker's hands while in_flight_
  std::string error_;          // set by a failed job
  bool in_flight_ = false;
  bool paused_ = false;   // we paused the body: both blocks are full
  bool ended_ = false;    // the whole body has arrived
  bool failed_ = false;   // a write failed and was answered
  bool gone_ = false;     // the sink is gone
  bool settled_ = false;  // done_ or dropped_ has run (or is no longer due)
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

std::unique_ptr<http::BodySink> make_upload_sink(util::WorkPool& pool, http::ExchangePtr ex,
                                                 std::shared_ptr<UploadSession> s,
                                                 std::unique_ptr<cache::BlobWriter> writer,
                                                 std::function<void()> done, std::function<void()> dropped) {
  return std::make_unique<UploadSink>(std::make_shared<Pipe>(pool, std::move(ex), std::move(s), std::move(writer),
                                                             std::move(done), std::move(dropped)));
}

}  // namespace wharf::api
