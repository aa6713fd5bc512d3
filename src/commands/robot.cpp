// wharf robot CONFIG create|list|revoke: robot accounts for CI, kept in the robots file (auth.robots.path,
// default <rootdirectory>/robots.json). The secret is printed once and only its hash is stored; a running
// wharf sees every change at its next check of the file.
#include <cstdio>
#include <ctime>

#include "src/auth/robots.hpp"
#include "src/commands/commands.hpp"
#include "src/config/config.hpp"
#include "src/util/rfc3339.hpp"

namespace wharf::commands {
namespace {

constexpr const char* kRobotUsage =
    "usage: wharf robot CONFIG create NAME --allow 'PATTERN:ACTIONS' [--allow ...] [--expires 90d]\n"
    "       wharf robot CONFIG list\n"
    "       wharf robot CONFIG revoke NAME\n"
    "PATTERN is a repository glob (team-a/*), ACTIONS a comma list of pull, push, delete;\n"
    "--expires takes days (90d), hours (12h) or any duration such as 30m.\n";

std::filesystem::path robots_path(const config::Config& cfg) {
  return cfg.robots_path.empty() ? std::filesystem::path(cfg.root_directory) / "robots.json"
                                 : std::filesystem::path(cfg.robots_path);
}

// "90d" → seconds; other forms as Go durations; nullopt if invalid or zero.
std::optional<int64_t> parse_expiry(const std::string& text) {
  if (text.size() >= 2 && text.back() == 'd') {
    auto hours = config::parse_duration(text.substr(0, text.size() - 1) + "h");
    if (hours && hours->count() > 0 && hours->count() < int64_t(1) << 40) return hours->count() * 24;
    return std::nullopt;
  }
  auto d = config::parse_duration(text);
  if (!d || d->count() <= 0) return std::nullopt;
  return d->count();
}

std::string when(int64_t t) {
  if (t == 0) return "never";
  return util::rfc3339_utc(t);
}

int create(const std::filesystem::path& file, const std::vector<std::string>& args) {
  if (args.size() < 2 || !auth::valid_robot_name(args[1])) {
    std::fprintf(stderr, "wharf robot create: NAME must be 1-64 lowercase letters, digits, '-', '_' or '.'\n%s", kRobotUsage);
    return 2;
  }
  auth::Robot robot{args[1], {}, {}, int64_t(std::time(nullptr)), 0};
  for (size_t i = 2; i < args.size(); ++i) {
    if ((args[i] == "--allow" || args[i] == "--expires") && i + 1 >= args.size()) {
      std::fprintf(stderr, "wharf robot create: %s needs a value\n", args[i].c_str());
      return 2;
    }
    if (args[i] == "--allow") {
      auto g = auth::parse_grant(args[++i]);
      if (!g) {
        std::fprintf(stderr, "wharf robot create: --allow: %s\n", g.error().c_str());
        return 2;
      }
      robot.allow.push_back(std::move(*g));
    } else if (args[i] == "--expires") {
      auto secs = parse_expiry(args[++i]);
      if (!secs) {
        std::fprintf(stderr, "wharf robot create: --expires: expected a duration such as 90d or 12h, got '%s'\n", args[i].c_str());
        return 2;
      }
      robot.expires = robot.created + *secs;
    } else {
      std::fprintf(stderr, "wharf robot create: unknown argument '%s'\n%s", args[i].c_str(), kRobotUsage);
      return 2;
    }
  }
  if (robot.allow.empty()) {
    std::fprintf(stderr, "wharf robot create: at least one --allow is needed\n%s", kRobotUsage);
    return 2;
  }
  auto robots = auth::read_robots(file);
  if (!robots) {
    std::fprintf(stderr, "wharf robot create: %s\n", robots.error().c_str());
    return 1;
  }
  for (const auto& r : *robots) {
    if (r.name == robot.name) {
      std::fprintf(stderr, "wharf robot create: robot '%s' exists; revoke it first\n", robot.name.c_str());
      return 1;
    }
  }
  const std::string secret = auth::new_robot_secret();
  if (secret.empty()) {
    std::fprintf(stderr, "wharf robot create: no randomness available\n");
    return 1;
  }
  robot.secret_hash = auth::hash_robot_secret(secret);
  robots->push_back(robot);
  if (auto w = auth::write_robots(file, *robots); !w) {
    std::fprintf(stderr, "wharf robot create: %s\n", w.error().c_str());
    return 1;
  }
  std::fprintf(stderr, "robot %s%s created (expires %s); the secret below is shown only once:\n",
               std::string(auth::kRobotPrefix).c_str(), robot.name.c_str(), when(robot.expires).c_str());
  std::printf("%s\n", secret.c_str());
  return 0;
}

}  // namespace

int robot(const config::Config& cfg, const std::vector<std::string>& args) {
  const auto file = robots_path(cfg);
  if (args.empty()) {
    std::fputs(kRobotUsage, stderr);
    return 2;
  }
  if (args[0] == "create") return create(file, args);
  auto robots = auth::read_robots(file);
  if (!robots) {
    std::fprintf(stderr, "wharf robot: %s\n", robots.error().c_str());
    return 1;
  }
  if (args[0] == "list" && args.size() == 1) {
    const int64_t now = int64_t(std::time(nullptr));
    for (const auto& r : *robots) {
      std::string allow;
      for (const auto& g : r.allow) {
        if (!allow.empty()) allow += ' ';
        allow += auth::format_grant(g);
      }
      std::printf("%s%s\tcreated %s\texpires %s%s\t%s\n", std::string(auth::kRobotPrefix).c_str(), r.name.c_str(),
                  when(r.created).c_str(), when(r.expires).c_str(),
                  r.expires != 0 && r.expires <= now ? " (expired)" : "", allow.c_str());
    }
    return 0;
  }
  if (args[0] == "revoke" && args.size() == 2) {
    std::string name = args[1];
    if (name.starts_with(auth::kRobotPrefix)) name.erase(0, auth::kRobotPrefix.size());
    const size_t before = robots->size();
    std::erase_if(*robots, [&](const auth::Robot& r) { return r.name == name; });
    if (robots->size() == before) {
      std::fprintf(stderr, "wharf robot revoke: no robot named '%s'\n", name.c_str());
      return 1;
    }
    if (auto w = auth::write_robots(file, *robots); !w) {
      std::fprintf(stderr, "wharf robot revoke: %s\n", w.error().c_str());
      return 1;
    }
    std::fprintf(stderr, "robot %s%s revoked\n", std::string(auth::kRobotPrefix).c_str(), name.c_str());
    return 0;
  }
  std::fputs(kRobotUsage, stderr);
  return 2;
}

}  // namespace wharf::commands
