#pragma once
// Internal to cache/index: the checks LmdbIndex::open runs before anything else reads the map, so a
// damaged data.mdb is refused with a message instead of crashing (SIGBUS) or serving garbage later.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/index_impl.hpp"

namespace wharf::cache::index_detail {

// A file problem that nothing can repair: data.mdb shorter than the last page its meta page names.
// Reads only the meta pages (which mdb_env_open already checked). nullopt when the size is sound.
std::optional<std::string> check_file(MDB_env* env, const std::filesystem::path& dir);

// Runs `f` with SIGBUS and SIGSEGV raised by this thread turned into a return value (the signal
// number; 0 when `f` finished). Only for reads of the LMDB map: `f` is abandoned where the fault hit
// (objects it created are leaked), so the caller must give up on the environment afterwards.
int guard_faults(void (*f)(void*), void* arg);

// Walks every table (at most `limit` records in all), decoding every record of every kind; returns
// one line per problem (at most 20, then a count), empty when every record read decodes. LMDB errors
// (MDB_CORRUPTED, MDB_PAGE_NOTFOUND) and faults while reading the map are problems too.
std::vector<std::string> check_records(const LmdbIndex::Impl& im, size_t limit);

// The handle of table `name` ("blobs", ...); nullopt for a name that is not one of the record tables.
std::optional<MDB_dbi> table_named(const LmdbIndex::Impl& im, std::string_view name);
// Raw keys of the records of table `name` that do not decode (the walk's judgement), in key order.
std::vector<std::string> undecodable_keys(const LmdbIndex::Impl& im, MDB_txn* txn, std::string_view name);

}  // namespace wharf::cache::index_detail
