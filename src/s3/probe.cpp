// The probe runs its four steps one after another on its own event_base and maps failures to config keys.
#include "src/s3/probe.hpp"

#include <event2/event.h>
#include <openssl/rand.h>

#include <memory>

namespace wharf::s3 {

namespace {

struct BaseFree {
  void operator()(event_base* b) const { event_base_free(b); }
};

// The config key a failure points at, with the reason in words.
std::string explain(const config::S3Storage& s3, const S3Error& e, const std::string& step) {
  const std::string endpoint = s3.endpoint_url();
  if (e.status == 0) {
    const char* key = s3.region_endpoint.empty() ? "storage.s3.region" : "storage.s3.regionendpoint";
    return std::string(key) + ": cannot reach " + endpoint + " (" + step + "): " + e.message;
  }
  const std::string why = " (" + step + ": " + e.str() + ")";
  if (e.code == "InvalidAccessKeyId") return "storage.s3.accesskey: " + endpoint + " does not know this access key" + why;
  if (e.code == "SignatureDoesNotMatch") {
    return "storage.s3.secretkey: the request signature does not match; the secret key is wrong for this access key" + why;
  }
  if (e.code == "NoSuchBucket") return "storage.s3.bucket: bucket \"" + s3.bucket + "\" does not exist at " + endpoint + why;
  if (e.code == "AccessDenied") {
    return "storage.s3.bucket: access to bucket \"" + s3.bucket + "\" is denied for storage.s3.accesskey" + why;
  }
  if (e.code == "AuthorizationHeaderMalformed" || e.code == "PermanentRedirect" || e.code == "IllegalLocationConstraintException") {
    return "storage.s3.region: the bucket is not in region \"" + s3.region + "\"" + why;
  }
  if (e.code == "RequestTimeTooSkewed") return "storage.s3: this machine's clock is too far from the server's" + why;
  if (e.code == "InvalidStorageClass") return "storage.s3.storageclass: refused by the server" + why;
  if (s3.encrypt && (e.code == "InvalidArgument" || e.code == "InvalidRequest" || e.code == "NotImplemented")) {
    return "storage.s3.encrypt: the server refused a write with server-side encryption" + why;
  }
  return "storage.s3.bucket: bucket \"" + s3.bucket + "\" at " + endpoint + " failed" + why;
}

// Runs the steps in order; each ends by calling next() or finish(problem).
struct Probe {
  const config::S3Storage& s3;
  event_base* base;
  std::unique_ptr<Client> client;
  std::string key;
  std::string content;
  std::string got;
  std::vector<std::string> problems;
  bool done = false;

  void finish(std::string problem) {
    if (!problem.empty()) problems.push_back(std::move(problem));
    done = true;
    event_base_loopbreak(base);
  }

  // HEAD has no body to name the cause: a GET of the bucket's listing brings S3's error code.
  void diagnose(const S3Error& head_error) {
    ListRequest req;
    req.max_keys = 1;
    client->list_objects(req, [this, head_error](std::expected<ListPage, S3Error> r) {
      if (r) return finish(explain(s3, head_error, "HEAD bucket"));
      finish(explain(s3, r.error(), "GET bucket"));
    });
  }

  void start() {
    client->head_bucket([this](std::expected<void, S3Error> r) {
      if (!r) {
        if (r.error().status == 0 || r.error().status == 404) return finish(explain(s3, r.error(), "HEAD bucket"));
        return diagnose(r.error());
      }
      put();
    });
  }

  void put() {
    client->put_object(key, proxy::RequestBody::from_string(content), PutOptions{}, [this](std::expected<std::string, S3Error> r) {
      if (!r) return finish(explain(s3, r.error(), "PUT " + client->full_key(key)));
      get();
    });
  }

  void get() {
    GetHandlers h;
    h.on_data = [this](const char* p, size_t n) {
      if (got.size() + n > content.size()) return false;
      got.append(p, n);
      return true;
    };
    h.on_done = [this](std::expected<void, S3Error> r) {
      if (!r) return finish(explain(s3, r.error(), "GET " + client->full_key(key)));
      if (got != content) {
        return finish("storage.s3.bucket: the probe object " + client->full_key(key) + " read back different bytes");
      }
      remove();
    };
    client->get_object(key, std::nullopt, std::move(h));
  }

  void remove() {
    client->delete_object(key, [this](std::expected<void, S3Error> r) {
      if (!r) return finish(explain(s3, r.error(), "DELETE " + client->full_key(key)));
      finish("");
    });
  }
};

}  // namespace

ClientConfig client_config(const config::S3Storage& s3) {
  ClientConfig c;
  c.endpoint = s3.endpoint_url();
  c.region = s3.region;
  c.bucket = s3.bucket;
  c.credentials = Credentials{s3.access_key, s3.secret_key, s3.session_token};
  c.addressing = s3.path_style() ? Addressing::PathStyle : Addressing::VirtualHost;
  c.root = s3.root_directory;
  c.verify_tls = !s3.skip_verify;
  if (s3.encrypt) c.encrypt = s3.key_id.empty() ? "AES256" : "aws:kms";
  c.kms_key_id = s3.key_id;
  c.storage_class = s3.storage_class;
  return c;
}

std::vector<std::string> probe_bucket(const config::S3Storage& s3) {
  std::unique_ptr<event_base, BaseFree> base(event_base_new());
  if (!base) return {"storage.s3: cannot create an event loop for the bucket check"};
  auto http = proxy::HttpClient::create(base.get());
  if (!http) return {"storage.s3: " + http.error()};
  ClientConfig cfg = client_config(s3);
  cfg.connect_timeout = std::chrono::seconds(5);
  cfg.first_byte_timeout = std::chrono::seconds(15);
  cfg.stall_timeout = std::chrono::seconds(15);
  cfg.retry.attempts = 2;
  auto client = Client::create(base.get(), **http, std::move(cfg));
  if (!client) return {"storage.s3." + client.error()};
  unsigned char rnd[8];
  RAND_bytes(rnd, sizeof rnd);
  Probe probe{s3, base.get(), std::move(*client), "wharf-check-config/" + hex(std::string_view(reinterpret_cast<char*>(rnd), 8)),
              "wharf check-config probe\n", "", {}, false};
  probe.start();
  while (!probe.done) {
    const int rc = event_base_loop(base.get(), EVLOOP_ONCE);
    if (rc < 0) return {"storage.s3: the event loop failed during the bucket check"};
    if (rc == 1 && !probe.done) return {"storage.s3: the bucket check stopped without an answer"};
  }
  return probe.problems;
}

}  // namespace wharf::s3
