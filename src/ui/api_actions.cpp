// /api/delete-tag and /api/evict: the page's two actions, for callers allowed to delete.
#include <memory>
#include <set>

#include "src/auth/actions.hpp"
#include "src/oci/names.hpp"
#include "src/ui/reply.hpp"
#include "src/ui/ui.hpp"

namespace wharf::ui {
namespace {

constexpr size_t kMaxActionBody = 8 * 1024;

// The outcome of an action run on a worker.
struct Outcome {
  bool found = false;
  std::string error;  // the index failed
};

}  // namespace

void Ui::tag_action(const http::ExchangePtr& ex, const Who& who, bool evicting,
                    std::function<void(std::string, std::string)> next) {
  read_json_body(ex, kMaxActionBody, [this, ex, who, evicting, next = std::move(next)](nlohmann::json body) {
    auto name = string_member(body, "name");
    auto tag = string_member(body, "tag");
    if (!name || !tag) return send_error(ex, oci::ErrorCode::Unsupported, "name and tag (strings) are required", 400);
    if (!oci::valid_repo_name(*name)) return send_error(ex, oci::ErrorCode::NameInvalid, "invalid repository name", 400);
    if (!oci::valid_tag(*tag)) return send_error(ex, oci::ErrorCode::ManifestInvalid, "invalid tag", 400);
    if (!ctx_.cfg.delete_enabled)
      return send_error(ex, oci::ErrorCode::Unsupported, "deleting is disabled (storage.delete.enabled)", 405);
    if (evicting && !upstream_of(*name))
      return send_error(ex, oci::ErrorCode::Unsupported, "repository " + *name + " is not mirrored; only cached images can be evicted", 400);
    const uint8_t may = auth_.allowed(who.caller, *name);
    if (!(may & auth::kPull)) return send_error(ex, oci::ErrorCode::NameUnknown, "repository " + *name + " is not known here", 404);
    if (!(may & auth::kDelete)) {
      auth_.audit(ex, "denied", who.caller.user, *name, std::string(evicting ? "evict " : "delete tag ").append(*tag), "delete");
      return send_error(ex, oci::ErrorCode::Denied, "user " + who.caller.user + " may not delete in repository " + *name, 403);
    }
    if (!evicting && auth_.rules().tag_immutable(*name, *tag)) {
      return send_error(ex, oci::ErrorCode::Denied,
                        "tag " + *tag + " of " + *name + " is immutable (auth.immutabletags); it cannot be deleted", 403);
    }
    next(std::move(*name), std::move(*tag));
  });
}

void Ui::delete_tag(const http::ExchangePtr& ex, const Who& who) {
  tag_action(ex, who, false, [this, ex, who](std::string name, std::string tag) {
    auto out = std::make_shared<Outcome>();
    auto* index = &ctx_.index;
    ctx_.pool.submit(
        [index, out, name, tag] {
          auto r = index->delete_tag(name, tag);
          if (!r) out->error = r.error();
          else out->found = *r;
        },
        [this, ex, who, out, name, tag] {
          if (!out->error.empty()) return send_error(ex, oci::ErrorCode::Unavailable, "cannot delete the tag: " + out->error);
          if (!out->found) return send_error(ex, oci::ErrorCode::ManifestUnknown, "tag " + tag + " of " + name + " is not known", 404);
          auth_.audit(ex, "delete", who.caller.user, name, "DELETE tag " + name + ":" + tag + " (web page)", "ok");
          http::Response r(204);
          r.header("Cache-Control", "no-store");
          ex->respond(std::move(r));
        });
  });
}

void Ui::evict(const http::ExchangePtr& ex, const Who& who) {
  tag_action(ex, who, true, [this, ex, who](std::string name, std::string tag) {
    auto out = std::make_shared<Outcome>();
    auto* index = &ctx_.index;
    ctx_.pool.submit(
        [index, out, name, tag] {
          // The tag goes; the manifest (and an index's children) leave the repository when no other tag
          // there points at them, so garbage collection reclaims what nothing else references.
          auto r = index->update("evict", [&](cache::Index::Update& u) {
            auto digest = index->tag(u.txn(), name, tag);
            if (!digest) return;
            out->found = u.remove_tag(name, tag);
            std::set<std::string> still_tagged;
            bool more = false;
            for (const std::string& t : index->tags(u.txn(), name, "", 0, &more))
              if (auto d = index->tag(u.txn(), name, t)) still_tagged.insert(*d);
            if (still_tagged.count(*digest)) return;
            auto rec = index->manifest(u.txn(), *digest);
            u.remove_from_repo(name, *digest);
            if (!rec) return;
            for (const std::string& child : rec->children)
              if (!still_tagged.count(child)) u.remove_from_repo(name, child);
          });
          if (!r) out->error = r.error();
        },
        [this, ex, who, out, name, tag] {
          if (!out->error.empty()) return send_error(ex, oci::ErrorCode::Unavailable, "cannot evict the image: " + out->error);
          if (!out->found) return send_error(ex, oci::ErrorCode::ManifestUnknown, "tag " + tag + " of " + name + " is not cached", 404);
          auth_.audit(ex, "delete", who.caller.user, name, "EVICT " + name + ":" + tag + " (web page)", "ok");
          http::Response r(204);
          r.header("Cache-Control", "no-store");
          ex->respond(std::move(r));
        });
  });
}

}  // namespace wharf::ui
