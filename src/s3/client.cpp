// The client's engine: addressing, signing, one HttpClient transfer per attempt, retries with backoff.
#include "src/s3/client.hpp"

#include <event2/event.h>

#include <algorithm>
#include <random>
#include <unordered_map>

#include "src/s3/client_call.hpp"
#include "src/s3/xml.hpp"

namespace wharf::s3 {

namespace {

constexpr size_t kMaxAnswer = 8u << 20;  // non-streamed answers (listings, errors)

struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

std::string normalize_root(std::string root) {
  while (root.starts_with('/')) root.erase(0, 1);
  while (root.ends_with('/')) root.pop_back();
  if (!root.empty()) root += '/';
  return root;
}

// Splits "http://host:port" into scheme and authority; nullopt if it is not such a URL (a path is refused).
std::optional<std::pair<std::string, std::string>> split_endpoint(std::string url) {
  while (url.ends_with('/')) url.pop_back();
  for (std::string_view scheme : {"http", "https"}) {
    const std::string prefix = std::string(scheme) + "://";
    if (url.starts_with(prefix)) {
      std::string authority = url.substr(prefix.size());
      if (authority.empty() || authority.find_first_of("/?#@ ") != std::string::npos) return std::nullopt;
      return std::make_pair(std::string(scheme), authority);
    }
  }
  return std::nullopt;
}

}  // namespace

struct Client::Impl {
  struct Op {
    uint64_t id = 0;
    Impl* owner = nullptr;
    Call call;
    std::string payload_hash;
    int attempt = 0;
    uint64_t transfer = 0;
    EventPtr timer;
    bool streaming = false;  // the answer goes to call.on_head/on_data
    bool too_big = false;
    Response resp;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  };

  // Reports a finished call to cfg.observe.
  void observed(const Op& op, int status) const {
    if (!cfg.observe) return;
    cfg.observe(op.call.op, status, std::chrono::duration<double>(std::chrono::steady_clock::now() - op.started).count());
  }

  Impl(event_base* b, proxy::HttpClient& h, ClientConfig c) : base(b), http(h), cfg(std::move(c)), rng(std::random_device{}()) {}

  ~Impl() {
    for (auto& [id, op] : ops)
      if (op->transfer != 0) http.cancel(op->transfer);
  }

  std::chrono::system_clock::time_point now() const {
    return cfg.clock ? cfg.clock() : std::chrono::system_clock::now();
  }

  // The authority the request goes to, and the path S3 signs (decoded).
  std::pair<std::string, std::string> target(const std::optional<std::string>& key) const {
    std::string path;
    std::string host = authority;
    if (cfg.addressing == Addressing::PathStyle) {
      path = "/" + cfg.bucket;
      if (key) path.append("/").append(root).append(*key);
    } else {
      host = cfg.bucket + "." + authority;
      path = "/";
      if (key) path.append(root).append(*key);
    }
    return {host, path};
  }

  uint64_t execute(Call call) {
    auto op = std::make_shared<Op>();
    op->id = next_id++;
    op->owner = this;
    if (!call.body) {
      op->payload_hash = std::string(kEmptySha256);
    } else if (!call.body->reader && call.body->fd < 0) {
      op->payload_hash = sha256_hex(call.body->bytes);
    } else {
      op->payload_hash = "UNSIGNED-PAYLOAD";
      if (call.body->reader) call.idempotent = false;  // a reader cannot be rewound
    }
    op->call = std::move(call);
    Op& ref = *op;
    ops.emplace(ref.id, std::move(op));
    attempt(ref);
    return ref.id;
  }

  void attempt(Op& op) {
    ++op.attempt;
    op.streaming = false;
    op.too_big = false;
    op.resp = Response{};
    const Call& call = op.call;
    const auto [host, path] = target(call.key);
    const std::string date = amz_date(now());
    SignInput in{call.method, path, call.query, {}, op.payload_hash};
    in.headers.emplace_back("host", host);
    in.headers.emplace_back("x-amz-date", date);
    in.headers.emplace_back("x-amz-content-sha256", op.payload_hash);
    if (!cfg.credentials.session_token.empty()) in.headers.emplace_back("x-amz-security-token", cfg.credentials.session_token);
    for (const auto& h : call.headers) in.headers.push_back(h);
    proxy::HttpRequest req;
    req.method = call.method;
    req.url = scheme + "://" + host + uri_encode(path, false);
    if (!call.query.empty()) req.url.append("?").append(canonical_query(call.query));
    for (const auto& [k, v] : in.headers) req.headers.push_back(k + ": " + v);
    req.headers.push_back("Authorization: " + authorization(cfg.credentials, Scope{cfg.region, "s3"}, date, in));
    req.connect_timeout = cfg.connect_timeout;
    req.first_byte_timeout = cfg.first_byte_timeout;
    req.stall_timeout = cfg.stall_timeout;
    req.verify_tls = cfg.verify_tls;
    if (call.body) {
      req.body = *call.body;
    } else if (call.method == "PUT" || call.method == "POST") {
      req.body = proxy::RequestBody::from_string("");  // Content-Length: 0 (S3 answers 411 without it)
    }
    const uint64_t id = op.id;
    proxy::HttpCallbacks cb;
    // Each callback holds its Op alive while it runs: the caller may cancel the call from inside.
    cb.on_head = [this, id](const proxy::HttpHead& head) {
      std::shared_ptr<Op> o = find(id);
      if (o == nullptr) return;
      o->resp.status = head.status;
      o->resp.head = head;
      if (o->call.on_head && head.status >= 200 && head.status < 300) {
        o->streaming = true;
        o->call.on_head(head);
      }
    };
    cb.on_data = [this, id](const char* p, size_t n) {
      std::shared_ptr<Op> o = find(id);
      if (o == nullptr) return false;
      if (o->streaming) return o->call.on_data ? o->call.on_data(p, n) : true;
      if (o->resp.body.size() + n > kMaxAnswer) {
        o->too_big = true;
        return false;
      }
      o->resp.body.append(p, n);
      return true;
    };
    if (call.hold) {  // backpressure of a streamed GET (only once its 2xx head went to the caller)
      cb.hold = [this, id] {
        std::shared_ptr<Op> o = find(id);
        return o != nullptr && o->streaming && o->call.hold();
      };
    }
    cb.on_done = [this, id](bool ok, const std::string& error) { on_done(id, ok, error); };
    op.transfer = http.start(std::move(req), std::move(cb));
  }

  void on_done(uint64_t id, bool ok, const std::string& error) {
    std::shared_ptr<Op> op = find(id);
    if (op == nullptr) return;
    op->transfer = 0;
    if (op->too_big) {
      S3Error e = error_from_response(op->resp.status, "");
      e.message = "answer larger than " + std::to_string(kMaxAnswer) + " bytes";
      return fail(id, std::move(e));
    }
    if (!ok) {
      S3Error e = transport_error(error);
      if (op->streaming) {  // the caller has seen the head: no second attempt
        e.attempts = op->attempt;
        return fail(id, std::move(e));
      }
      return retry_or_fail(*op, std::move(e));
    }
    if (op->streaming) return succeed(id);
    const int status = op->resp.status;
    if (status < 200 || status >= 300) {
      return retry_or_fail(*op, error_from_response(status, op->resp.body, op->call.not_found_code));
    }
    if (op->call.error_in_200 && op->resp.body.find("<Error") != std::string::npos) {
      XmlLimits limits;
      limits.max_bytes = kMaxAnswer;
      if (auto doc = parse_xml(op->resp.body, limits); doc && doc->name == "Error") {
        S3Error e = error_from_response(500, op->resp.body);  // S3 failed after sending 200: retry as a 5xx
        return retry_or_fail(*op, std::move(e));
      }
    }
    succeed(id);
  }

  void retry_or_fail(Op& op, S3Error e) {
    e.attempts = op.attempt;
    if (!e.retryable() || !op.call.idempotent || op.attempt >= std::max(1, cfg.retry.attempts)) return fail(op.id, std::move(e));
    // Full jitter: a random wait up to min(cap, base * 2^(attempt-1)).
    int64_t ceiling = std::max<int64_t>(cfg.retry.base.count(), 1);
    for (int i = 1; i < op.attempt && ceiling < cfg.retry.cap.count(); ++i) ceiling *= 2;
    ceiling = std::min<int64_t>(ceiling, cfg.retry.cap.count());
    const int64_t wait = std::uniform_int_distribution<int64_t>(ceiling / 2, std::max<int64_t>(ceiling, 1))(rng);
    if (!op.timer) op.timer.reset(evtimer_new(base, on_retry_timer, &op));
    if (!op.timer) return fail(op.id, std::move(e));
    const timeval tv{static_cast<time_t>(wait / 1000), static_cast<suseconds_t>((wait % 1000) * 1000)};
    evtimer_add(op.timer.get(), &tv);
  }

  static void on_retry_timer(evutil_socket_t, short, void* arg) {
    auto* op = static_cast<Op*>(arg);
    op->owner->attempt(*op);
  }

  std::shared_ptr<Op> find(uint64_t id) {
    const auto it = ops.find(id);
    return it == ops.end() ? nullptr : it->second;
  }

  std::shared_ptr<Op> take(uint64_t id) {
    const auto it = ops.find(id);
    if (it == ops.end()) return nullptr;
    std::shared_ptr<Op> op = std::move(it->second);
    ops.erase(it);
    return op;
  }

  void succeed(uint64_t id) {
    std::shared_ptr<Op> op = take(id);
    if (op) observed(*op, op->resp.status);
    if (op && op->call.done) op->call.done(std::move(op->resp));
  }

  void fail(uint64_t id, S3Error e) {
    std::shared_ptr<Op> op = take(id);
    if (op) observed(*op, e.status);
    if (op && op->call.done) op->call.done(std::unexpected(std::move(e)));
  }

  event_base* base;
  proxy::HttpClient& http;
  ClientConfig cfg;
  std::string scheme;
  std::string authority;
  std::string root;
  std::unordered_map<uint64_t, std::shared_ptr<Op>> ops;
  uint64_t next_id = 1;
  std::minstd_rand rng;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

std::expected<std::unique_ptr<Client>, std::string> Client::create(event_base* base, proxy::HttpClient& http,
                                                                   ClientConfig cfg) {
  if (cfg.bucket.empty()) return std::unexpected("bucket: must not be empty");
  if (cfg.region.empty()) return std::unexpected("region: must not be empty");
  if (cfg.credentials.access_key.empty()) return std::unexpected("accesskey: must not be empty");
  if (cfg.credentials.secret_key.empty()) return std::unexpected("secretkey: must not be empty");
  if (cfg.endpoint.empty()) cfg.endpoint = "https://s3." + cfg.region + ".amazonaws.com";
  auto parts = split_endpoint(cfg.endpoint);
  if (!parts) return std::unexpected("regionendpoint: must be an http:// or https:// URL without a path, got \"" + cfg.endpoint + "\"");
  auto impl = std::make_unique<Impl>(base, http, std::move(cfg));
  impl->scheme = parts->first;
  impl->authority = parts->second;
  impl->root = normalize_root(impl->cfg.root);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

uint64_t Client::execute(Call call) { return impl_->execute(std::move(call)); }

void Client::cancel(uint64_t id) {
  std::shared_ptr<Impl::Op> op = impl_->take(id);
  if (!op) return;
  op->timer.reset();  // a pending retry never fires
  if (op->transfer != 0) impl_->http.cancel(op->transfer);
}

void Client::resume(uint64_t id) {
  if (auto op = impl_->find(id); op && op->transfer != 0) impl_->http.resume(op->transfer);
}

std::string Client::full_key(const std::string& key) const { return impl_->root + key; }

const ClientConfig& Client::config() const { return impl_->cfg; }

event_base* Client::base() const { return impl_->base; }

std::string Client::presign_get(const std::string& key, std::chrono::seconds expires) const {
  const auto [host, path] = impl_->target(key);
  SignInput in{"GET", path, {}, {{"host", host}}, "UNSIGNED-PAYLOAD"};
  const std::string query = presign_query(impl_->cfg.credentials, Scope{impl_->cfg.region, "s3"}, amz_date(impl_->now()), expires, in);
  return impl_->scheme + "://" + host + uri_encode(path, false) + "?" + query;
}

}  // namespace wharf::s3
