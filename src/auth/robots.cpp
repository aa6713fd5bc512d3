// Robot accounts: secrets, grants, the JSON file and its live view.
#include "src/auth/robots.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "src/auth/jwt.hpp"
#include "src/auth/rules.hpp"
#include "src/util/json.hpp"

namespace wharf::auth {

std::expected<RobotGrant, std::string> parse_grant(std::string_view spec) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return std::unexpected(std::string("expected PATTERN:ACTIONS such as 'team-a/*:pull,push', got '") + std::string(spec) + "'");
  RobotGrant g{std::string(spec.substr(0, colon)), 0};
  for (char c : g.match) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
                    c == '/' || c == '*' || c == '?';
    if (!ok) return std::unexpected("pattern '" + g.match + "' may hold only lowercase repository characters, * and ?");
  }
  std::string_view actions = spec.substr(colon + 1);
  while (!actions.empty()) {
    const size_t comma = actions.find(',');
    const std::string one(actions.substr(0, comma));
    const uint8_t bit = parse_actions({one});
    if (bit == 0) return std::unexpected("unknown action '" + one + "'; use pull, push, delete or *");
    g.actions |= bit;
    actions = comma == std::string_view::npos ? std::string_view() : actions.substr(comma + 1);
  }
  if (g.actions == 0) return std::unexpected(std::string("no actions in '") + std::string(spec) + "'");
  return g;
}

std::string format_grant(const RobotGrant& g) {
  std::string out = g.match + ":";
  const auto names = action_names(g.actions);
  for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
  return out;
}

bool valid_robot_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::string new_robot_secret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  return base64url_encode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

std::string hash_robot_secret(std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(secret.data(), secret.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

bool robot_secret_matches(const Robot& robot, std::string_view secret) {
  const std::string h = hash_robot_secret(secret);
  return h.size() == robot.secret_hash.size() && CRYPTO_memcmp(h.data(), robot.secret_hash.data(), h.size()) == 0;
}

uint8_t robot_allowed(const Robot& robot, std::string_view repo, int64_t now) {
  if (robot.expires != 0 && robot.expires <= now) return 0;
  uint8_t out = 0;
  for (const RobotGrant& g : robot.allow)
    if (glob_match(g.match, repo)) out |= g.actions;
  return out;
}

std::expected<std::vector<Robot>, std::string> parse_robots(std::string_view json) {
  auto doc = util::parse_json(json);
  if (!doc) return std::unexpected("not JSON: " + doc.error().message);
  const auto list = doc->find("robots");
  if (!doc->is_object() || list == doc->end() || !list->is_array()) return std::unexpected("expected {\"robots\": [...]}");
  std::vector<Robot> out;
  for (const auto& r : *list) {
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string() || !r.contains("secret_hash") ||
        !r["secret_hash"].is_string())
      return std::unexpected("every robot needs a name and a secret_hash");
    Robot robot;
    robot.name = r["name"].get<std::string>();
    robot.secret_hash = r["secret_hash"].get<std::string>();
    if (!valid_robot_name(robot.name)) return std::unexpected(std::string("invalid robot name '") + robot.name.substr(0, 64) + "'");
    if (r.contains("created") && r["created"].is_number_integer()) robot.created = r["created"].get<int64_t>();
    if (r.contains("expires") && r["expires"].is_number_integer()) robot.expires = r["expires"].get<int64_t>();
    if (r.contains("allow") && r["allow"].is_array()) {
      for (const auto& a : r["allow"]) {
        if (!a.is_string()) return std::unexpected("robot " + robot.name + ": allow entries must be strings");
        auto g = parse_grant(a.get<std::string>());
        if (!g) return std::unexpected("robot " + robot.name + ": " + g.error());
        robot.allow.push_back(std::move(*g));
      }
    }
    out.push_back(std::move(robot));
  }
  return out;
}

std::string serialize_robots(const std::vector<Robot>& robots) {
  nlohmann::json list = nlohmann::json::array();
  for (const Robot& r : robots) {
    nlohmann::json allow = nlohmann::json::array();
    for (const RobotGrant& g : r.allow) allow.push_back(format_grant(g));
    list.push_back({{"name", r.name}, {"secret_hash", r.secret_hash}, {"allow", allow}, {"created", r.created},
                    {"expires", r.expires}});
  }
  return nlohmann::json{{"robots", list}}.dump(2) + "\n";
}

std::expected<std::vector<Robot>, std::string> read_robots(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::vector<Robot>{};
    return std::unexpected(std::string("cannot read ") + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto robots = parse_robots(text.str());
  if (!robots) return std::unexpected(path.string() + ": " + robots.error());
  return robots;
}

std::expected<void, std::string> write_robots(const std::filesystem::path& path, const std::vector<Robot>& robots) {
  const std::string text = serialize_robots(robots);
  const std::string tmp = path.string() + std::string(".tmp.") + std::to_string(::getpid());
  auto fail = [&](const char* what) {
    const std::string msg = std::string("cannot ") + what + std::string(" ") + path.string() + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return std::unexpected(msg);
  };
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("write");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("write");
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("sync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("replace");
  if (path.has_parent_path()) {
    const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  return {};
}

void RobotsFile::refresh() {
  struct stat st{};
  std::optional<Identity> now;
  if (::stat(path_.c_str(), &st) == 0) now = Identity{st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
  auto same = [](const std::optional<Identity>& a, const std::optional<Identity>& b) {
    if (!a || !b) return !a && !b;
    return a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
  };
  if (loaded_ && same(now, seen_)) return;
  loaded_ = true;
  seen_ = now;
  auto robots = read_robots(path_);
  if (robots) {
    robots_ = std::move(*robots);
    problem_.reset();
  } else {
    robots_.clear();  // fail closed
    problem_ = robots.error();
  }
}

const Robot* RobotsFile::find(std::string_view name) {
  refresh();
  for (const Robot& r : robots_)
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace wharf::auth
