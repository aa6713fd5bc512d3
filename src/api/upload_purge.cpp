// Purging abandoned upload sessions: their index records and staged data.
#include <ctime>

#include <spdlog/spdlog.h>

#include "src/api/handlers.hpp"
#include "src/api/index_call.hpp"

namespace wharf::api {

namespace {
void purge_stale(Context& ctx, const std::vector<std::string>& stale, int64_t cutoff);
}  // namespace

void purge_uploads(Context& ctx) {
  const int64_t cutoff = int64_t(time(nullptr)) - int64_t(ctx.cfg.upload_purge_age.count());
  // The session records are read where the index may block; which are in use is asked on the loop.
  run_index(ctx.index, ctx.pool,
            [](const cache::Index& index) {
              auto txn = index.read();
              return index.uploads(txn);
            },
            [&ctx, cutoff](std::expected<std::vector<std::pair<std::string, cache::UploadRecord>>, std::string> all) {
              if (!all) return spdlog::warn("upload purging skipped: {}", all.error());
              std::vector<std::string> stale;
              for (auto& [id, rec] : *all) {
                auto s = ctx.uploads.find(id);
                if (rec.started < cutoff && !(s && s->busy)) stale.push_back(id);
              }
              purge_stale(ctx, stale, cutoff);
            });
}

namespace {

// Removes the sessions `stale` (and staged data older than `cutoff` with no record) on a worker.
void purge_stale(Context& ctx, const std::vector<std::string>& stale, int64_t cutoff) {
  if (ctx.cfg.upload_purge_dry_run) {
    for (const auto& id : stale) spdlog::info("upload purging (dry run): would remove session {}", id);
    return;
  }
  for (const auto& id : stale) ctx.uploads.erase(id);
  ctx.pool.submit(
      [&ctx, stale, cutoff] {
        for (const auto& id : stale) {
          ctx.store.discard(ctx.store.upload_key(id));
          (void)ctx.index.delete_upload(id);
        }
        // Staged data with no session record (a crash between its creation and the record).
        for (const auto& item : ctx.store.list_uploads()) {
          if (item.modified >= cutoff) continue;
          auto txn = ctx.index.read();
          if (!ctx.index.upload(txn, item.name)) ctx.store.discard(ctx.store.upload_key(item.name));
        }
        if (!stale.empty()) spdlog::info("purged {} abandoned upload sessions", stale.size());
      },
      nullptr);
}

}  // namespace

}  // namespace wharf::api
