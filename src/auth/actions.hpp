#pragma once
// The actions a request can need on a repository, as bits.
#include <cstdint>

namespace wharf::auth {

// Bit set of actions on a repository.
enum Action : uint8_t { kPull = 1, kPush = 2, kDelete = 4, kAll = 7 };

}  // namespace wharf::auth
