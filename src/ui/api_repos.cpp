// /api/repositories and /api/repository: what wharf holds, as the caller may see it.
#include <algorithm>
#include <set>

#include "src/api/index_call.hpp"
#include "src/oci/digest.hpp"
#include "src/ui/repo_query.hpp"
#include "src/ui/reply.hpp"
#include "src/ui/ui.hpp"
#include "src/util/json.hpp"

namespace wharf::ui {
namespace {

constexpr uint64_t kMaxIndexBytes = 4 * 1024 * 1024;  // an index read for its platforms, at most

// Bytes of the manifest `digest` and what it references (children of an index too), each blob once.
uint64_t image_size(const cache::Index& index, const cache::Index::ReadTxn& txn, const std::string& digest,
                    std::set<std::string>& seen, int depth = 0) {
  if (depth > 2 || !seen.insert(digest).second) return 0;
  auto rec = index.manifest(txn, digest);
  if (!rec) return 0;
  uint64_t total = rec->size;
  for (const std::string& b : rec->blobs) {
    if (!seen.insert(b).second) continue;
    if (auto blob = index.blob(txn, b)) total += blob->size;
  }
  for (const std::string& child : rec->children) total += image_size(index, txn, child, seen, depth + 1);
  return total;
}

// One repository's tag count, size (of what its tags reach) and newest manifest time.
struct RepoSummary {
  uint64_t tags = 0, size = 0;
  int64_t updated = 0;
};

RepoSummary summarize(const cache::Index& index, const cache::Index::ReadTxn& txn, const std::string& repo) {
  RepoSummary s;
  bool more = false;
  std::set<std::string> seen;
  for (const std::string& tag : index.tags(txn, repo, "", 0, &more)) {
    ++s.tags;
    auto digest = index.tag(txn, repo, tag);
    if (!digest) continue;
    if (auto rec = index.manifest(txn, *digest)) s.updated = std::max(s.updated, rec->created);
    s.size += image_size(index, txn, *digest, seen);
  }
  return s;
}

nlohmann::json time_or_null(int64_t t) { return t > 0 ? nlohmann::json(t) : nlohmann::json(nullptr); }

// "os/arch[/variant]" of each manifest an index lists (attestations' "unknown/unknown" left out).
std::vector<std::string> platforms_of(std::string_view index_json) {
  std::vector<std::string> out;
  auto doc = util::parse_json(index_json);
  if (!doc || !doc->is_object()) return out;
  auto it = doc->find("manifests");
  if (it == doc->end() || !it->is_array()) return out;
  for (const auto& m : *it) {
    if (!m.is_object()) continue;
    auto p = m.find("platform");
    if (p == m.end() || !p->is_object()) continue;
    auto os = p->find("os"), arch = p->find("architecture"), variant = p->find("variant");
    if (os == p->end() || arch == p->end() || !os->is_string() || !arch->is_string()) continue;
    std::string text = os->get<std::string>() + "/" + arch->get<std::string>();
    if (variant != p->end() && variant->is_string() && !variant->get<std::string>().empty())
      text.append("/").append(variant->get<std::string>());
    if (text == "unknown/unknown") continue;
    if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(std::move(text));
  }
  return out;
}

bool is_index(std::string_view media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

}  // namespace

void Ui::repositories(const http::ExchangePtr& ex, const Who& who) {
  const auto& req = ex->req();
  auto query = parse_repo_query(req.query_param("q"), req.query_param("kind"), req.query_param("page"),
                                req.query_param("per_page"));
  if (!query) return send_error(ex, oci::ErrorCode::Unsupported, query.error(), 400);
  with_names(ex, [this, ex, who, query = *query] {
    RepoPage page = page_of(repo_names(), matches(who, query), query);
    // The summaries read the index (tags, manifests, blob sizes): where the index may block.
    auto read = [](const cache::Index& index, const std::vector<std::string>& names) {
      std::vector<RepoSummary> out;
      auto txn = index.read();
      for (const std::string& name : names) out.push_back(summarize(index, txn, name));
      return out;
    };
    api::run_index(
        ctx_.index, ctx_.pool, read,
        [this, ex, total = page.total, page_no = query.page, per_page = query.per_page](
            std::expected<std::vector<RepoSummary>, std::string> sums, const std::vector<std::string>& names) {
          if (!ex->alive() || ex->responded()) return;
          if (!sums) return send_error(ex, oci::ErrorCode::Unavailable, sums.error(), 503);
          nlohmann::json items = nlohmann::json::array();
          for (size_t i = 0; i < names.size(); ++i) {
            const RepoSummary& s = (*sums)[i];
            const auto upstream = upstream_of(names[i]);
            items.push_back({{"name", names[i]},
                             {"kind", upstream ? "mirror" : "local"},
                             {"upstream", upstream ? nlohmann::json(*upstream) : nlohmann::json(nullptr)},
                             {"tags", s.tags},
                             {"size", s.size},
                             {"updated", time_or_null(s.updated)}});
          }
          send_json(ex, 200, nlohmann::json{{"total", total}, {"page", page_no}, {"per_page", per_page},
                                            {"items", std::move(items)}});
        },
        page.names);
  });
}

void Ui::repository(const http::ExchangePtr& ex, const Who& who) {
  auto name = ex->req().query_param("name");
  if (!name || name->empty()) return send_error(ex, oci::ErrorCode::NameInvalid, "name is required", 400);
  if (!visible(who, *name))
    return send_error(ex, oci::ErrorCode::NameUnknown, "repository " + *name + " is not known here", 404);
  const auto upstream = upstream_of(*name);
  const std::string host = registry_host(ex->req());
  const bool can_delete = may_delete(who.caller, *name);
  auto out = std::make_shared<nlohmann::json>();
  auto* index = &ctx_.index;
  auto* store = &ctx_.store;
  // Manifests of indexes are read from the store for their platforms: on a worker.
  ctx_.pool.submit(
      [index, store, out, repo = *name, upstream, host, can_delete] {
        auto txn = index->read();
        if (!index->repo_exists(txn, repo)) {  // read here: the index may block
          *out = nlohmann::json{{"unknown", true}, {"unknown_name", repo}};
          return;
        }
        bool more = false;
        nlohmann::json tags = nlohmann::json::array(), referrers = nlohmann::json::array();
        std::set<std::string> subjects;
        std::string newest_tag;
        int64_t newest = -1;
        for (const std::string& tag : index->tags(txn, repo, "", 0, &more)) {
          auto digest = index->tag(txn, repo, tag);
          if (!digest) continue;
          auto rec = index->manifest(txn, *digest);
          std::vector<std::string> platforms;
          if (rec && is_index(rec->media_type) && rec->size <= kMaxIndexBytes) {
            if (auto d = oci::parse_digest(*digest))
              if (auto bytes = store->read_small(*d, rec->size)) platforms = platforms_of(*bytes);
          }
          std::set<std::string> seen;
          const int64_t created = rec ? rec->created : 0;
          if (created > newest) {
            newest = created;
            newest_tag = tag;
          }
          tags.push_back({{"tag", tag},
                          {"digest", *digest},
                          {"media_type", rec ? rec->media_type : std::string()},
                          {"platforms", platforms},
                          {"size", image_size(*index, txn, *digest, seen)},
                          {"updated", time_or_null(created)},
                          {"last_pull", time_or_null(index->last_access(txn, *digest).value_or(0))}});
          if (!subjects.insert(*digest).second) continue;
          for (const cache::Referrer& r : index->referrers(txn, repo, *digest))
            referrers.push_back({{"subject", *digest}, {"digest", r.digest}, {"artifact_type", r.artifact_type},
                                 {"media_type", r.media_type}, {"size", r.size}});
        }
        const std::string ref = host + "/" + repo + ":" + (newest_tag.empty() ? std::string("latest") : newest_tag);
        *out = nlohmann::json{{"name", repo},
                              {"kind", upstream ? "mirror" : "local"},
                              {"upstream", upstream ? nlohmann::json(*upstream) : nlohmann::json(nullptr)},
                              {"tags", std::move(tags)},
                              {"referrers", std::move(referrers)},
                              {"can_delete", can_delete},
                              {"pull", {{"docker", "docker pull " + ref}, {"podman", "podman pull " + ref}}}};
      },
      [ex, out] {
        if (out->is_null()) return send_error(ex, oci::ErrorCode::Unavailable, "the repository could not be read", 503);
        if (out->contains("unknown"))
          return send_error(ex, oci::ErrorCode::NameUnknown,
                            "repository " + (*out)["unknown_name"].get<std::string>() + " is not known here", 404);
        send_json(ex, 200, *out);
      });
}

}  // namespace wharf::ui
