// Mark and sweep over an in-memory snapshot of the index; see gc.hpp for the grace rule.
#include "cache/gc.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>

#include "src/auth/rules.hpp"

namespace wharf::cache {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

using Pair = std::pair<std::string, std::string>;

// What a sweep removes from the index.
struct Plan {
  std::vector<Pair> tags;  // (repo, tag) removed by retention
  std::vector<Pair> untag;
  std::vector<std::string> manifests;
  std::vector<std::string> blobs;
};

Plan plan(const Snapshot& s, const Marks& m, Untagged untagged, int64_t young_since) {
  Plan p;
  if (untagged == Untagged::Delete) {
    for (const auto& rm : s.repo_manifests)
      if (!m.in_repo.count({rm.repo, rm.digest})) p.untag.emplace_back(rm.repo, rm.digest);
  }
  for (const auto& [d, rec] : s.manifests)
    if (!m.manifests.count(d) && s.touched(d) < young_since) p.manifests.push_back(d);
  for (const auto& [d, rec] : s.blobs)
    if (!m.blobs.count(d) && s.touched(d) < young_since) p.blobs.push_back(d);
  return p;
}

void describe(const Plan& p, GcResult& r) {
  r.tags_deleted += p.tags.size();
  for (const auto& [repo, tag] : p.tags) r.deleted.push_back("tag " + repo + ":" + tag);
  r.manifests_untagged += p.untag.size();
  r.manifests_deleted += p.manifests.size();
  r.blobs_deleted += p.blobs.size();
  for (const auto& [repo, d] : p.untag) r.deleted.push_back("untag " + repo + "@" + d);
  for (const auto& d : p.manifests) r.deleted.push_back("manifest " + d);
  for (const auto& d : p.blobs) r.deleted.push_back("blob " + d);
}

void apply(Index::Update& u, const Snapshot& s, const Plan& p) {
  for (const auto& [repo, tag] : p.tags) u.remove_tag(repo, tag);
  for (const auto& [repo, d] : p.untag) u.remove_from_repo(repo, d);
  for (const auto& d : p.manifests) u.remove_manifest_record(d);
  static const std::vector<std::string> none;
  for (const auto& d : p.blobs) {
    auto it = s.links.find(d);
    u.remove_blob_record(d, it == s.links.end() ? none : it->second);
  }
}

// True if the index (read afresh) has a blob or manifest record for `digest`.
bool indexed(const Index& index, const std::string& digest) {
  auto txn = index.read();
  return index.blob(txn, digest) || index.manifest(txn, digest);
}

int64_t now_or(int64_t now) { return now != 0 ? now : int64_t(::time(nullptr)); }

// The garbage collector's plan with storage.retention applied first.
Plan plan_all(const Snapshot& s, const GcOptions& opts, int64_t young_since) {
  RetentionPlan r = plan_retention(s, opts.retention, opts.immutable_tags);
  Plan p = plan(s, mark(s, opts.untagged, young_since, r.untag), opts.untagged, young_since);
  p.tags = std::move(r.tags);
  const std::set<Pair> listed(p.untag.begin(), p.untag.end());
  for (const auto& pair : r.untag)
    if (!listed.count(pair)) p.untag.push_back(pair);
  return p;
}

}  // namespace

int64_t Snapshot::touched(const std::string& digest) const {
  int64_t t = 0;
  if (auto it = manifests.find(digest); it != manifests.end()) t = std::max(t, it->second.created);
  if (auto it = blobs.find(digest); it != blobs.end()) t = std::max(t, it->second.created);
  if (auto it = access.find(digest); it != access.end()) t = std::max(t, it->second);
  return t;
}

Snapshot load_snapshot(const Index& index, const Index::ReadTxn& txn) {
  Snapshot s;
  s.tags = index.all_tags(txn);
  s.repo_manifests = index.all_repo_manifests(txn);
  for (auto& [d, m] : index.all_manifests(txn)) s.manifests.emplace(std::move(d), std::move(m));
  for (auto& [d, b] : index.all_blobs(txn)) s.blobs.emplace(std::move(d), b);
  for (auto& l : index.all_links(txn)) s.links[l.digest].push_back(std::move(l.repo));
  for (auto& [d, t] : index.all_access(txn)) s.access.emplace(std::move(d), t);
  return s;
}

Marks mark(const Snapshot& s, Untagged untagged, int64_t young_since, const std::set<Pair>& skip) {
  Marks m;
  std::set<Pair> present;
  for (const auto& rm : s.repo_manifests)
    if (!skip.count({rm.repo, rm.digest})) present.emplace(rm.repo, rm.digest);
  std::set<Pair> visited;
  std::vector<Pair> work;
  auto keep = [&](const std::string& repo, const std::string& digest) {
    work.emplace_back(repo, digest);
    while (!work.empty()) {
      Pair p = std::move(work.back());
      work.pop_back();
      if (!visited.insert(p).second) continue;
      if (present.count(p)) m.in_repo.insert(p);
      m.manifests.insert(p.second);
      auto it = s.manifests.find(p.second);
      if (it == s.manifests.end()) continue;
      for (const auto& b : it->second.blobs) m.blobs.insert(b);
      for (const auto& c : it->second.children) work.emplace_back(p.first, c);
    }
  };
  for (const auto& t : s.tags)
    if (!skip.count({t.repo, t.digest})) keep(t.repo, t.digest);
  for (const auto& rm : s.repo_manifests) {
    if (!present.count({rm.repo, rm.digest})) continue;
    if (untagged == Untagged::Keep || rm.added >= young_since) keep(rm.repo, rm.digest);
  }
  for (const auto& [d, rec] : s.manifests)
    if (s.touched(d) >= young_since) keep(std::string(), d);
  // Referrers: a manifest whose subject is kept is kept (repeat until nothing changes).
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& p : present) {
      if (m.in_repo.count(p)) continue;
      auto it = s.manifests.find(p.second);
      if (it == s.manifests.end() || it->second.subject.empty() || !m.manifests.count(it->second.subject)) continue;
      keep(p.first, p.second);
      changed = true;
    }
  }
  return m;
}

RetentionPlan plan_retention(const Snapshot& s, const std::vector<config::RetentionRule>& rules,
                             const std::vector<std::string>& immutable_tags) {
  RetentionPlan out;
  if (rules.empty()) return out;
  std::vector<Pair> immutable;
  for (const auto& e : immutable_tags)
    if (const size_t colon = e.rfind(':'); colon != std::string::npos)
      immutable.emplace_back(e.substr(0, colon), e.substr(colon + 1));
  auto is_immutable = [&](const TagEntry& t) {
    for (const auto& [repos, tags] : immutable)
      if (auth::glob_match(tags, t.tag) && auth::glob_match(repos, t.repo)) return true;
    return false;
  };
  std::map<Pair, int64_t> added;
  for (const auto& rm : s.repo_manifests) added[{rm.repo, rm.digest}] = rm.added;
  struct Candidate {
    int64_t pushed;
    const TagEntry* tag;
  };
  std::map<std::pair<std::string, size_t>, std::vector<Candidate>> groups;  // (repo, rule index) → tags
  for (const auto& t : s.tags) {
    if (is_immutable(t)) continue;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (!auth::glob_match(rules[i].match, t.repo) || !auth::glob_match(rules[i].tags, t.tag)) continue;
      auto it = added.find({t.repo, t.digest});
      groups[{t.repo, i}].push_back({it == added.end() ? 0 : it->second, &t});
      break;
    }
  }
  std::set<Pair> removed;  // (repo, tag)
  std::set<Pair> orphan_candidates;
  for (auto& [key, tags] : groups) {
    const auto keep = size_t(std::max<int64_t>(rules[key.second].keep, 0));
    if (tags.size() <= keep) continue;
    std::sort(tags.begin(), tags.end(), [](const Candidate& a, const Candidate& b) {
      return a.pushed != b.pushed ? a.pushed > b.pushed : a.tag->tag > b.tag->tag;
    });
    for (size_t i = keep; i < tags.size(); ++i) {
      out.tags.emplace_back(tags[i].tag->repo, tags[i].tag->tag);
      removed.emplace(tags[i].tag->repo, tags[i].tag->tag);
      orphan_candidates.emplace(tags[i].tag->repo, tags[i].tag->digest);
    }
  }
  // What stays tagged in each affected repository, and the manifests those reach there.
  std::set<Pair> reached;
  std::vector<Pair> work;
  for (const auto& t : s.tags)
    if (!removed.count({t.repo, t.tag})) work.emplace_back(t.repo, t.digest);
  while (!work.empty()) {
    Pair p = std::move(work.back());
    work.pop_back();
    if (!reached.insert(p).second) continue;
    auto it = s.manifests.find(p.second);
    if (it == s.manifests.end()) continue;
    for (const auto& c : it->second.children) work.emplace_back(p.first, c);
  }
  for (const auto& pair : orphan_candidates)
    if (!reached.count(pair)) out.untag.insert(pair);
  return out;
}

uint64_t stored_bytes(const Snapshot& s) {
  uint64_t total = 0;
  for (const auto& [d, b] : s.blobs) total += b.size;
  for (const auto& [d, m] : s.manifests) total += m.size;
  return total;
}

void remove_unindexed(Index& index, const BlobBackend& store, const std::vector<std::string>& digests,
                      GcResult& result) {
  constexpr size_t kBatch = 256;  // unlinks per write transaction: publishers wait at most one batch
  for (size_t from = 0; from < digests.size(); from += kBatch) {
    GcResult batch;
    auto done = index.update("garbage collection (files)", [&](Index::Update& u) {
      batch = GcResult{};
      for (size_t i = from; i < std::min(digests.size(), from + kBatch); ++i) {
        auto parsed = oci::parse_digest(digests[i]);
        if (!parsed || u.has_record(digests[i])) continue;
        auto size = store.stat(*parsed);
        if (size && store.remove(*parsed)) {
          ++batch.files_deleted;
          batch.bytes_freed += *size;
        }
      }
    });
    if (!done) return;  // the index cannot be written: delete nothing more
    result.files_deleted += batch.files_deleted;
    result.bytes_freed += batch.bytes_freed;
  }
}

void remove_files(Index& index, const BlobBackend& store, const std::vector<std::string>& digests, GcResult& result) {
  remove_unindexed(index, store, digests, result);
}

void sweep_strays(Index& index, const BlobBackend& store, int64_t older_than, DryRun dry_run,
                  const std::set<std::string>& gone, GcResult& result) {
  std::vector<std::string> candidates;
  store.list([&](const StoredBlob& b) {
    const std::string digest = b.digest.str();
    const bool planned = gone.count(digest) > 0;
    if (!planned && b.modified >= older_than) return;
    if (dry_run == DryRun::Yes) {
      if (!planned && indexed(index, digest)) return;
      ++result.files_deleted;
      result.bytes_freed += b.size;
      if (!planned) result.deleted.push_back("file " + digest);
      return;
    }
    if (!indexed(index, digest)) candidates.push_back(digest);  // re-checked under the write lock
  });
  remove_unindexed(index, store, candidates, result);
}

std::expected<GcResult, std::string> collect(Index& index, const BlobBackend& store, const GcOptions& opts) {
  const int64_t now = now_or(opts.now);
  const int64_t young_since = opts.grace.count() > 0 ? now - opts.grace.count() : kNever;
  GcResult result;
  if (opts.dry_run == DryRun::Yes) {
    try {
      auto txn = index.read();
      Snapshot s = load_snapshot(index, txn);
      Plan p = plan_all(s, opts, young_since);
      describe(p, result);
      std::set<std::string> gone(p.manifests.begin(), p.manifests.end());
      gone.insert(p.blobs.begin(), p.blobs.end());
      sweep_strays(index, store, opts.grace.count() > 0 ? now - opts.grace.count() : kNever, DryRun::Yes, gone,
                   result);
    } catch (const std::exception& e) {
      return std::unexpected(std::string("garbage collection: ") + e.what());
    }
    return result;
  }
  Plan p;
  auto done = index.update("garbage collection", [&](Index::Update& u) {
    // Marked under the write lock, so every manifest and link committed before it is seen.
    Snapshot s = load_snapshot(index, u.txn());
    p = plan_all(s, opts, young_since);
    apply(u, s, p);
  });
  if (!done) return std::unexpected(done.error());
  describe(p, result);
  // Files go only now that the committed index no longer references them.
  std::vector<std::string> doomed = p.manifests;
  doomed.insert(doomed.end(), p.blobs.begin(), p.blobs.end());
  remove_files(index, store, doomed, result);
  sweep_strays(index, store, opts.grace.count() > 0 ? now - opts.grace.count() : kNever, DryRun::No, {}, result);
  if (auto claims = index.expire_claims(kClaimMaxAge)) result.claims_deleted = *claims;
  return result;
}

}  // namespace wharf::cache
