// The libcurl multi interface on libevent: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
// and when to wake it (CURLMOPT_TIMERFUNCTION); we hand readiness back via curl_multi_socket_action.
// User callbacks may start or cancel transfers from anywhere: while curl is running (inside
// curl_multi_socket_action) those requests are queued and applied once it has returned, and completed
// transfers are only processed after that, so curl is never re-entered.
#include "proxy/http_client.hpp"

#include <curl/curl.h>
#include <event2/event.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "proxy/http_text.hpp"

#ifndef WHARF_VERSION
#define WHARF_VERSION "0.0.0-dev"
#endif

namespace wharf::proxy {

namespace {

struct EasyFree {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct MultiFree {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
using EasyPtr = std::unique_ptr<CURL, EasyFree>;
using MultiPtr = std::unique_ptr<CURLM, MultiFree>;
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;
using EventPtr = std::unique_ptr<event, EventFree>;

// Holds a reference on libcurl's global state (curl_global_init is reference counted).
class CurlGlobal {
 public:
  CurlGlobal() : ok_(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {}
  ~CurlGlobal() {
    if (ok_) curl_global_cleanup();
  }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

timeval to_timeval(std::chrono::milliseconds ms) {
  const long long v = std::max<long long>(ms.count(), 0);
  return timeval{static_cast<time_t>(v / 1000), static_cast<suseconds_t>((v % 1000) * 1000)};
}

std::string seconds_text(std::chrono::milliseconds ms) {
  std::string text = std::to_string(ms.count() / 1000);
  if (ms.count() % 1000 != 0) text.append(".").append(std::to_string(ms.count() % 1000 / 100));
  return text.append(" s");
}

}  // namespace

RequestBody RequestBody::from_string(std::string data) {
  RequestBody b;
  b.size = data.size();
  b.bytes = std::move(data);
  return b;
}

RequestBody RequestBody::from_reader(uint64_t size, BodyReader reader) {
  RequestBody b;
  b.size = size;
  b.reader = std::move(reader);
  return b;
}

RequestBody RequestBody::from_fd(int fd, uint64_t offset, uint64_t length) {
  RequestBody b;
  b.size = length;
  b.fd = fd;
  b.offset = offset;
  return b;
}

std::string_view HttpHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

struct HttpClient::Impl {
  // Where a transfer is, for the watchdog: connecting (curl's connect timeout applies), waiting for the
  // status line (first-byte timeout), or receiving the head and body (stall timeout).
  enum class Phase { Connecting, Waiting, Receiving };

  struct Transfer {
    uint64_t id = 0;
    Impl* owner = nullptr;
    HttpCallbacks cb;
    HttpHead head;
    SlistPtr headers;  // must outlive `easy`'s use: declared before it, destroyed after
    EasyPtr easy;
    EventPtr watchdog;
    Phase phase = Phase::Connecting;
    std::chrono::milliseconds first_byte{0};
    std::chrono::milliseconds stall{0};
    std::chrono::steady_clock::time_point last_activity;
    std::chrono::steady_clock::time_point waiting_since;  // the whole request was sent
    std::optional<RequestBody> body;
    uint64_t sent = 0;       // body bytes handed to curl
    bool body_done = true;   // no body, or all of it handed to curl
    std::string body_error;  // why reading the body failed
    bool in_multi = false;
    bool head_done = false;
    bool cancelled = false;
    bool aborted = false;  // on_data returned false
    bool held = false;     // cb.hold paused the download (no stall timeout meanwhile)
    char errbuf[CURL_ERROR_SIZE] = {};

    void arm(std::chrono::milliseconds ms) {
      const timeval tv = to_timeval(ms);
      evtimer_add(watchdog.get(), &tv);
    }
  };

  Impl(event_base* b, HttpClientOptions o) : base(b), opts(std::move(o)) {
    if (opts.user_agent.empty()) opts.user_agent = default_user_agent();
  }

  ~Impl() {
    for (auto& [id, t] : transfers)
      if (t->in_multi) curl_multi_remove_handle(multi.get(), t->easy.get());
    transfers.clear();
    if (multi) {
      curl_multi_setopt(multi.get(), CURLMOPT_SOCKETFUNCTION, static_cast<curl_socket_callback>(nullptr));
      curl_multi_setopt(multi.get(), CURLMOPT_TIMERFUNCTION, static_cast<curl_multi_timer_callback>(nullptr));
    }
    multi.reset();  // closes pooled connections
    sockets.clear();
    timer.reset();
    deferred.reset();
  }

  // --- curl → libevent ---

  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* self = static_cast<Impl*>(userp);
    if (what == CURL_POLL_REMOVE) {
      self->sockets.erase(s);
      return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) kind |= EV_READ;
    if (what & CURL_POLL_OUT) kind |= EV_WRITE;
    EventPtr& ev = self->sockets[s];
    if (ev) {
      event_del(ev.get());
      event_assign(ev.get(), self->base, s, kind, on_socket_event, self);
    } else {
      ev.reset(event_new(self->base, s, kind, on_socket_event, self));
      if (!ev) return -1;
    }
    event_add(ev.get(), nullptr);
    return 0;
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      evtimer_del(self->timer.get());
    } else {
      const timeval tv = to_timeval(std::chrono::milliseconds(timeout_ms));
      evtimer_add(self->timer.get(), &tv);
    }
    return 0;
  }

  static void on_socket_event(evutil_socket_t fd, short what, void* arg) {
    int flags = 0;
    if (what & EV_READ) flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
    static_cast<Impl*>(arg)->drive(fd, flags);
  }

  static void on_timer_event(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->drive(CURL_SOCKET_TIMEOUT, 0); }

  static void on_deferred(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    for (auto& [id, error] : std::exchange(self->failed, {})) self->finish(id, false, error);
  }

  static void on_watchdog(evutil_socket_t, short, void* arg) {
    auto* t = static_cast<Transfer*>(arg);
    Impl* self = t->owner;
    const auto now = std::chrono::steady_clock::now();
    if (t->held) {  // the consumer holds the download back: not a stall
      t->arm(t->stall);
      return;
    }
    if (t->phase == Phase::Waiting && t->body_done) {
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - t->waiting_since);
      if (waited < t->first_byte) {
        t->arm(t->first_byte - waited);
        return;
      }
      self->finish(t->id, false, "timeout: no response within " + seconds_text(t->first_byte));
      return;
    }
    // Receiving the response, or still sending the request body: both must keep moving.
    const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - t->last_activity);
    if (idle < t->stall) {
      t->arm(t->stall - idle);
      return;
    }
    const char* what = t->phase == Phase::Waiting ? "timeout: request body stalled for " : "timeout: no data for ";
    self->finish(t->id, false, what + seconds_text(t->stall));
  }

  // --- curl's per-transfer callbacks (always inside curl_multi_socket_action) ---

  static int on_prereq(void* clientp, char*, char*, int, int) {
    auto* t = static_cast<Transfer*>(clientp);
    if (t->phase == Phase::Connecting) {
      t->phase = Phase::Waiting;
      t->last_activity = t->waiting_since = std::chrono::steady_clock::now();
      t->arm(t->body_done ? t->first_byte : t->stall);
    }
    return CURL_PREREQFUNC_OK;
  }

  static size_t on_read(char* buf, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    if (t->cancelled || !t->body) return CURL_READFUNC_ABORT;
    const RequestBody& b = *t->body;
    const size_t cap = static_cast<size_t>(std::min<uint64_t>(size * n, b.size - t->sent));
    if (cap == 0) return 0;
    size_t got = 0;
    if (b.reader) {
      got = b.reader(buf, cap);
      if (got == kBodyPause) return CURL_READFUNC_PAUSE;
      if (got == kBodyAbort || got == 0 || got > cap) {
        t->aborted = true;
        return CURL_READFUNC_ABORT;
      }
    } else if (b.fd >= 0) {
      const ssize_t r = ::pread(b.fd, buf, cap, static_cast<off_t>(b.offset + t->sent));
      if (r <= 0) {
        t->body_error = r == 0 ? std::string("request body: file ended early") : std::string("request body: ") + std::strerror(errno);
        return CURL_READFUNC_ABORT;
      }
      got = static_cast<size_t>(r);
    } else {
      std::memcpy(buf, b.bytes.data() + t->sent, cap);
      got = cap;
    }
    t->sent += got;
    t->last_activity = std::chrono::steady_clock::now();
    if (t->sent == b.size) {
      t->body_done = true;
      t->waiting_since = t->last_activity;
      if (t->phase == Phase::Waiting) t->arm(t->first_byte);
    }
    return got;
  }

  static size_t on_header(char* buf, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    const size_t len = size * n;
    if (t->cancelled) return 0;
    if (t->head_done) return len;  // trailers
    const std::string_view raw(buf, len);
    if (raw.starts_with("HTTP/")) {
      t->head.headers.clear();
      if (t->phase != Phase::Receiving) {
        t->phase = Phase::Receiving;
        t->last_activity = std::chrono::steady_clock::now();
        t->arm(t->stall);
      }
      return len;
    }
    if (add_header_line(t->head.headers, raw)) return len;
    // the blank line ending a head
    long code = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &code);
    if (code < 200) {  // interim response (100 Continue...): the real head follows
      t->head.headers.clear();
      return len;
    }
    t->owner->deliver_head(*t, static_cast<int>(code));
    return t->cancelled ? 0 : len;
  }

  static size_t on_write(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    const size_t len = size * n;
    if (t->cancelled) return 0;
    t->last_activity = std::chrono::steady_clock::now();
    if (!t->head_done) {
      long code = 0;
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &code);
      t->owner->deliver_head(*t, static_cast<int>(code));
      if (t->cancelled) return 0;
    }
    if (t->cb.hold && t->cb.hold()) {
      t->held = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps the piece and offers it again after resume()
    }
    if (t->cb.on_data && !t->cb.on_data(p, len)) {
      t->aborted = true;
      return 0;
    }
    return t->cancelled ? 0 : len;
  }

  // --- driving ---

  void deliver_head(Transfer& t, int status) {
    t.head.status = status;
    t.head_done = true;
    if (t.cb.on_head) t.cb.on_head(t.head);
  }

  void drive(curl_socket_t fd, int flags) {
    int running = 0;
    in_curl = true;
    curl_multi_socket_action(multi.get(), fd, flags, &running);
    in_curl = false;
    settle();
  }

  // Applies cancels and starts queued while curl ran, then reports finished transfers.
  void settle() {
    while (true) {
      for (uint64_t id : std::exchange(doomed, {})) destroy(id);
      for (uint64_t id : std::exchange(to_add, {})) add(id);
      for (uint64_t id : std::exchange(to_resume, {})) unpause(id);
      if (!doomed.empty() || !to_add.empty()) continue;  // cancelled or started while unpausing
      int left = 0;
      CURLMsg* m = curl_multi_info_read(multi.get(), &left);
      if (m == nullptr) return;
      if (m->msg != CURLMSG_DONE) continue;
      void* priv = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
      complete(reinterpret_cast<uintptr_t>(priv), m->data.result);
    }
  }

  void complete(uint64_t id, CURLcode rc) {
    const auto it = transfers.find(id);
    if (it == transfers.end() || it->second->cancelled) return;
    Transfer& t = *it->second;
    if (rc == CURLE_OK && !t.head_done) {  // no header callback ran (should not happen over HTTP)
      long code = 0;
      curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &code);
      in_curl = true;  // queue any cancel/start from on_head: `t` stays valid
      deliver_head(t, static_cast<int>(code));
      in_curl = false;
      if (t.cancelled) return;  // destroyed by settle()
    }
    if (!t.body_error.empty()) return finish(id, false, t.body_error);
    if (t.aborted) return finish(id, false, "aborted");
    if (rc != CURLE_OK) {
      std::string error = curl_easy_strerror(rc);
      if (t.errbuf[0] != '\0') error += std::string(": ") + t.errbuf;
      return finish(id, false, error);
    }
    finish(id, true, "");
  }

  void add(uint64_t id) {
    const auto it = transfers.find(id);
    if (it == transfers.end() || it->second->cancelled) return;
    const CURLMcode rc = curl_multi_add_handle(multi.get(), it->second->easy.get());
    if (rc != CURLM_OK) return fail_later(id, curl_multi_strerror(rc));
    it->second->in_multi = true;
  }

  void fail_later(uint64_t id, std::string error) {
    failed.emplace_back(id, std::move(error));
    const timeval now{0, 0};
    evtimer_add(deferred.get(), &now);
  }

  std::unique_ptr<Transfer> take(uint64_t id) {
    const auto it = transfers.find(id);
    if (it == transfers.end()) return nullptr;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers.erase(it);
    if (t->in_multi) curl_multi_remove_handle(multi.get(), t->easy.get());
    return t;
  }

  void destroy(uint64_t id) { take(id).reset(); }

  void unpause(uint64_t id) {
    const auto it = transfers.find(id);
    if (it == transfers.end() || it->second->cancelled) return;
    Transfer& t = *it->second;
    t.held = false;
    t.last_activity = std::chrono::steady_clock::now();
    // Unpausing may deliver held data right here (callbacks that cancel are deferred, `t` stays valid);
    // a failure then ends the transfer.
    const bool outer = std::exchange(in_curl, true);
    const CURLcode rc = curl_easy_pause(t.easy.get(), CURLPAUSE_CONT);
    in_curl = outer;
    if (rc != CURLE_OK && !t.cancelled) fail_later(id, std::string("resuming the transfer: ") + curl_easy_strerror(rc));
  }

  // Ends a transfer and calls its on_done last (the callback may start, cancel or even finish others).
  void finish(uint64_t id, bool ok, const std::string& error) {
    std::unique_ptr<Transfer> t = take(id);
    if (!t) return;
    auto done = std::move(t->cb.on_done);
    t.reset();
    if (done) done(ok, error);
  }

  std::string configure(Transfer& t, HttpRequest& req) {
    CURL* e = curl_easy_init();
    if (e == nullptr) return "curl_easy_init failed";
    t.easy.reset(e);
    t.watchdog.reset(evtimer_new(base, on_watchdog, &t));
    if (!t.watchdog) return "evtimer_new failed";
    const bool with_body = req.body.has_value() && req.method != "GET" && req.method != "HEAD";
    std::vector<std::string> header_lines = req.headers;
    if (with_body) header_lines.emplace_back("Expect:");  // no 100-continue round trip
    for (const std::string& h : header_lines) {
      curl_slist* l = curl_slist_append(t.headers.get(), h.c_str());  // returns the list's head
      if (l == nullptr) return "curl_slist_append failed";
      if (!t.headers) t.headers.reset(l);
    }
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption opt, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, value);
    };
    set(CURLOPT_URL, req.url.c_str());
    set(CURLOPT_PRIVATE, reinterpret_cast<void*>(static_cast<uintptr_t>(t.id)));
    set(CURLOPT_ERRORBUFFER, t.errbuf);
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_USERAGENT, opts.user_agent.c_str());
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
    if (req.min_rate > 0 && req.min_rate_period.count() > 0) {
      constexpr uint64_t kLongMax = static_cast<uint64_t>(std::numeric_limits<long>::max());
      set(CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(std::min(req.min_rate, kLongMax)));
      set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(std::min<int64_t>(req.min_rate_period.count(), 86'400)));
    }
    set(CURLOPT_SSL_VERIFYPEER, req.verify_tls ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, req.verify_tls ? 2L : 0L);
    if (!req.ca_file.empty()) set(CURLOPT_CAINFO, req.ca_file.c_str());
    set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_BUFFERSIZE, 256L * 1024);
    set(CURLOPT_HEADERFUNCTION, on_header);
    set(CURLOPT_HEADERDATA, &t);
    set(CURLOPT_WRITEFUNCTION, on_write);
    set(CURLOPT_WRITEDATA, &t);
    set(CURLOPT_PREREQFUNCTION, on_prereq);
    set(CURLOPT_PREREQDATA, &t);
    if (t.headers) set(CURLOPT_HTTPHEADER, t.headers.get());
    if (req.method == "HEAD") set(CURLOPT_NOBODY, 1L);
    else if (req.method == "GET") set(CURLOPT_HTTPGET, 1L);
    else set(CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (with_body) {
      t.body = std::move(req.body);
      t.body_done = t.body->size == 0;
      set(CURLOPT_UPLOAD, 1L);
      set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.body->size));
      set(CURLOPT_READFUNCTION, on_read);
      set(CURLOPT_READDATA, &t);
    }
    if (rc != CURLE_OK) return std::string("curl_easy_setopt: ") + curl_easy_strerror(rc);
    return "";
  }

  event_base* base;
  HttpClientOptions opts;
  CurlGlobal global;
  MultiPtr multi;
  EventPtr timer;     // curl's one timeout
  EventPtr deferred;  // reports transfers that could not start, outside start()
  std::unordered_map<curl_socket_t, EventPtr> sockets;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers;
  std::vector<uint64_t> doomed;                          // cancelled while curl ran
  std::vector<uint64_t> to_add;                          // started while curl ran
  std::vector<uint64_t> to_resume;                       // resumed while curl ran
  std::vector<std::pair<uint64_t, std::string>> failed;  // could not start
  uint64_t next_id = 1;
  bool in_curl = false;
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

std::expected<std::unique_ptr<HttpClient>, std::string> HttpClient::create(event_base* base, HttpClientOptions opts) {
  auto impl = std::make_unique<Impl>(base, std::move(opts));
  if (!impl->global.ok()) return std::unexpected("curl_global_init failed");
  impl->multi.reset(curl_multi_init());
  impl->timer.reset(evtimer_new(base, Impl::on_timer_event, impl.get()));
  impl->deferred.reset(evtimer_new(base, Impl::on_deferred, impl.get()));
  if (!impl->multi || !impl->timer || !impl->deferred) return std::unexpected("cannot create the HTTP client");
  CURLM* m = impl->multi.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, Impl::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, impl.get());
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, Impl::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, impl.get());
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, impl->opts.max_host_connections);
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, impl->opts.max_total_connections);
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

uint64_t HttpClient::start(HttpRequest req, HttpCallbacks cb) {
  Impl& s = *impl_;
  const uint64_t id = s.next_id++;
  auto t = std::make_unique<Impl::Transfer>();
  t->id = id;
  t->owner = &s;
  t->cb = std::move(cb);
  t->first_byte = req.first_byte_timeout;
  t->stall = req.stall_timeout;
  Impl::Transfer& ref = *t;
  s.transfers.emplace(id, std::move(t));
  if (std::string error = s.configure(ref, req); !error.empty()) {
    s.fail_later(id, std::move(error));
  } else if (s.in_curl) {
    s.to_add.push_back(id);
  } else {
    s.add(id);
  }
  return id;
}

void HttpClient::cancel(uint64_t id) {
  Impl& s = *impl_;
  const auto it = s.transfers.find(id);
  if (it == s.transfers.end() || it->second->cancelled) return;
  it->second->cancelled = true;
  if (s.in_curl) s.doomed.push_back(id);
  else s.destroy(id);
}

void HttpClient::resume(uint64_t id) {
  Impl& s = *impl_;
  if (s.in_curl) {
    s.to_resume.push_back(id);
    return;
  }
  s.in_curl = true;  // unpausing may run the transfer's callbacks right away
  s.unpause(id);
  s.in_curl = false;
  s.settle();
}

size_t HttpClient::active() const {
  return static_cast<size_t>(std::count_if(impl_->transfers.begin(), impl_->transfers.end(),
                                           [](const auto& kv) { return !kv.second->cancelled; }));
}

std::string default_user_agent() { return std::string("wharf/") + WHARF_VERSION; }

}  // namespace wharf::proxy
