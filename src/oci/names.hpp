#pragma once
// Distribution-spec grammar for repository names and tags, and manifest references.
#include <string_view>

namespace wharf::oci {

// True if `name` matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)* and is at most 255 chars.
bool valid_repo_name(std::string_view name);

// True if `tag` matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
bool valid_tag(std::string_view tag);

}  // namespace wharf::oci
