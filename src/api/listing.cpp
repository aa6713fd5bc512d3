// Tags list, catalog and the referrers API: paginated, lexically sorted listings from the index.
#include <limits>

#include <nlohmann/json.hpp>

#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"
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

// What a tags list learns from the index.
struct TagPage {
  bool exists = false;
  bool more = false;
  std::vector<std::string> tags;
};

// The referrers index of `refs`, filtered by the request's artifactType.
void answer_referrers(const http::ExchangePtr& ex, const std::vector<cache::Referrer>& refs) {
  auto filter = ex->req().query_param("artifactType");
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

}  // namespace

void list_tags(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  size_t n;
  bool has_n;
  std::string last;
  if (!page_params(ex, n, has_n, last)) return;
  const size_t limit = has_n ? std::min(n, kMaxPage) : 0;
  auto read = [want = !has_n || n > 0, limit](const cache::Index& index, const std::string& name,
                                              const std::string& after) {
    TagPage page;
    auto txn = index.read();
    page.exists = index.repo_exists(txn, name);
    if (page.exists && want) page.tags = index.tags(txn, name, after, limit, &page.more);
    return page;
  };
  index_call(
      ctx.index, ctx.pool, ex, read,
      [ex, n](TagPage page, const std::string& name, const std::string&) {
        if (!page.exists) return fail(ex, oci::ErrorCode::NameUnknown, {}, oci::Detail{{"name", name}});
        nlohmann::json body{{"name", name}, {"tags", page.tags}};
        auto res = json_response(200, body.dump());
        if (page.more && !page.tags.empty()) add_link(res, "/v2/" + name + "/tags/list", std::min(n, kMaxPage), page.tags.back());
        ex->respond(std::move(res));
      },
      r.name, last);
}

namespace {

// A catalog request between its index reads: hidden repositories are skipped, reading further pages
// until this one is full (at most kMaxScanned names per request).
struct CatalogScan : std::enable_shared_from_this<CatalogScan> {
  static constexpr size_t kMaxScanned = 100000;
  Context& ctx;
  http::ExchangePtr ex;
  std::function<bool(std::string_view)> visible;
  size_t limit = 0;
  size_t scanned = 0;
  bool more = false;
  std::vector<std::string> repos;

  CatalogScan(Context& c, http::ExchangePtr e, std::function<bool(std::string_view)> v, size_t l)
      : ctx(c), ex(std::move(e)), visible(std::move(v)), limit(l) {}

  // Reads the page of names after `after`, keeps the visible ones, and goes on or answers.
  void next(const std::string& after) {
    auto read = [limit = limit](const cache::Index& index, const std::string& from) {
      std::pair<std::vector<std::string>, bool> page;
      auto txn = index.read();
      page.first = index.repos(txn, from, limit, &page.second);
      return page;
    };
    index_call(
        ctx.index, ctx.pool, ex, read,
        [self = shared_from_this()](std::pair<std::vector<std::string>, bool> page, const std::string&) {
          self->take(std::move(page.first), page.second);
        },
        after);
  }
  void take(std::vector<std::string> batch, bool batch_more) {
    more = batch_more;
    if (batch.empty()) return answer();
    scanned += batch.size();
    std::string after = batch.back();
    for (auto& repo : batch) {
      if (repos.size() == limit) {
        more = true;
        break;
      }
      if (visible(repo)) repos.push_back(std::move(repo));
    }
    if (repos.size() == limit || !more || scanned >= kMaxScanned) return answer();
    next(after);
  }
  void answer() {
    nlohmann::json body{{"repositories", repos}};
    auto res = json_response(200, body.dump());
    if (more && !repos.empty()) add_link(res, "/v2/_catalog", limit, repos.back());
    ex->respond(std::move(res));
  }
};

}  // namespace

void catalog(Context& ctx, const http::ExchangePtr& ex, const Route&,
             const std::function<bool(std::string_view)>& visible) {
  size_t n;
  bool has_n;
  std::string last;
  if (!page_params(ex, n, has_n, last)) return;
  size_t limit = has_n ? std::min(n, kMaxPage) : 1000;  // registry:2 pages the catalog at 100 by default
  auto scan = std::make_shared<CatalogScan>(ctx, ex, visible, limit);
  if (has_n && n == 0) return scan->answer();
  scan->next(last);
}

void referrers(Context& ctx, const http::ExchangePtr& ex, const Route& r) {
  auto subject = oci::parse_digest(r.ref);
  if (!subject) return fail(ex, oci::ErrorCode::DigestInvalid, "invalid digest '" + r.ref + "'");
  auto read = [](const cache::Index& index, const std::string& name, const std::string& subject) {
    auto txn = index.read();
    return index.referrers(txn, name, subject);
  };
  index_call(
      ctx.index, ctx.pool, ex, read,
      [ex](std::vector<cache::Referrer> refs, const std::string&, const std::string&) { answer_referrers(ex, refs); },
      r.name, subject->str());
}

}  // namespace wharf::api
