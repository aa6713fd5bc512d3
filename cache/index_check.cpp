// The open-time checks of the index: file size against the meta page, every record decodes.
#include "cache/index_check.hpp"

#include <setjmp.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstring>

#include "cache/index_records.hpp"
#include "src/oci/digest.hpp"

namespace wharf::cache::index_detail {
namespace {

// The jump target of the thread inside guard_faults (a signal handler can reach nothing else).
thread_local sigjmp_buf* t_fault_jump = nullptr;

void on_fault(int sig) {
  if (sigjmp_buf* jump = t_fault_jump) siglongjmp(*jump, sig);
  ::signal(sig, SIG_DFL);  // not ours: the default action, as if we had not been here
  ::raise(sig);
}

// What a table holds, for decoding its records.
enum class Kind { Repo, Tag, Manifest, RepoManifest, Blob, Link, Referrer, Upload, Access };

// Why `k`/`v` of a table of `kind` is not a record wharf wrote; nullopt if it is.
std::optional<std::string> bad_record(Kind kind, std::string_view k, std::string_view v) {
  std::string_view a, b;
  auto digest_key = [&]() { return oci::parse_digest(k).has_value(); };
  switch (kind) {
    case Kind::Repo:
      if (!decode_i64(v)) return "does not decode";
      return std::nullopt;
    case Kind::Tag:
      if (!split_key(k, a, b)) return "key is not repository\\0tag";
      if (!oci::parse_digest(v)) return "value is not a digest";
      return std::nullopt;
    case Kind::Manifest:
      if (!digest_key()) return "key is not a digest";
      if (!decode_manifest(v)) return "does not decode";
      return std::nullopt;
    case Kind::RepoManifest:
      if (!split_key(k, a, b) || !oci::parse_digest(b)) return "key is not repository\\0digest";
      if (!decode_i64(v)) return "does not decode";
      return std::nullopt;
    case Kind::Blob:
      if (!digest_key()) return "key is not a digest";
      if (!decode_blob(v)) return "does not decode";
      return std::nullopt;
    case Kind::Link:
      if (!split_key(k, a, b) || !oci::parse_digest(b)) return "key is not repository\\0digest";
      if (!v.empty()) return "value is not empty";
      return std::nullopt;
    case Kind::Referrer: {
      if (!split_key(k, a, b)) return "key is not repository\\0subject\\0digest";
      std::string_view subject, digest;
      if (!split_key(b, subject, digest) || !oci::parse_digest(digest)) return "key is not repository\\0subject\\0digest";
      if (!decode_referrer(digest, v)) return "does not decode";
      return std::nullopt;
    }
    case Kind::Upload:
      if (!decode_upload(v)) return "does not decode";
      return std::nullopt;
    case Kind::Access:
      if (!digest_key()) return "key is not a digest";
      if (!decode_i64(v)) return "does not decode";
      return std::nullopt;
  }
  return std::nullopt;
}

// Printable form of a key: NUL shown as '/', other control bytes as '?', at most 200 bytes.
std::string printable(std::string_view k) {
  std::string out;
  for (char c : k.substr(0, 200)) out.push_back(c == '\0' ? '/' : (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c);
  return out;
}

struct Walk {
  const LmdbIndex::Impl* im = nullptr;
  size_t limit = 0;
  size_t seen = 0;
  size_t problems = 0;
  std::vector<std::string> lines;
  void note(std::string line) {
    ++problems;
    if (lines.size() < 20) lines.push_back(std::move(line));
  }
};

struct Table {
  const char* name;
  MDB_dbi LmdbIndex::Impl::*dbi;
  Kind kind;
};
constexpr Table kTables[] = {
    {"repos", &LmdbIndex::Impl::repos, Kind::Repo},
    {"tags", &LmdbIndex::Impl::tags, Kind::Tag},
    {"manifests", &LmdbIndex::Impl::manifests, Kind::Manifest},
    {"repo_manifests", &LmdbIndex::Impl::repo_manifests, Kind::RepoManifest},
    {"blobs", &LmdbIndex::Impl::blobs, Kind::Blob},
    {"links", &LmdbIndex::Impl::links, Kind::Link},
    {"referrers", &LmdbIndex::Impl::referrers, Kind::Referrer},
    {"uploads", &LmdbIndex::Impl::uploads, Kind::Upload},
    {"access", &LmdbIndex::Impl::access, Kind::Access},
};

void walk(void* arg) {
  auto& w = *static_cast<Walk*>(arg);
  const LmdbIndex::Impl& im = *w.im;
  try {
    auto txn = lmdb::Txn::begin(im.env.get(), MDB_RDONLY);
    for (const auto& table : kTables) {
      lmdb::Cursor cur(txn.get(), im.*table.dbi);
      MDB_val k{}, v{};
      for (bool ok = cur.get(k, v, MDB_FIRST); ok && w.seen < w.limit; ok = cur.get(k, v, MDB_NEXT)) {
        ++w.seen;
        if (auto why = bad_record(table.kind, lmdb::view(k), lmdb::view(v)))
          w.note(std::string(table.name) + " record '" + printable(lmdb::view(k)) + "': " + *why);
      }
    }
    // LMDB's free list (table 0): writers take pages from it, so a page number past the file's end
    // would be written into the void later. Each value is a count followed by (at least) that many page numbers.
    MDB_envinfo info{};
    lmdb::check(mdb_env_info(im.env.get(), &info), "mdb_env_info");
    lmdb::Cursor cur(txn.get(), 0);
    MDB_val k{}, v{};
    for (bool ok = cur.get(k, v, MDB_FIRST); ok && w.seen < w.limit; ok = cur.get(k, v, MDB_NEXT)) {
      ++w.seen;
      const size_t n = v.mv_size / sizeof(size_t);
      size_t ids[1] = {0};
      if (n > 0) std::memcpy(ids, v.mv_data, sizeof ids);
      bool sound = n > 0 && v.mv_size % sizeof(size_t) == 0 && ids[0] <= n - 1;
      for (size_t i = 1; sound && i <= ids[0]; ++i) {
        size_t page = 0;
        std::memcpy(&page, static_cast<const char*>(v.mv_data) + i * sizeof(size_t), sizeof page);
        sound = page >= 2 && page <= info.me_last_pgno;
      }
      if (!sound) w.note("the free list names pages outside the file");
    }
  } catch (const lmdb::Error& e) {
    w.note(std::string("reading the tables: ") + e.what());
  }
}

}  // namespace

std::optional<std::string> check_file(MDB_env* env, const std::filesystem::path& dir) {
  MDB_envinfo info{};
  MDB_stat st{};
  if (int rc = mdb_env_info(env, &info); rc != MDB_SUCCESS) return std::string("mdb_env_info: ") + mdb_strerror(rc);
  if (int rc = mdb_env_stat(env, &st); rc != MDB_SUCCESS) return std::string("mdb_env_stat: ") + mdb_strerror(rc);
  const std::filesystem::path data = dir / "data.mdb";
  struct stat fst {};
  if (::stat(data.c_str(), &fst) != 0) return std::string("cannot stat '").append(data.string()).append("'");
  const uint64_t needed = (uint64_t(info.me_last_pgno) + 1) * uint64_t(st.ms_psize);
  if (uint64_t(fst.st_size) < needed)
    return std::string("'").append(data.string()).append("' is truncated: it has ").append(std::to_string(fst.st_size))
        .append(" bytes, but its pages run to ").append(std::to_string(needed));
  return std::nullopt;
}

int guard_faults(void (*f)(void*), void* arg) {
  struct sigaction sa {}, old_bus {}, old_segv {};
  sa.sa_handler = on_fault;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NODEFER;
  ::sigaction(SIGBUS, &sa, &old_bus);
  ::sigaction(SIGSEGV, &sa, &old_segv);
  sigjmp_buf jump;
  int sig = sigsetjmp(jump, 1);
  if (sig == 0) {
    t_fault_jump = &jump;
    f(arg);
  }
  t_fault_jump = nullptr;
  ::sigaction(SIGBUS, &old_bus, nullptr);
  ::sigaction(SIGSEGV, &old_segv, nullptr);
  return sig;
}

std::vector<std::string> check_records(const LmdbIndex::Impl& im, size_t limit) {
  Walk w;
  w.im = &im;
  w.limit = limit;
  if (int sig = guard_faults(walk, &w); sig != 0)
    w.note(std::string("reading the map faulted (") + (sig == SIGBUS ? "SIGBUS" : "SIGSEGV") +
           "): pages point outside the file");
  if (w.problems > w.lines.size()) w.lines.push_back("... " + std::to_string(w.problems - w.lines.size()) + " more");
  return w.lines;
}

std::optional<MDB_dbi> table_named(const LmdbIndex::Impl& im, std::string_view name) {
  for (const auto& table : kTables)
    if (name == table.name) return im.*table.dbi;
  return std::nullopt;
}

std::vector<std::string> undecodable_keys(const LmdbIndex::Impl& im, MDB_txn* txn, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& table : kTables) {
    if (name != table.name) continue;
    im.each(txn, im.*table.dbi, [&](std::string_view k, std::string_view v) {
      if (bad_record(table.kind, k, v)) out.emplace_back(k);
    });
  }
  return out;
}

}  // namespace wharf::cache::index_detail
