// Tags list, catalog and the referrers API: paginated, lexically sorted listings from the index.
#include <limits>

#include <nlohmann/json.hpp>

#include "src/api/handlers.hpp"
#include "src/api/respond.hpp"
#include "src/oci/digest.hpp"
#include "src/oci/manifest.hpp"
#include "src/util/json.hpp"
#include "src/util/number.hpp"

namespace wharf::api {

namespace {

constexpr size_t kMaxPage = 10000;

// Reads `n` (page size) and `last`; answers 400 and returns false on a malformed n.
bool page_params(const http::ExchangePtr& ex, size_t& n, bool& has_n, std::string& last) {
  const auto& req = ex->req();
  has_n = false;
  n = 0;
  if (auto v = req.query_param("n")) {
    has_n = true;
    const auto parsed = util::parse_u64(*v, std::numeric_limits<size_t>::max());
    if (parsed) n = size_t(*parsed);
    if (!parsed) {
      fail(ex, oci::ErrorCode::Unsupported, "query parameter n must be a non-negative integer", {}, 400);
      return false;
    }
  }
  last = req.query_param("last").value_or("");
  return true;
}

void add_link(http::Response& res, const std::string& path, size_t n, const std::string& last) {
  res.header("Link", "<" + path + "?n=" + std::to_string(n) + "&last=" + http::percent_encode(last) + ">; rel=\"next\"");
}

}  // namespace

void list_tags(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  size_t n;
  bool has_n;
  std::string last;
  if (!page_params(ex, n, has_n, last)) return;
  bool more = false;
  std::vector<std::string> tags;
  {
    auto txn = ctx.index.read();
    if (!ctx.index.repo_exists(txn, r.name)) return fail(ex, oci::ErrorCode::NameUnknown, {}, oci::Detail{{"name", r.name}});
    if (!has_n || n > 0) tags = ctx.index.tags(txn, r.name, last, has_n ? std::min(n, kMaxPage) : 0, &more);
  }
  nlohmann::json body{{"name", r.name}, {"tags", tags}};
  auto res = json_response(200, body.dump());
  if (more && !tags.empty()) add_link(res, "/v2/" + r.name + "/tags/list", std::min(n, kMaxPage), tags.back());
  ex->respond(std::move(res));
}

void catalog(Context& ctx, const http::ExchangePtr& ex, const Route&,
             const std::function<bool(std::string_view)>& visible) {
  size_t n;
  bool has_n;
  std::string last;
  if (!page_params(ex, n, has_n, last)) return;
  size_t limit = has_n ? std::min(n, kMaxPage) : 1000;  // registry:2 pages the catalog at 100 by default
  bool more = false;
  std::vector<std::string> repos;
  if (!has_n || n > 0) {
    // Hidden repositories are skipped, reading further pages until this one is full (at most kMaxScanned
    // names per request).
    constexpr size_t kMaxScanned = 100000;
    size_t scanned = 0;
    std::string after = last;
    auto txn = ctx.index.read();
    do {
      auto batch = ctx.index.repos(txn, after, limit, &more);
      if (batch.empty()) break;
      scanned += batch.size();
      after = batch.back();
      for (auto& repo : batch) {
        if (repos.size() == limit) {
          more = true;
          break;
        }
        if (visible(repo)) repos.push_back(std::move(repo));
      }
      if (repos.size() == limit) break;
    } while (more && scanned < kMaxScanned);
  }
  nlohmann::json body{{"repositories", repos}};
  auto res = json_response(200, body.dump());
  if (more && !repos.empty()) add_link(res, "/v2/_catalog", limit, repos.back());
  ex->respond(std::move(res));
}

void referrers(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto subject = oci::parse_digest(r.ref);
  if (!subject) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  auto filter = ex->req().query_param("artifactType");
  std::vector<cache::Referrer> refs;
  {
    auto txn = ctx.index.read();
    refs = ctx.index.referrers(txn, r.name, subject->str());
  }
  nlohmann::json manifests = nlohmann::json::array();
  for (const auto& ref : refs) {
    if (filter && ref.artifact_type != *filter) continue;
    nlohmann::json d{{"mediaType", ref.media_type}, {"digest", ref.digest}, {"size", ref.size}};
    if (!ref.artifact_type.empty()) d["artifactType"] = ref.artifact_type;
    if (!ref.annotations_json.empty()) {
      auto a = util::parse_json(ref.annotations_json);  // from the index: bounded like any outside JSON
      if (a) d["annotations"] = std::move(*a);
    }
    manifests.push_back(std::move(d));
  }
  nlohmann::json body{{"schemaVersion", 2}, {"mediaType", oci::media::kOciIndex}, {"manifests", manifests}};
  http::Response res(200);
  res.body = body.dump();
  res.header("Content-Type", std::string(oci::media::kOciIndex));
  if (filter) res.header("OCI-Filters-Applied", "artifactType");
  ex->respond(std::move(res));
}

}  // namespace wharf::api
