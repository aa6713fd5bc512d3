// The LISTEN connection of cache/pg/pg_listener.hpp: a small state machine on the event loop.
#include "cache/pg/pg_listener.hpp"

#include <event2/event.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "cache/pg/pg_conn.hpp"

namespace wharf::cache::pg {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kHeartbeatEvery = std::chrono::seconds(3);
constexpr auto kHeartbeatTimeout = std::chrono::seconds(6);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

std::string conn_error(PGconn* c) {
  std::string e = c ? PQerrorMessage(c) : "out of memory";
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

}  // namespace

void Listener::EventFree::operator()(event* e) const noexcept { event_free(e); }
void Listener::ConnFinish::operator()(PGconn* c) const noexcept { PQfinish(c); }

std::unique_ptr<Listener> Listener::start(event_base* base, std::string dsn, std::string channel, OnNotify on_notify,
                                          OnState on_state) {
  std::unique_ptr<Listener> l(
      new Listener(base, std::move(dsn), std::move(channel), std::move(on_notify), std::move(on_state)));
  l->tick_.reset(event_new(base, -1, EV_PERSIST, &Listener::tick_cb, l.get()));
  timeval every{1, 0};
  event_add(l->tick_.get(), &every);
  l->connect();
  return l;
}

Listener::Listener(event_base* base, std::string dsn, std::string channel, OnNotify on_notify, OnState on_state)
    : base_(base),
      dsn_(std::move(dsn)),
      channel_(std::move(channel)),
      on_notify_(std::move(on_notify)),
      on_state_(std::move(on_state)) {}

Listener::~Listener() = default;

void Listener::io_cb(int, short, void* self) { static_cast<Listener*>(self)->on_io(); }
void Listener::tick_cb(int, short, void* self) { static_cast<Listener*>(self)->on_tick(); }

void Listener::connect() {
  // dbname is expanded from the DSN (a URI or key=value string); application_name tells operators (and
  // pg_stat_activity) which connection this is.
  const char* keys[] = {"dbname", "application_name", nullptr};
  const char* values[] = {dsn_.c_str(), "wharf-listen", nullptr};
  conn_.reset(PQconnectStartParams(keys, values, 1));
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) return broken("cannot start connecting: " + conn_error(conn_.get()));
  phase_ = Phase::Connecting;
  phase_since_ = Clock::now();
  watch(EV_WRITE);  // libpq: start as if PQconnectPoll had said PGRES_POLLING_WRITING
}

void Listener::watch(short what) {
  if (io_) event_del(io_.get());
  io_.reset(event_new(base_, PQsocket(conn_.get()), what, &Listener::io_cb, this));
  if (!io_ || event_add(io_.get(), nullptr) != 0) broken("cannot watch the socket");
}

void Listener::poll_connect() {
  switch (PQconnectPoll(conn_.get())) {
    case PGRES_POLLING_READING:
      return watch(EV_READ);
    case PGRES_POLLING_WRITING:
      return watch(EV_WRITE);
    case PGRES_POLLING_OK:
      return subscribe();
    default:
      return broken("cannot connect: " + conn_error(conn_.get()));
  }
}

void Listener::subscribe() {
  if (PQsetnonblocking(conn_.get(), 1) != 0) return broken("cannot make the connection non-blocking");
  const std::string sql = "LISTEN " + channel_;
  if (!PQsendQuery(conn_.get(), sql.c_str())) return broken("cannot send LISTEN: " + conn_error(conn_.get()));
  if (PQflush(conn_.get()) < 0) return broken("cannot send LISTEN: " + conn_error(conn_.get()));
  phase_ = Phase::Subscribing;
  phase_since_ = Clock::now();
  watch(EV_READ | EV_PERSIST);
}

void Listener::on_io() {
  if (phase_ == Phase::Connecting) return poll_connect();
  if (phase_ == Phase::Subscribing || phase_ == Phase::Up) return read_input();
}

void Listener::read_input() {
  PGconn* c = conn_.get();
  if (!PQconsumeInput(c)) return broken("connection lost: " + conn_error(c));
  if (PQflush(c) < 0) return broken("connection lost: " + conn_error(c));
  // Results of the one query in flight (the LISTEN, or a heartbeat), once complete.
  bool failed = false;
  while ((phase_ == Phase::Subscribing || heartbeat_pending_) && !PQisBusy(c)) {
    Result r(PQgetResult(c));
    if (!r.raw()) {  // the query's last result
      if (failed) return broken("query failed: " + conn_error(c));
      if (phase_ == Phase::Subscribing) {
        phase_ = Phase::Up;
        backoff_ = std::chrono::milliseconds(250);
        heartbeat_pending_ = false;
        heartbeat_sent_ = Clock::now();
        spdlog::info("database: listening for index changes on {}", channel_);
        on_state_(true);
      } else {
        heartbeat_pending_ = false;
      }
      break;
    }
    auto st = PQresultStatus(r.raw());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) failed = true;
  }
  if (phase_ != Phase::Up) return;
  while (PGnotify* n = PQnotifies(c)) {
    std::string payload(n->extra ? n->extra : "");
    PQfreemem(n);
    on_notify_(payload);
    if (phase_ != Phase::Up || conn_.get() != c) return;  // the handler cannot break it, but stay safe
  }
}

void Listener::on_tick() {
  const auto now = Clock::now();
  switch (phase_) {
    case Phase::Waiting:
      if (now >= retry_at_) connect();
      return;
    case Phase::Connecting:
    case Phase::Subscribing:
      if (now - phase_since_ > kConnectTimeout) broken("no answer within 10 seconds");
      return;
    case Phase::Up:
      if (heartbeat_pending_) {
        if (now - heartbeat_sent_ > kHeartbeatTimeout) broken("no answer to the heartbeat within 6 seconds");
        return;
      }
      if (now - heartbeat_sent_ < kHeartbeatEvery) return;
      if (!PQsendQuery(conn_.get(), "SELECT 1") || PQflush(conn_.get()) < 0)
        return broken("cannot send the heartbeat: " + conn_error(conn_.get()));
      heartbeat_pending_ = true;
      heartbeat_sent_ = now;
      return;
  }
}

void Listener::broken(std::string_view why) {
  const bool was_up = phase_ == Phase::Up;
  // The socket's event may be the one running now: stop it, free it with the connection it watches.
  if (io_) event_del(io_.get());
  phase_ = Phase::Waiting;
  heartbeat_pending_ = false;
  retry_at_ = Clock::now() + backoff_;
  spdlog::warn("database: the LISTEN connection ({}) is down, retrying in {} ms: {}", channel_, backoff_.count(), why);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  if (was_up) {
    ++drops_;
    on_state_(false);
  }
  conn_.reset();
}

}  // namespace wharf::cache::pg
