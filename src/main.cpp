// wharf: an OCI registry and pull-through mirror. CLI verbs follow registry:2's.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cache/pg/pg_dsn.hpp"
#include "src/app.hpp"
#include "src/commands/commands.hpp"
#include "src/config/config.hpp"
#include "src/log.hpp"
#include "src/preflight.hpp"

namespace {

const char* kUsage =
    "wharf " WHARF_VERSION " - OCI registry and pull-through mirror\n"
    "\n"
    "Usage:\n"
    "  wharf serve [CONFIG.yml]       run the registry (embedded default config without CONFIG)\n"
    "  wharf check-config CONFIG.yml  validate a configuration file and print the effective settings\n"
    "  wharf garbage-collect CONFIG.yml [--dry-run] [--delete-untagged]\n"
    "                                 (registry stopped) removes blobs that no manifest in a\n"
    "                                 repository references, manifests that no repository holds,\n"
    "                                 and stray files in blobs/; with --delete-untagged, also the\n"
    "                                 manifests no tag points to and what only they referenced;\n"
    "                                 prints what it freed (--dry-run: what it would free)\n"
    "  wharf check CONFIG.yml [--verify-content] [--repair]\n"
    "                                 check the store's consistency, repair it (wharf check --help)\n"
    "  wharf backup CONFIG.yml DIR [--include-blobs]\n"
    "                                 consistent snapshot of the store, also while serving; with\n"
    "                                 storage.s3 the index (blobs checked in the bucket), and the\n"
    "                                 blobs too with --include-blobs\n"
    "  wharf restore CONFIG.yml DIR [--force]\n"
    "                                 fill an empty root directory from a backup (storage.s3: the\n"
    "                                 index, and the blobs the bucket lacks uploaded from the backup)\n"
    "  wharf export CONFIG.yml OUT.tar IMAGE... [--images-file FILE] [--platform OS/ARCH]\n"
    "                                 write images as one OCI layout tar (fetching what is missing)\n"
    "  wharf import CONFIG.yml BUNDLE.tar\n"
    "                                 verify a bundle whole, then add its images\n"
    "  wharf import-registry CONFIG.yml SOURCE [--s3-endpoint URL] [--s3-region R] [--s3-insecure]\n"
    "                                 (wharf stopped) add every repository, tag, manifest and blob\n"
    "                                 of a registry:2 storage tree, verified. SOURCE: its\n"
    "                                 rootdirectory, or s3://BUCKET[/ROOTDIRECTORY] (credentials from\n"
    "                                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; docs/migration.md)\n"
    "  wharf prefetch CONFIG.yml IMAGE... [--images-file FILE]\n"
    "                                 warm the cache from the upstreams\n"
    "  wharf healthcheck CONFIG.yml [URL]\n"
    "                                 GET /debug/health of the configured listener; exit 0 if healthy\n"
    "  wharf robot [CONFIG.yml] create NAME --allow 'team-a/*:pull,push' [--expires 90d]\n"
    "  wharf robot [CONFIG.yml] list | revoke NAME\n"
    "                                 robot accounts (login robot$NAME); the secret is printed once\n"
    "  wharf --help | --version\n"
    "\n"
    "CONFIG is a registry:2 config.yml (wharf's own options extend it); REGISTRY_* environment\n"
    "variables override it as in registry:2, e.g. REGISTRY_HTTP_ADDR=0.0.0.0:5000.\n";

// Loads the config for a verb: from the file, or the embedded default when `path` is empty.
std::optional<wharf::config::Config> load(const std::string& path) {
  std::vector<std::string> warnings;
  auto env = wharf::config::registry_env();
  auto cfg = path.empty() ? wharf::config::load_from_string(wharf::config::default_yaml(), env, warnings)
                          : wharf::config::load_file(path, env, warnings);
  for (const auto& w : warnings) spdlog::warn("config: {}", w);
  if (!cfg) {
    spdlog::critical("invalid configuration: {}", cfg.error().str());
    return std::nullopt;
  }
  return *cfg;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Messages go to stderr until the configuration chooses the format (stdout is for command output).
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("wharf", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "-v" || args[0] == "version") {
    std::printf("wharf %s\n", WHARF_VERSION);
    return 0;
  }
  const std::string& verb = args[0];
  if (verb == "serve") {
    if (args.size() > 2) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    auto cfg = load(args.size() == 2 ? args[1] : "");
    if (!cfg) return 1;
    wharf::setup_logging(*cfg);
    return wharf::serve(*cfg);
  }
  if (verb == "check-config") {
    if (args.size() != 2) {
      std::fputs("usage: wharf check-config CONFIG.yml\n", stderr);
      return 2;
    }
    auto cfg = load(args[1]);
    if (!cfg) return 1;
    // The same checks serve runs before it starts: files readable, TLS pair matching, root creatable.
    if (auto problems = wharf::preflight(*cfg); !problems.empty()) {
      for (const auto& p : problems) std::fprintf(stderr, "invalid configuration: %s\n", p.c_str());
      return 1;
    }
    const std::string storage = cfg->storage_driver == wharf::config::StorageDriver::S3
                                    ? "s3 bucket " + cfg->s3.bucket + " at " + cfg->s3.endpoint_url() + " (reachable, writable)"
                                    : "root " + cfg->root_directory;
    // The probe above connected and checked the schema; the password is never printed.
    const std::string index = cfg->database_dsn.empty()
                                  ? std::string("index lmdb")
                                  : "index postgresql " + wharf::cache::pg::redact_dsn(cfg->database_dsn) + " (reachable)";
    std::printf("configuration OK: listen %s, %s, %s, auth %s, delete %s, %zu upstream(s)\n", cfg->http_addr.c_str(),
                storage.c_str(), index.c_str(), wharf::auth_mode(*cfg).c_str(),
                cfg->delete_enabled ? "enabled" : "disabled", cfg->upstreams.size());
    return 0;
  }
  using Command = int (*)(const wharf::config::Config&, const std::vector<std::string>&);
  static const std::pair<const char*, Command> kCommands[] = {
      {"garbage-collect", &wharf::commands::garbage_collect}, {"backup", &wharf::commands::backup},
      {"restore", &wharf::commands::restore},                 {"export", &wharf::commands::export_images},
      {"import", &wharf::commands::import_bundle},            {"prefetch", &wharf::commands::prefetch},
      {"check", &wharf::commands::check},                     {"healthcheck", &wharf::commands::healthcheck},
      {"import-registry", &wharf::commands::import_registry},
      {"robot", &wharf::commands::robot},
  };
  if (verb == "check" && args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
    std::fputs(wharf::commands::kCheckHelp, stdout);
    return 0;
  }
  if (verb == "robot" && args.size() >= 2 && (args[1] == "create" || args[1] == "list" || args[1] == "revoke")) {
    auto cfg = load("");  // no CONFIG: the embedded default (robots under ./data)
    if (!cfg) return 1;
    return wharf::commands::robot(*cfg, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  for (const auto& [name, fn] : kCommands) {
    if (verb != name) continue;
    if (args.size() < 2) {
      std::fprintf(stderr, "usage: wharf %s CONFIG.yml ...\n\n%s", name, kUsage);
      return 2;
    }
    auto cfg = load(args[1]);
    if (!cfg) return 1;
    wharf::setup_logging(*cfg);
    return fn(*cfg, std::vector<std::string>(args.begin() + 2, args.end()));
  }
  std::fprintf(stderr, "wharf: unknown command '%s'\n\n%s", verb.c_str(), kUsage);
  return 2;
}
