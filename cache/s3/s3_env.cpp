// Building the S3 store and the clients it runs on.
#include "cache/s3/s3_env.hpp"

#include "src/s3/probe.hpp"

namespace wharf::cache {

S3Env::~S3Env() {
  store.reset();
  bridge.reset();
  client.reset();
  http.reset();
}

std::string S3Env::probe_bucket() const {
  auto r = bridge->call<void>([](s3::Client& c, s3::Done<void> done) { return c.head_bucket(std::move(done)); });
  return r ? std::string() : "S3 bucket " + client->config().bucket + ": " + r.error().str();
}

std::expected<std::unique_ptr<S3Env>, std::string> open_s3_store(const config::Config& cfg, event_base* base,
                                                                 FsBlobStore local) {
  auto env = std::make_unique<S3Env>();
  const auto mode = base ? S3Bridge::Mode::Shared : S3Bridge::Mode::Private;
  if (!base) {
    env->own_base.reset(event_base_new());
    if (!env->own_base) return std::unexpected(std::string("storage.s3: cannot create an event loop"));
    base = env->own_base.get();
  }
  auto http = proxy::HttpClient::create(base);
  if (!http) return std::unexpected("storage.s3: cannot start the HTTP client: " + http.error());
  env->http = std::move(*http);
  auto ccfg = s3::client_config(cfg.s3);
  ccfg.observe = [stats = env->stats.get()](const std::string& op, int status, double secs) {
    stats->record(op, status, secs);
  };
  auto client = s3::Client::create(base, *env->http, std::move(ccfg));
  if (!client) return std::unexpected("storage.s3: " + client.error());
  env->client = std::move(*client);
  env->bridge = std::make_unique<S3Bridge>(base, *env->client, mode);
  S3BlobStore::Options opts;
  opts.chunk_size = cfg.s3.chunk_size;
  opts.copy_chunk_size = cfg.s3.multipart_copy_chunk_size;
  opts.copy_threshold = cfg.s3.multipart_copy_threshold;
  env->store = std::make_unique<S3BlobStore>(std::move(local), *env->bridge, opts);
  return env;
}

}  // namespace wharf::cache
