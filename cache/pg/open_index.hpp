#pragma once
// Choosing the index a configuration names: PostgreSQL with database.dsn, else LMDB under
// storage.filesystem.rootdirectory (the embedded default).
#include <expected>
#include <memory>
#include <string>

#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "src/config/config.hpp"

namespace wharf::cache {

// Opens (creating or migrating) the configured index; the error names the key at fault
// (database.dsn without its password, or storage.filesystem.rootdirectory).
std::expected<std::unique_ptr<Index>, std::string> open_index(const config::Config& cfg,
                                                              Damaged damaged = Damaged::Refuse);

}  // namespace wharf::cache
