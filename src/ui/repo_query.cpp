#include "src/ui/repo_query.hpp"

#include <cctype>

#include "src/util/number.hpp"

namespace wharf::ui {

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() &&
           std::tolower(static_cast<unsigned char>(hay[i + j])) == std::tolower(static_cast<unsigned char>(needle[j])))
      ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

std::expected<RepoQuery, std::string> parse_repo_query(std::optional<std::string> q, std::optional<std::string> kind,
                                                       std::optional<std::string> page,
                                                       std::optional<std::string> per_page) {
  RepoQuery out;
  if (q) {
    if (q->size() > 256) return std::unexpected("q must be at most 256 characters");
    out.q = std::move(*q);
  }
  if (kind) {
    if (*kind == "all") out.kind = RepoKind::All;
    else if (*kind == "local") out.kind = RepoKind::Local;
    else if (*kind == "mirror") out.kind = RepoKind::Mirror;
    else return std::unexpected("kind must be all, local or mirror");
  }
  if (page) {
    auto v = util::parse_u64(*page, 1'000'000'000);
    if (!v || *v == 0) return std::unexpected("page must be a number from 1");
    out.page = *v;
  }
  if (per_page) {
    auto v = util::parse_u64(*per_page, 200);
    if (!v || *v == 0) return std::unexpected("per_page must be a number from 1 to 200");
    out.per_page = *v;
  }
  return out;
}

std::vector<uint32_t> filter_repos(const std::vector<std::string>& names, const RepoQuery& query,
                                   const std::function<bool(std::string_view)>& is_mirror,
                                   const std::function<bool(std::string_view)>& visible) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (!contains_ci(name, query.q)) continue;
    if (query.kind != RepoKind::All && is_mirror(name) != (query.kind == RepoKind::Mirror)) continue;
    if (!visible(name)) continue;
    out.push_back(uint32_t(i));
  }
  return out;
}

RepoPage page_of(const std::vector<std::string>& names, const std::vector<uint32_t>& matches, const RepoQuery& query) {
  RepoPage out;
  out.total = matches.size();
  const uint64_t first = (query.page - 1) * query.per_page;
  for (uint64_t i = first; i < matches.size() && out.names.size() < query.per_page; ++i)
    if (matches[i] < names.size()) out.names.push_back(names[matches[i]]);
  return out;
}

RepoPage select_repos(const std::vector<std::string>& names, const RepoQuery& query,
                      const std::function<bool(std::string_view)>& is_mirror,
                      const std::function<bool(std::string_view)>& visible) {
  return page_of(names, filter_repos(names, query, is_mirror, visible), query);
}

}  // namespace wharf::ui
