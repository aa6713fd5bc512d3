// wharf check CONFIG [--verify-content] [--repair]: the store's fsck (cache/fsck.hpp), offline.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "cache/fs/fs_store.hpp"
#include "cache/fsck.hpp"
#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/pg/open_index.hpp"
#include "src/commands/commands.hpp"
#include "src/commands/stores.hpp"

namespace wharf::commands {

const char* const kCheckHelp =
    "usage: wharf check CONFIG.yml [--verify-content] [--repair]\n"
    "\n"
    "Checks the store under storage.filesystem.rootdirectory (with storage.s3: the index there and the\n"
    "blobs in the bucket), offline (stop the server first when repairing):\n"
    "  - the index opens: data.mdb is not truncated, its schema is wharf's, every record decodes;\n"
    "  - the index is consistent: every tag, repository entry and link points at a record, every\n"
    "    blob's refcount matches its links, every pushed manifest's blobs and children are stored;\n"
    "  - every indexed blob has its file with the recorded size; every manifest's file hashes to its\n"
    "    digest; with --verify-content, every blob's file hashes to its digest too (reads everything).\n"
    "Each problem is printed on its own line naming the digest, tag or repository.\n"
    "\n"
    "--repair fixes what the files still allow: records that do not decode are dropped, refcounts are\n"
    "recounted, blobs whose file is present are indexed again, tags and links are put back or dropped,\n"
    "and records whose content is gone are dropped when no manifest needs them (a proxied manifest is\n"
    "fetched again from the upstream). What a manifest still needs (a missing layer, a damaged pushed\n"
    "manifest) cannot be repaired: it is reported, and pushing the image again fixes it.\n"
    "Files in blobs/ (objects in the bucket) that no record names are listed as strays, not removed\n"
    "(garbage-collect removes them).\n"
    "\n"
    "Exit status: 0 when no problem is left (none found, or all repaired), 1 when problems are left\n"
    "or the index cannot be opened, 2 for a usage error.\n";

int check(const config::Config& cfg, const std::vector<std::string>& args) {
  cache::FsckOptions opts;
  for (const auto& a : args) {
    if (a == "--verify-content") {
      opts.verify = cache::VerifyContent::Yes;
    } else if (a == "--repair") {
      opts.repair = cache::Repair::Yes;
    } else {
      std::fputs(kCheckHelp, stderr);
      return 2;
    }
  }
  const std::filesystem::path root = cfg.root_directory;
  std::error_code ec;
  if (cfg.database_dsn.empty() && !std::filesystem::is_directory(root / "index", ec)) {
    std::printf("problem: storage.filesystem.rootdirectory '%s' holds no index\n", root.c_str());
    return 1;
  }
  auto store = cache::FsBlobStore::open(root);
  if (!store) {
    std::printf("problem: %s\n", store.error().c_str());
    return 1;
  }
  auto index = cache::open_index(cfg, cache::Damaged::Open);  // database.dsn: PostgreSQL (typed rows, no damage list)
  if (!index) {
    std::printf("problem: %s (cannot be repaired)\n", index.error().c_str());
    return 1;
  }
  const auto* lmdb = dynamic_cast<const cache::LmdbIndex*>(index->get());
  const std::vector<std::string> damage = lmdb ? lmdb->damage() : std::vector<std::string>{};
  Stores stores{std::make_unique<cache::FsBlobStore>(std::move(*store)), std::move(*index), nullptr};
  if (auto s3 = attach_s3(cfg, stores); !s3) {
    std::printf("problem: %s\n", s3.error().c_str());
    return 1;
  }
  auto report = cache::fsck(*stores.index, stores.blobs(), damage, opts);
  for (const auto& f : report.findings) {
    const char* state = f.repaired ? "repaired" : f.repairable ? (opts.repair == cache::Repair::Yes ? "NOT repaired" : "repairable")
                                                               : "cannot be repaired";
    std::printf("problem: %s: %s [%s]\n", f.subject.c_str(), f.problem.c_str(), state);
  }
  if (!report.fatal.empty()) {
    std::printf("problem: the check stopped: %s\n", report.fatal.c_str());
    return 1;
  }
  const size_t left = report.left();
  for (const auto& s : report.stray_list)
    std::printf("stray: %s has no record (harmless; garbage-collect removes it)\n", s.c_str());
  std::printf("checked %zu blobs, %zu links, %zu manifests, %zu tags: %zu problems, %zu repaired, %zu left; "
              "%zu %s without a record\n",
              report.blobs, report.links, report.manifests, report.tags, report.findings.size(),
              report.findings.size() - left, left, report.strays, stores.s3 ? "objects in the bucket" : "files in blobs/");
  return left == 0 ? 0 : 1;
}

}  // namespace wharf::commands
