#pragma once
// Searching and paging the repository list for /api/repositories (pure functions, unit-tested).
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::ui {

// Which repositories a listing asks for.
enum class RepoKind { All, Local, Mirror };

// The parameters of /api/repositories.
struct RepoQuery {
  std::string q;  // substring, matched case-insensitively; empty: everything
  RepoKind kind = RepoKind::All;
  uint64_t page = 1;       // from 1
  uint64_t per_page = 50;  // 1..200
};

// Reads q, kind, page and per_page from the raw parameters (nullopt: absent); fails with a message
// naming the parameter and what it must be.
std::expected<RepoQuery, std::string> parse_repo_query(std::optional<std::string> q, std::optional<std::string> kind,
                                                       std::optional<std::string> page,
                                                       std::optional<std::string> per_page);

// One page of a listing: how many names matched in all, and the names of the requested page.
struct RepoPage {
  uint64_t total = 0;
  std::vector<std::string> names;
};

// Filters `names` (sorted) by the query, the kind (`is_mirror`) and `visible`, and cuts the page.
RepoPage select_repos(const std::vector<std::string>& names, const RepoQuery& query,
                      const std::function<bool(std::string_view)>& is_mirror,
                      const std::function<bool(std::string_view)>& visible);

// Whether `needle` occurs in `hay`, ignoring ASCII case.
bool contains_ci(std::string_view hay, std::string_view needle);

}  // namespace wharf::ui
