#pragma once
// One client connection of http::Server (internal to src/http): parses requests, streams bodies, writes
// responses in order, enforces the header deadline and the minimum body rate, and closes with a
// bounded lingering close so that a client still sending a body reads the answer instead of a reset.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "src/http/file_body.hpp"
#include "src/http/parse.hpp"
#include "src/http/server.hpp"
#include "src/http/stream_blocks.hpp"

struct bufferevent;
struct event;

namespace wharf::http {

class Connection {
 public:
  // Takes ownership of `bev`; registers itself with `srv`, which deletes it at the latest in ~Server.
  Connection(Server* srv, bufferevent* bev, std::string peer, bool tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends a response head (and body unless streaming) for the current exchange; ignored for others.
  void respond(Exchange& ex, Response r, bool streaming = false);
  // Starts feeding the request body to `sink`; aborts the sink if `ex` is not the current exchange.
  void read_body(Exchange& ex, std::unique_ptr<BodySink> sink);
  // Stops feeding the body of `ex` after the current piece (and reading the socket) until resume_body().
  void pause_body(Exchange& ex);
  // Feeds the body of `ex` again after pause_body(); buffered bytes at once.
  void resume_body(Exchange& ex);
  // Queues a file region of a streamed response; aborts the exchange if the fd cannot be duplicated.
  void stream_file(Exchange& ex, int fd, uint64_t offset, uint64_t len);
  // Queues bytes of a streamed response (copied); closes the connection if they cannot be queued.
  void stream_data(Exchange& ex, std::string_view bytes);
  // Bytes queued for the socket, including file bytes not read yet.
  size_t backlog() const;
  // Finishes a streamed response once its queued bytes are written.
  void end_stream(Exchange& ex);
  // Drops the connection at once.
  void abort(Exchange& ex);

  static constexpr std::chrono::seconds kLingerTime{5};       // longest lingering close
  static constexpr std::chrono::seconds kLingerIdle{2};       // ... or this long without a byte
  static constexpr uint64_t kLingerBytes = 64ull << 20;       // ... or this many bytes discarded

 private:
  enum class State { Headers, Handling, Body, Waiting, Streaming, Writing, Lingering };
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kStreamLowWater = 256 * 1024;
  // Largest single socket write of a streamed body on plain TCP (libevent's default is 16 KiB).
  static constexpr size_t kStreamWrite = 256 * 1024;
  static constexpr size_t kInputHighWater = 1024 * 1024;
  // Pool path: refill the output from the file when it drops to kPumpLow, up to kPumpHigh bytes.
  static constexpr size_t kPumpLow = 128 * 1024;
  static constexpr size_t kPumpHigh = 256 * 1024;
  // Request bodies on plain TCP are read straight from the socket this much at a time (libevent 2.1's
  // bufferevent reads 4 KiB per readiness event, which turns a large push into a syscall storm).
  static constexpr size_t kBulkRead = 128 * 1024;
  // Who reads the socket: the bufferevent, the bulk body reader (plain TCP, body), or nobody (paused).
  enum class ReadMode { Bev, Bulk, Off };

  static void on_read_cb(bufferevent*, void* arg);
  static void on_write_cb(bufferevent*, void* arg);
  static void on_event_cb(bufferevent*, short what, void* arg);
  static void on_timer_cb(int, short, void* arg);
  static void on_ktls_writable_cb(int, short what, void* arg);
  static void on_bulk_read_cb(int, short what, void* arg);

  // Runs `f` and deletes the connection afterwards if it asked to close (else makes the right party
  // read the socket for the new state); re-entrancy safe.
  template <class F>
  void guarded(F f) {
    ++depth_;
    f(this);
    --depth_;
    if (depth_ != 0) return;
    if (dead_) delete this;
    else sync_reader();
  }
  void kill() {
    dead_ = true;
    if (depth_ == 0) delete this;
  }

  void process();
  // Switches the socket's reader to what the state asks for (ReadMode); no system call if unchanged.
  void sync_reader();
  // The bulk body reader: one large readv into the input buffer, then process().
  void read_bulk(short what);
  // Moves bytes OpenSSL has decrypted but libevent has not taken into the input: libevent 2.1 may leave
  // them there when its reading is switched off (a paused body), and no socket event would bring them
  // out if the client has sent everything.
  void pull_ssl_pending();
  bool parse_headers();
  void feed_body();
  void finish_body();
  void on_written();
  void on_event(short what);
  void on_timer();
  void arm_timer(Clock::duration after);
  void time_out(std::string_view what);
  void start_linger();
  void discard_input();
  void send_simple_error(int status, std::string_view msg);
  void send_raw_and_close(std::string_view raw, int status = 400);
  // respond() inside the deletion guard.
  void respond_now(Exchange& ex, Response r, bool streaming);
  // Sends file bytes [offset, offset+len) of `fd` (owned) after what is queued, by the body path.
  void queue_file(int fd, uint64_t offset, uint64_t len);
  // Moves queued file bytes on (Pool: into the output; KernelTls: to the socket); false if that failed
  // and the connection is closing.
  bool pump_files();
  // The output's low watermark for the current state (file refill, streaming refill, or empty).
  void update_watermark();

  Server* srv_;
  bufferevent* bev_;
  event* timer_ = nullptr;  // header deadline, body rate checks, lingering close (one per connection)
  std::string peer_;
  bool tls_;
  State state_ = State::Headers;
  ExchangePtr ex_;
  std::unique_ptr<BodySink> sink_;
  BodyDecoder decoder_;
  HeadScanner scanner_;
  Clock::time_point head_start_{};  // first byte of the current head (or accept); unset: none yet
  uint64_t body_bytes_ = 0;         // request body bytes read so far
  uint64_t rate_mark_ = 0;          // body_bytes_ at the start of the current rate period
  uint64_t linger_bytes_ = 0;
  Clock::time_point linger_end_{};
  bool body_done_ = true;  // the current request's body has been consumed entirely
  bool close_after_ = false;
  bool linger_ = false;    // the client may still be sending: linger before closing
  bool peer_eof_ = false;  // the client half-closed
  int status_ = 0;
  uint64_t bytes_ = 0;
  std::string cache_status_;
  int depth_ = 0;
  bool dead_ = false;
  FileQueue files_;                 // file regions still to send (TLS paths)
  event* ktls_write_ = nullptr;     // KernelTls path: the socket can take more (created on first use)
  size_t write_low_ = 0;            // the output's low watermark now
  event* bulk_ = nullptr;           // the bulk body reader's read event (created on first use)
  ReadMode read_mode_ = ReadMode::Bev;
  bool body_paused_ = false;        // the sink asked to stop the body for now
  StreamBlocks stream_blocks_;      // pooled blocks behind stream_data()
};

}  // namespace wharf::http
