#pragma once
// Internal to cache/pg: how index records map to rows (column lists, decoding, the connection of a txn).
#include <string>
#include <string_view>
#include <vector>

#include "cache/index.hpp"
#include "cache/pg/pg_conn.hpp"
#include "cache/pg/pg_index.hpp"

namespace wharf::cache {

struct PgIndex::Session {
  pg::Pool::Lease lease;
};

}  // namespace wharf::cache

namespace wharf::cache::pg::rows {

// The connection of a snapshot or write transaction of a PgIndex.
inline PGconn* conn(const Index::ReadTxn& t) { return static_cast<PgIndex::Session*>(t.raw())->lease.get(); }

// Columns of a blob record, in blob_row's order.
constexpr std::string_view kBlobColumns = "size, refcount, origin, created, backend";
// Columns of a manifest record, in manifest_row's order (arrays as newline-joined text).
constexpr std::string_view kManifestColumns =
    "media_type, size, array_to_string(blobs, E'\\n'), array_to_string(children, E'\\n'), subject, artifact_type, "
    "annotations, origin, created";

inline Origin origin_of(int64_t v) { return v == 1 ? Origin::Proxied : Origin::Pushed; }
inline Backend backend_of(int64_t v) { return v == 1 ? Backend::S3 : Backend::Filesystem; }

// Splits newline-joined digests ("" → none).
inline std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t nl = s.find('\n');
    out.emplace_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

// Joins digests with newlines (for string_to_array($n, E'\n')).
inline std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += '\n';
    out += s;
  }
  return out;
}

// The blob record in columns [col, col+5) of `row`.
inline BlobRecord blob_row(const Result& r, int row, int col) {
  return BlobRecord{uint64_t(r.int64(row, col)), uint32_t(r.int64(row, col + 1)), origin_of(r.int64(row, col + 2)),
                    r.int64(row, col + 3), backend_of(r.int64(row, col + 4))};
}

// The manifest record in columns [col, col+9) of `row`.
inline ManifestRecord manifest_row(const Result& r, int row, int col) {
  ManifestRecord m;
  m.media_type = r.text(row, col);
  m.size = uint64_t(r.int64(row, col + 1));
  m.blobs = split_lines(r.text(row, col + 2));
  m.children = split_lines(r.text(row, col + 3));
  m.subject = r.text(row, col + 4);
  m.artifact_type = r.text(row, col + 5);
  m.annotations_json = r.text(row, col + 6);
  m.origin = origin_of(r.int64(row, col + 7));
  m.created = r.int64(row, col + 8);
  return m;
}

}  // namespace wharf::cache::pg::rows
