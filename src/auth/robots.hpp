#pragma once
// Robot accounts for CI: a name ("robot$NAME" at login), the SHA-256 of a random secret (the secret is
// shown once and never stored), its own allow list, and an optional expiry. Kept in one JSON file that
// the CLI rewrites atomically and the server re-reads whenever it changes (one stat per check).
#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/actions.hpp"

namespace wharf::auth {

// The login prefix of robot accounts.
constexpr std::string_view kRobotPrefix = "robot$";

// A repository pattern and the actions a robot may take on what it matches.
struct RobotGrant {
  std::string match;
  uint8_t actions = 0;
};

struct Robot {
  std::string name;         // without the prefix
  std::string secret_hash;  // "sha256:" + hex
  std::vector<RobotGrant> allow;
  int64_t created = 0;
  int64_t expires = 0;  // seconds since the epoch; 0: never
};

// Parses "team-a/*:pull,push"; fails naming what is wrong.
std::expected<RobotGrant, std::string> parse_grant(std::string_view spec);
// "team-a/*:pull,push".
std::string format_grant(const RobotGrant& g);
// True for names of lowercase letters, digits, '-', '_' and '.', 1..64 characters.
bool valid_robot_name(std::string_view name);
// A new random secret (32 bytes from OpenSSL's CSPRNG, base64url).
std::string new_robot_secret();
// "sha256:" + hex of the secret.
std::string hash_robot_secret(std::string_view secret);
// Constant-time check of a secret against the robot's hash.
bool robot_secret_matches(const Robot& robot, std::string_view secret);
// The actions `robot` may take on `repo` (0 once expired at `now`).
uint8_t robot_allowed(const Robot& robot, std::string_view repo, int64_t now);

// The file's JSON; fails with a message for anything malformed.
std::expected<std::vector<Robot>, std::string> parse_robots(std::string_view json);
// The file's JSON text for `robots` (hashes only, never a secret).
std::string serialize_robots(const std::vector<Robot>& robots);
// Reads the file; a missing file is no robots. Fails naming the path.
std::expected<std::vector<Robot>, std::string> read_robots(const std::filesystem::path& path);
// Writes the file atomically (temporary file, fsync, rename, mode 0600). Fails naming the path.
std::expected<void, std::string> write_robots(const std::filesystem::path& path, const std::vector<Robot>& robots);

// The robots file as the server sees it: re-read when its identity changes, failing closed (a
// malformed file means no robots). Not thread-safe (the event loop owns it).
class RobotsFile {
 public:
  // Watches `path`; nothing is read until the first find().
  explicit RobotsFile(std::filesystem::path path) : path_(std::move(path)) {}
  // The robot named `name` (without prefix) as the file says now; nullptr if none.
  const Robot* find(std::string_view name);
  // Why no robots are usable (nullopt while the file is fine or absent).
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  void refresh();
  std::filesystem::path path_;
  struct Identity {
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};
    timespec ctime{};
  };
  std::optional<Identity> seen_;
  bool loaded_ = false;
  std::vector<Robot> robots_;
  std::optional<std::string> problem_;
};

}  // namespace wharf::auth
