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

// The positions in `names` of the names that match the query's q and kind (`is_mirror`) and that
// `visible` accepts, in order (the page and per_page of `query` play no part).
std::vector<uint32_t> filter_repos(const std::vector<std::string>& names, const RepoQuery& query,
                                   const std::function<bool(std::string_view)>& is_mirror,
                                   const std::function<bool(std::string_view)>& visible);

// The page `query` asks for, out of the positions `matches` in `names`.
RepoPage page_of(const std::vector<std::string>& names, const std::vector<uint32_t>& matches, const RepoQuery& query);

// filter_repos, then page_of.
RepoPage select_repos(const std::vector<std::string>& names, const RepoQuery& query,
                      const std::function<bool(std::string_view)>& is_mirror,
                      const std::function<bool(std::string_view)>& visible);

// Whether `needle` occurs in `hay`, ignoring ASCII case.
bool contains_ci(std::string_view hay, std::string_view needle);

}  // namespace wharf::ui
