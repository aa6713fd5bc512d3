#pragma once
// One dedicated PostgreSQL connection that LISTENs on a channel, driven by the event loop without ever
// blocking it: PQconnectStart/PQconnectPoll while connecting, then PQconsumeInput/PQnotifies whenever
// the socket is readable. A heartbeat query every few seconds notices a connection that went silent.
// When the connection breaks, the owner hears "down" at once (it must stop trusting anything the
// notifications kept fresh) and the listener reconnects with a growing delay; "up" comes again only
// after the LISTEN is in place. Loop thread only.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct event_base;
struct event;
typedef struct pg_conn PGconn;  // libpq's connection (libpq-fe.h, included only by cache/pg/*.cpp)

namespace wharf::cache::pg {

class Listener {
 public:
  // Called on the loop with each notification's payload.
  using OnNotify = std::function<void(std::string_view payload)>;
  // Called on the loop when the LISTEN is in place (true) and when the connection is lost (false).
  using OnState = std::function<void(bool up)>;

  // Starts connecting to `dsn` and LISTENing on `channel` (an SQL identifier wharf chooses, not user
  // input). Never fails: a connection that cannot be had is retried, and `on_state(true)` never comes.
  static std::unique_ptr<Listener> start(event_base* base, std::string dsn, std::string channel, OnNotify on_notify,
                                         OnState on_state);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // True while the LISTEN is in place and the connection answers.
  bool up() const { return phase_ == Phase::Up; }
  // Connections lost since start.
  uint64_t drops() const { return drops_; }

 private:
  enum class Phase { Waiting, Connecting, Subscribing, Up };
  Listener(event_base* base, std::string dsn, std::string channel, OnNotify on_notify, OnState on_state);
  void connect();
  void poll_connect();
  void watch(short what);
  void on_io();
  void on_tick();
  void subscribe();
  void read_input();
  void broken(std::string_view why);
  static void io_cb(int, short, void* self);
  static void tick_cb(int, short, void* self);

  struct EventFree {
    void operator()(event* e) const noexcept;
  };
  struct ConnFinish {
    void operator()(PGconn* c) const noexcept;
  };
  event_base* base_;
  const std::string dsn_;
  const std::string channel_;
  OnNotify on_notify_;
  OnState on_state_;
  std::unique_ptr<PGconn, ConnFinish> conn_;
  std::unique_ptr<event, EventFree> io_;
  std::unique_ptr<event, EventFree> tick_;
  Phase phase_ = Phase::Waiting;
  std::chrono::steady_clock::time_point phase_since_{};
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{250};
  bool heartbeat_pending_ = false;
  std::chrono::steady_clock::time_point heartbeat_sent_{};
  uint64_t drops_ = 0;
};

}  // namespace wharf::cache::pg
