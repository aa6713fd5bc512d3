#pragma once
// A blob range streamed from S3 to one client (storage.redirect.disable: true).
//
// Design.
// - One GetObject for the whole requested range; its bytes go to the reader as libcurl delivers them
//   (views of curl's buffer, no copy, no allocation per piece).
// - Backpressure: a piece that arrives while the reader is not asking (its output is above the high-water
//   mark) is held back by pausing the transfer (CURL_WRITEFUNC_PAUSE: curl keeps the piece and the socket
//   is not read); the next next() resumes it. So wharf holds at most the client's output buffer plus
//   curl's receive buffer per stream, however slow the client.
// - A transfer paused longer than kIdleDrop is cancelled so that a slow client does not hold one of the
//   pooled S3 connections; the next next() starts a ranged GET from where it stopped.
// - A GET that fails after it made progress (a connection S3 closed while paused, a reset) is restarted
//   from the current position, at most kRestarts times per stream; an ETag that changes
//   between attempts is a failure. The reader then gets the message: the head is already sent, so the
//   server closes the connection instead of sending wrong bytes.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cache/blob_backend.hpp"
#include "src/s3/client.hpp"

struct event;

namespace wharf::cache {

class ObjectStream final : public ByteStream {
 public:
  static constexpr std::chrono::milliseconds kIdleDrop{5'000};
  static constexpr int kRestarts = 3;

  // Streams bytes [first, end) of `key`; `client` outlives the stream and runs on `base`.
  ObjectStream(s3::Client& client, event_base* base, std::string key, uint64_t first, uint64_t end);
  // Cancels the GET in flight (no callback runs afterwards).
  ~ObjectStream() override;
  ObjectStream(const ObjectStream&) = delete;
  ObjectStream& operator=(const ObjectStream&) = delete;

  void next(std::function<void(std::expected<std::string_view, std::string>)> done) override;

 private:
  // Starts a ranged GET of [pos_, end_).
  void start();
  // Whether curl should hold the piece it has (nobody is asking): pauses the transfer.
  bool hold();
  // Hands a piece to the waiting reader.
  bool on_data(const char* p, size_t n);
  void on_head(const s3::ObjectInfo& info);
  void on_done(std::expected<void, s3::S3Error> r);
  // Delivers `piece` to the waiter (if any); otherwise keeps an end or a failure for the next next().
  void settle(std::expected<std::string_view, std::string> piece);
  static void on_idle(int, short, void* arg);

  struct EventFree {
    void operator()(event* e) const;
  };

  s3::Client& client_;
  event_base* base_;
  std::string key_;
  uint64_t pos_, end_;
  uint64_t id_ = 0;            // the GET in flight (0: none)
  uint64_t attempt_start_ = 0; // pos_ when the current GET started
  int failures_ = 0;           // restarts after a failure (at most kRestarts)
  bool paused_ = false;        // curl holds a piece back (the reader is not asking)
  std::string etag_;           // of the first attempt
  std::string head_error_;     // the current GET's head does not match the request: it is aborted
  std::unique_ptr<event, EventFree> idle_;
  std::optional<std::string> failure_;  // kept for the next next()
  bool ended_ = false;                  // the whole range went out
  std::function<void(std::expected<std::string_view, std::string>)> waiter_;
};

}  // namespace wharf::cache
