// The store's consistency check and its repairs; see fsck.hpp.
#include "cache/fsck.hpp"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "cache/gc.hpp"
#include "src/oci/digest.hpp"
#include "src/oci/manifest.hpp"

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;
using Fix = std::function<void(Index::Update&)>;

// The whole content of a small stored object; nullopt if it cannot be read.
std::optional<std::string> read_all(const BlobBackend& store, const oci::Digest& d) {
  return store.read_small(d, oci::kMaxManifestBytes);
}

class Checker {
 public:
  Checker(Index& index, const BlobBackend& store, const FsckOptions& o, FsckReport& r)
      : index_(index), store_(store), opts_(o), report_(r) {}

  void run(const Snapshot& s);
  // Applies the repairs in one write transaction, then removes the files of the dropped records.
  void repair();

 private:
  // Records a problem; `fix` (repairable when set) runs at repair time.
  void problem(std::string subject, std::string what, Fix fix = {}) {
    report_.findings.push_back({std::move(subject), std::move(what), bool(fix), false});
    fixes_.emplace_back(report_.findings.size() - 1, std::move(fix));
  }
  // State of the stored file of `digest` against `size`: "" when sound, else what is wrong.
  std::string file_problem(const std::string& digest, uint64_t size, bool verify);
  void check_blobs(const Snapshot& s);
  void check_manifests(const Snapshot& s);
  void check_repos(const Snapshot& s);
  void count_strays(const Snapshot& s);
  // The stored size of `d` (nullopt: absent); throws when the store cannot tell (never "missing" then).
  std::optional<uint64_t> stored_size(const oci::Digest& d) const;

  Index& index_;
  const BlobBackend& store_;
  const FsckOptions& opts_;
  FsckReport& report_;
  std::vector<std::pair<size_t, Fix>> fixes_;
  std::vector<std::string> doomed_files_;  // files whose records a repair drops
  std::map<std::string, std::set<std::string>> repos_of_;   // manifest digest → repositories holding it
  std::map<std::string, std::vector<std::string>> users_;  // blob digest → pushed manifests referencing it
  std::set<std::string> bad_blobs_;  // blob records whose file is missing or damaged
};

std::optional<uint64_t> Checker::stored_size(const oci::Digest& d) const {
  auto got = store_.stat_checked(d);
  if (!got) throw std::runtime_error("cannot check blob " + d.str() + ": " + got.error());
  return *got;
}

std::string Checker::file_problem(const std::string& digest, uint64_t size, bool verify) {
  auto d = oci::parse_digest(digest);
  if (!d) return "not a digest";
  auto got = stored_size(*d);
  if (!got) return "its file is missing";
  if (*got != size) return "its file has " + std::to_string(*got) + " bytes, the index says " + std::to_string(size);
  if (verify && !store_.intact(*d)) return "its file's content does not hash to its digest";
  return {};
}

void Checker::run(const Snapshot& s) {
  for (const auto& rm : s.repo_manifests) repos_of_[rm.digest].insert(rm.repo);
  for (const auto& [d, m] : s.manifests) {
    if (m.origin != Origin::Pushed) continue;  // proxied manifests fetch their blobs on demand
    for (const auto& b : m.blobs) users_[b].push_back(d);
  }
  check_blobs(s);
  check_manifests(s);
  check_repos(s);
  count_strays(s);
}

void Checker::check_blobs(const Snapshot& s) {
  for (const auto& [d, rec] : s.blobs) {
    ++report_.blobs;
    auto linked = s.links.find(d);
    const std::vector<std::string> repos = linked == s.links.end() ? std::vector<std::string>{} : linked->second;
    if (rec.refcount != repos.size()) {
      BlobRecord fixed = rec;
      fixed.refcount = uint32_t(repos.size());
      problem("blob " + d, "its refcount is " + std::to_string(rec.refcount) + " but " + std::to_string(repos.size()) +
                               " repositories link it",
              [d, fixed](Index::Update& u) { u.put_blob_record(d, fixed); });
    }
    std::string bad = file_problem(d, rec.size, opts_.verify == VerifyContent::Yes);
    if (bad.empty()) continue;
    bad_blobs_.insert(d);
    auto users = users_.find(d);
    if (users != users_.end()) {
      std::string who = users->second.front();
      if (auto it = repos_of_.find(who); it != repos_of_.end()) who += " in " + *it->second.begin();
      problem("blob " + d, bad + "; manifest " + who + " needs it (push it again)");
      continue;
    }
    doomed_files_.push_back(d);
    problem("blob " + d, bad + "; no manifest needs it: its record and links are dropped",
            [d, repos](Index::Update& u) { u.remove_blob_record(d, repos); });
  }
  for (const auto& [d, repos] : s.links) {
    report_.links += repos.size();
    if (s.blobs.count(d)) continue;
    auto parsed = oci::parse_digest(d);
    auto size = parsed ? stored_size(*parsed) : std::nullopt;
    if (size && (opts_.verify == VerifyContent::No || store_.intact(*parsed))) {
      BlobRecord rec{*size, uint32_t(repos.size()), Origin::Pushed, int64_t(::time(nullptr))};
      problem("blob " + d, "linked in " + repos.front() + " but has no record; its file is there: re-indexed",
              [d, rec](Index::Update& u) { u.put_blob_record(d, rec); });
      continue;
    }
    if (users_.count(d)) {
      problem("blob " + d, "linked in " + repos.front() + " with neither a record nor a file; manifest " +
                               users_[d].front() + " needs it (push it again)");
      continue;
    }
    problem("blob " + d, "linked in " + repos.front() + " with neither a record nor a file: the links are dropped",
            [d, repos](Index::Update& u) { u.remove_blob_record(d, repos); });
  }
}

void Checker::check_manifests(const Snapshot& s) {
  for (const auto& [d, rec] : s.manifests) {
    ++report_.manifests;
    const auto repos = repos_of_.count(d) ? repos_of_[d] : std::set<std::string>{};
    const std::string where = repos.empty() ? std::string() : " (in " + *repos.begin() + ")";
    auto parsed = oci::parse_digest(d);
    std::string bad = file_problem(d, rec.size, true);
    std::optional<std::string> body;
    if (bad.empty() && parsed) body = read_all(store_, *parsed);
    if (!bad.empty() || !body) {
      if (bad.empty()) bad = "its file cannot be read";
      doomed_files_.push_back(d);
      if (rec.origin == Origin::Proxied || repos.empty()) {
        problem("manifest " + d + where, bad + "; dropped" + (repos.empty() ? "" : " (the mirror fetches it again)"),
                [d, repos](Index::Update& u) {
                  for (const auto& repo : repos) u.remove_from_repo(repo, d);
                  u.remove_manifest_record(d);
                });
      } else {
        doomed_files_.pop_back();
        problem("manifest " + d + where, bad + " (push it again)");
      }
      continue;
    }
    if (rec.origin != Origin::Pushed) continue;
    // What a pushed manifest needs: its blobs (bar foreign layers) and its child manifests.
    auto info = oci::parse_manifest(*body, rec.media_type);
    std::vector<std::string> needed;
    if (info) {
      if (info->config) needed.push_back(info->config->digest.str());
      for (const auto& l : info->layers)
        if (l.media_type.find("foreign") == std::string::npos) needed.push_back(l.digest.str());
    }
    for (const auto& b : needed) {
      if (s.blobs.count(b) && !bad_blobs_.count(b)) {
        const auto& linked = s.links.count(b) ? s.links.at(b) : std::vector<std::string>{};
        for (const auto& repo : repos) {
          if (std::find(linked.begin(), linked.end(), repo) != linked.end()) continue;
          const auto& brec = s.blobs.at(b);
          problem("blob " + b, "used by manifest " + d + " in " + repo + " but not linked there: linked",
                  [repo, b, brec](Index::Update& u) { u.add_blob(repo, b, brec.size, brec.origin); });
        }
        continue;
      }
      if (bad_blobs_.count(b)) continue;  // reported with the blob
      auto pb = oci::parse_digest(b);
      auto size = pb ? stored_size(*pb) : std::nullopt;
      if (size && !s.links.count(b) && (opts_.verify == VerifyContent::No || store_.intact(*pb))) {
        problem("blob " + b, "used by manifest " + d + where + " but has no record; its file is there: re-indexed",
                [repos, b, size = *size](Index::Update& u) {
                  for (const auto& repo : repos) u.add_blob(repo, b, size, Origin::Pushed);
                });
      } else if (!size) {
        problem("manifest " + d + where, "references blob " + b + ", which is not in the store (push it again)");
      }
    }
    for (const auto& c : rec.children)
      if (!s.manifests.count(c)) problem("manifest " + d + where, "references manifest " + c + ", which is not in the store");
  }
}

void Checker::check_repos(const Snapshot& s) {
  for (const auto& rm : s.repo_manifests) {
    if (s.manifests.count(rm.digest)) continue;
    problem("manifest " + rm.repo + "@" + rm.digest, "in the repository but has no record: removed from it (and its tags)",
            [rm](Index::Update& u) { u.remove_from_repo(rm.repo, rm.digest); });
  }
  std::set<std::pair<std::string, std::string>> present;
  for (const auto& rm : s.repo_manifests) present.emplace(rm.repo, rm.digest);
  for (const auto& t : s.tags) {
    ++report_.tags;
    auto m = s.manifests.find(t.digest);
    if (m == s.manifests.end()) {
      if (!present.count({t.repo, t.digest}))  // else removed with the membership above
        problem("tag " + t.repo + ":" + t.tag, "points at " + t.digest + ", which has no record: the tag is removed",
                [t](Index::Update& u) {
                  u.remove_from_repo(t.repo, t.digest);  // no-op without the membership
                  u.remove_tag(t.repo, t.tag);
                });
      continue;
    }
    if (!present.count({t.repo, t.digest}))
      problem("tag " + t.repo + ":" + t.tag, "points at " + t.digest + ", which is not in the repository: put back",
              [t, rec = m->second](Index::Update& u) { u.add_manifest(t.repo, t.digest, rec, t.tag); });
  }
}

void Checker::count_strays(const Snapshot& s) {
  auto listed = store_.list([&](const StoredBlob& b) {
    const std::string d = b.digest.str();
    if (s.blobs.count(d) || s.manifests.count(d) || s.links.count(d)) return;
    if (++report_.strays <= kMaxStrayList) report_.stray_list.push_back(d + " (" + std::to_string(b.size) + " bytes)");
  });
  if (!listed) throw std::runtime_error("cannot list the store: " + listed.error());
}

void Checker::repair() {
  std::vector<size_t> applied;
  auto done = index_.update("check --repair", [&](Index::Update& u) {
    applied.clear();
    for (auto& [i, fix] : fixes_) {
      if (!fix) continue;
      fix(u);
      applied.push_back(i);
    }
  });
  if (!done) {
    report_.fatal = done.error();
    return;
  }
  for (size_t i : applied) report_.findings[i].repaired = true;
  GcResult ignored;
  remove_unindexed(index_, store_, doomed_files_, ignored);  // only those the index no longer knows
}

}  // namespace

size_t FsckReport::left() const {
  size_t n = 0;
  for (const auto& f : findings) n += f.repaired ? 0 : 1;
  return n;
}

FsckReport fsck(Index& index, const BlobBackend& store, const std::vector<std::string>& damage, const FsckOptions& o) {
  FsckReport report;
  const bool repair = o.repair == Repair::Yes;
  try {
    for (const auto& line : damage) report.findings.push_back({"index", line, true, false});
    if (repair && !damage.empty()) {
      bool all = true;
      for (const char* table : {"repos", "tags", "manifests", "repo_manifests", "blobs", "links", "referrers", "uploads",
                                "access"})
        for (const auto& key : index.undecodable(table)) all = index.drop_raw(table, key).has_value() && all;
      if (all)
        for (auto& f : report.findings) f.repaired = true;
    }
    Snapshot s;
    {
      auto txn = index.read();
      s = load_snapshot(index, txn);
    }
    Checker c(index, store, o, report);
    c.run(s);
    if (repair) c.repair();
  } catch (const std::exception& e) {
    report.fatal = e.what();
  }
  return report;
}

}  // namespace wharf::cache
