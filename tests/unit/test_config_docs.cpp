// The configuration reference must keep up with the key table: every key wharf uses is documented in
// conf/README.md (with its default and what happens at the limit) and shown in conf/config.yml.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "src/config/config.hpp"

namespace {

std::string read_conf(const char* name) {
  namespace fs = std::filesystem;
  const fs::path here = fs::path(__FILE__).parent_path();
  for (const fs::path& dir : {here / "../../conf", fs::path("conf"), fs::path("../conf")}) {
    std::ifstream in(dir / name);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return {};
}

}  // namespace

TEST_CASE("every used key is documented in conf/README.md and shown in conf/config.yml") {
  const std::string reference = read_conf("README.md");
  const std::string example = read_conf("config.yml");
  REQUIRE_MESSAGE(!reference.empty(), "conf/README.md not found");
  REQUIRE_MESSAGE(!example.empty(), "conf/config.yml not found");
  for (const auto& key : wharf::config::schema()) {
    if (key.use != wharf::config::KeyUse::Used || key.type == wharf::config::KeyType::Section) continue;
    const std::string path(key.path);
    CHECK_MESSAGE(reference.find("`" + path + "`") != std::string::npos, "conf/README.md does not document " << path);
    if (path == "loglevel") continue;  // registry:2's deprecated spelling; the example shows log.level
    const std::string leaf = path.substr(path.rfind('.') + 1);
    CHECK_MESSAGE(example.find(leaf + ":") != std::string::npos, "conf/config.yml does not show " << path);
  }
}
