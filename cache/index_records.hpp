#pragma once
// Internal to cache/index: the on-disk layout of the index, its keys and record encodings.
//
// Tables (keys are binary; '\0' separates a repository name from the rest):
//   repos           repo                  → created (i64)
//   tags            repo\0tag             → digest string
//   manifests       digest                → ManifestRecord
//   repo_manifests  repo\0digest          → created (i64)
//   blobs           digest                → BlobRecord
//   links           repo\0digest          → "" (blob visible in repo)
//   referrers       repo\0subject\0digest → referrer info
//   uploads         uuid                  → UploadRecord
//   access          digest                → last access (i64)
//   meta            "schema"              → kSchema (what this index is and its layout version)
// Records are little-endian, length-prefixed and start with a version byte. Decoding is strict and
// bounded by the value: a value that is truncated, has bytes left over, an unknown version or an
// unknown origin does not decode (nullopt), and readers treat it as absent; LmdbIndex::open refuses an
// index whose records do not all decode.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/index_lmdb.hpp"

namespace wharf::cache::index_detail {

// The schema record: an index without it (and with data) or with another value is not one wharf reads.
inline constexpr std::string_view kSchemaKey = "schema";
inline constexpr std::string_view kSchema = "wharf-index 1";

// The key "a\0b".
std::string key(std::string_view a, std::string_view b);
// The key "a\0b\0c".
std::string key(std::string_view a, std::string_view b, std::string_view c);
// Splits "a\0b" into (a, b); false if there is no separator.
bool split_key(std::string_view k, std::string_view& a, std::string_view& b);

// A bare i64 (repos, repo_manifests, access); decoding fails (nullopt) on a truncated value.
std::string encode_i64(int64_t v);
std::optional<int64_t> decode_i64(std::string_view v);

// The records; each decode yields nullopt for a value that does not decode.
std::string encode(const BlobRecord& b);
std::optional<BlobRecord> decode_blob(std::string_view v);
std::string encode(const ManifestRecord& m);
std::optional<ManifestRecord> decode_manifest(std::string_view v);
std::string encode(const UploadRecord& u);
std::optional<UploadRecord> decode_upload(std::string_view v);

// A referrers value: the parts of `m` a referrers listing shows. The digest comes from the key.
std::string encode_referrer(const ManifestRecord& m);
std::optional<Referrer> decode_referrer(std::string_view digest, std::string_view v);

}  // namespace wharf::cache::index_detail
