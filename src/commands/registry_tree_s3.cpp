// A registry:2 storage tree in a bucket (the s3 driver's layout under its rootdirectory), read through the
// S3 client on a private event loop: repositories/ is listed once into a sorted key set (directories are
// key prefixes), link files are small GETs, blob data is read in ranged GETs (4 x 8 MiB in flight) as the
// importer pulls it.
#include <event2/event.h>

#include <cstdlib>
#include <functional>
#include <set>
#include <vector>

#include "cache/s3/s3_bridge.hpp"
#include "proxy/http_client.hpp"
#include "src/commands/registry_tree.hpp"
#include "src/s3/client.hpp"

namespace wharf::commands {
namespace {

constexpr std::string_view kV2 = "docker/registry/v2/";
constexpr size_t kMaxKeys = size_t(4) << 20;     // keys under repositories/
constexpr size_t kMaxLink = 256;                // "sha256:<64 hex>" is 71 bytes
constexpr uint64_t kRangeBytes = 8ull << 20;    // one ranged GET of blob data
constexpr size_t kParallelRanges = 4;           // ranged GETs in flight for one blob (32 MiB buffered)
constexpr int kMaxRepoDepth = 16;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// The loop, the clients and the bridge of one bucket; destroyed bridge first, loop last.
struct Conn {
  struct BaseFree {
    void operator()(event_base* b) const { event_base_free(b); }
  };
  std::unique_ptr<event_base, BaseFree> base;
  std::unique_ptr<proxy::HttpClient> http;
  std::unique_ptr<s3::Client> client;
  std::unique_ptr<cache::S3Bridge> bridge;
  ~Conn() {
    bridge.reset();
    client.reset();
    http.reset();
  }
  std::string where(const std::string& rel) const {
    return "s3://" + client->config().bucket + "/" + client->full_key(std::string(kV2) + rel);
  }
  // GET of `rel` (or a range of it) into memory, at most `max` bytes; a message naming the key on failure.
  std::expected<std::string, std::string> get(const std::string& rel, std::optional<s3::ByteRange> range, size_t max) const {
    return get_all(rel, {range}, max);
  }
  // GETs of `ranges` of `rel` at once (each at most `max` bytes), concatenated in order.
  std::expected<std::string, std::string> get_all(const std::string& rel, const std::vector<std::optional<s3::ByteRange>>& ranges,
                                                  size_t max) const {
    struct Piece {
      std::string bytes;
      bool too_big = false;
    };
    std::vector<std::shared_ptr<Piece>> pieces;
    std::vector<std::function<uint64_t(s3::Client&, s3::Done<void>)>> starts;
    const std::string key = std::string(kV2) + rel;
    for (const auto& range : ranges) {
      auto piece = pieces.emplace_back(std::make_shared<Piece>());
      starts.push_back([piece, key, range, max](s3::Client& c, s3::Done<void> done) {
        s3::GetHandlers h;
        h.on_head = [](const s3::ObjectInfo&) {};
        h.on_data = [piece, max](const char* p, size_t n) {
          if (piece->bytes.size() + n > max) {
            piece->too_big = true;
            return false;
          }
          piece->bytes.append(p, n);
          return true;
        };
        h.on_done = std::move(done);
        return c.get_object(key, range, std::move(h));
      });
    }
    auto results = bridge->call_all<void>(std::move(starts));
    std::string out;
    for (size_t i = 0; i < results.size(); ++i) {
      if (pieces[i]->too_big) return std::unexpected(where(rel) + " is larger than " + std::to_string(max) + " bytes");
      if (!results[i]) return std::unexpected("cannot read " + where(rel) + ": " + results[i].error().str());
      out += pieces[i]->bytes;
    }
    return out;
  }
};

class S3Reader final : public TreeReader {
 public:
  S3Reader(const Conn& conn, std::string rel, uint64_t size) : conn_(conn), rel_(std::move(rel)), size_(size) {}
  uint64_t size() const override { return size_; }
  std::expected<size_t, std::string> read(char* buf, size_t n) override {
    if (at_ == buffer_.size()) {
      if (offset_ >= size_) return 0;
      std::vector<std::optional<s3::ByteRange>> ranges;  // up to kParallelRanges at once
      for (uint64_t at = offset_; at < size_ && ranges.size() < kParallelRanges; at += kRangeBytes)
        ranges.emplace_back(s3::ByteRange{at, std::min(size_, at + kRangeBytes) - 1});
      auto got = conn_.get_all(rel_, ranges, size_t(kRangeBytes));
      if (!got) return std::unexpected(got.error());
      if (got->empty()) return std::unexpected(conn_.where(rel_) + " ended before its size");
      buffer_ = std::move(*got);
      at_ = 0;
      offset_ += buffer_.size();
    }
    const size_t k = std::min(n, buffer_.size() - at_);
    std::copy_n(buffer_.data() + at_, k, buf);
    at_ += k;
    return k;
  }

 private:
  const Conn& conn_;
  std::string rel_;
  uint64_t size_;
  uint64_t offset_ = 0;  // next byte to fetch
  std::string buffer_;
  size_t at_ = 0;
};

class S3Tree final : public RegistryTree {
 public:
  S3Tree(std::unique_ptr<Conn> conn, std::set<std::string> keys) : conn_(std::move(conn)), keys_(std::move(keys)) {}

  std::vector<std::string> repositories(std::vector<std::string>& problems) override {
    std::vector<std::string> out;
    std::function<void(const std::string&, int)> walk = [&](const std::string& name, int depth) {
      auto entries = list(name.empty() ? "repositories" : "repositories/" + name);
      if (!entries) return problems.push_back(entries.error());
      bool is_repo = false;
      for (const auto& e : *entries) is_repo = is_repo || e == "_layers" || e == "_manifests";
      if (is_repo) out.push_back(name);
      if (depth >= kMaxRepoDepth) return;
      for (const auto& e : *entries)
        if (!e.starts_with("_")) walk(name.empty() ? e : name + "/" + e, depth + 1);
    };
    walk("", 0);
    return out;
  }

  std::expected<std::vector<std::string>, std::string> list(const std::string& rel) override {
    return key_children(keys_, rel);
  }

  std::expected<std::string, std::string> read_link(const std::string& rel) override {
    if (!keys_.count(rel)) return std::unexpected("cannot open " + conn_->where(rel) + ": no such object");
    return conn_->get(rel, std::nullopt, kMaxLink);
  }

  std::expected<std::unique_ptr<TreeReader>, std::string> open_blob(const oci::Digest& d) override {
    const std::string algo = d.algo == oci::DigestAlgo::Sha512 ? "sha512" : "sha256";
    const std::string rel = "blobs/" + algo + "/" + d.hex.substr(0, 2) + "/" + d.hex + "/data";
    const std::string key = std::string(kV2) + rel;
    auto info = conn_->bridge->call<s3::ObjectInfo>([key](s3::Client& c, s3::Done<s3::ObjectInfo> done) {
      return c.head_object(key, std::move(done));
    });
    if (!info) return std::unexpected("cannot open " + conn_->where(rel) + ": " + info.error().str());
    return std::make_unique<S3Reader>(*conn_, rel, info->size);
  }

 private:
  std::unique_ptr<Conn> conn_;
  std::set<std::string> keys_;  // relative to docker/registry/v2/, under repositories/
};

}  // namespace

std::vector<std::string> key_children(const std::set<std::string>& keys, const std::string& dir) {
  const std::string prefix = dir + "/";
  std::set<std::string> names;
  for (auto it = keys.lower_bound(prefix); it != keys.end() && it->starts_with(prefix); ++it) {
    const size_t slash = it->find('/', prefix.size());
    std::string name = it->substr(prefix.size(), slash == std::string::npos ? std::string::npos : slash - prefix.size());
    if (!name.empty()) names.insert(std::move(name));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

bool is_s3_source(const std::string& source) { return source.starts_with("s3://"); }

std::expected<std::unique_ptr<RegistryTree>, std::string> open_s3_tree(const std::string& source, const S3TreeOptions& o) {
  const std::string rest = source.substr(5);
  const size_t slash = rest.find('/');
  s3::ClientConfig cfg;
  cfg.bucket = rest.substr(0, slash);
  if (cfg.bucket.empty()) return std::unexpected("SOURCE '" + source + "' names no bucket (s3://BUCKET[/ROOTDIRECTORY])");
  if (slash != std::string::npos) cfg.root = rest.substr(slash + 1);
  cfg.endpoint = !o.endpoint.empty() ? o.endpoint : !env("AWS_ENDPOINT_URL_S3").empty() ? env("AWS_ENDPOINT_URL_S3") : env("AWS_ENDPOINT_URL");
  cfg.region = !o.region.empty() ? o.region : !env("AWS_REGION").empty() ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
  if (cfg.region.empty()) cfg.region = "us-east-1";
  cfg.credentials = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
  if (cfg.credentials.access_key.empty() || cfg.credentials.secret_key.empty())
    return std::unexpected(std::string("an s3:// SOURCE needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"));
  cfg.verify_tls = o.verify_tls;
  cfg.addressing = o.virtual_host ? s3::Addressing::VirtualHost : s3::Addressing::PathStyle;

  auto conn = std::make_unique<Conn>();
  conn->base.reset(event_base_new());
  if (!conn->base) return std::unexpected(std::string("cannot create an event loop"));
  auto http = proxy::HttpClient::create(conn->base.get());
  if (!http) return std::unexpected("cannot start the HTTP client: " + http.error());
  conn->http = std::move(*http);
  auto client = s3::Client::create(conn->base.get(), *conn->http, std::move(cfg));
  if (!client) return std::unexpected("SOURCE " + source + ": " + client.error());
  conn->client = std::move(*client);
  conn->bridge = std::make_unique<cache::S3Bridge>(conn->base.get(), *conn->client, cache::S3Bridge::Mode::Private);

  // One listing of repositories/ (links are tiny; _uploads is skipped by the walk, not by the listing).
  std::set<std::string> keys;
  std::string token;
  for (;;) {
    s3::ListRequest req;
    req.prefix = std::string(kV2) + "repositories/";
    req.continuation_token = token;
    auto page = conn->bridge->call<s3::ListPage>([req](s3::Client& c, s3::Done<s3::ListPage> done) {
      return c.list_objects(req, std::move(done));
    });
    if (!page) return std::unexpected("cannot list " + conn->where("repositories/") + ": " + page.error().str());
    for (auto& obj : page->objects) {
      if (keys.size() >= kMaxKeys)
        return std::unexpected(conn->where("repositories/") + " holds more than " + std::to_string(kMaxKeys) + " keys");
      if (obj.key.starts_with(kV2)) keys.insert(obj.key.substr(kV2.size()));
    }
    if (!page->truncated || page->next_token.empty()) break;
    token = page->next_token;
  }
  if (keys.empty())
    return std::unexpected("no registry:2 tree at " + conn->where("repositories/") + " (no keys under it)");
  return std::make_unique<S3Tree>(std::move(conn), std::move(keys));
}

}  // namespace wharf::commands
