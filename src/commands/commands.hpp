#pragma once
// The offline verbs of the wharf CLI (besides serve and check-config). Each returns the process exit
// code (0 ok, 1 failure with a message logged, 2 usage error) and takes the verb's own arguments
// (after CONFIG).
#include <string>
#include <vector>

#include "src/config/config.hpp"

namespace wharf::commands {

// wharf garbage-collect CONFIG [--dry-run] [--delete-untagged]
int garbage_collect(const config::Config& cfg, const std::vector<std::string>& args);
// wharf backup CONFIG DIR
int backup(const config::Config& cfg, const std::vector<std::string>& args);
// wharf restore CONFIG DIR [--force]
int restore(const config::Config& cfg, const std::vector<std::string>& args);
// wharf export CONFIG OUT.tar IMAGE... [--images-file FILE] [--platform OS/ARCH]...
int export_images(const config::Config& cfg, const std::vector<std::string>& args);
// wharf import CONFIG BUNDLE.tar
int import_bundle(const config::Config& cfg, const std::vector<std::string>& args);
// wharf check CONFIG [--verify-content] [--repair]: exit 0 when no problem is left, 1 otherwise.
int check(const config::Config& cfg, const std::vector<std::string>& args);
// The text of `wharf check --help`.
extern const char* const kCheckHelp;
// wharf import-registry CONFIG SOURCE [--s3-...]: adds a registry:2 storage tree's content (verified); exit 1 if
// anything was skipped (each named), or if a running server holds the store.
int import_registry(const config::Config& cfg, const std::vector<std::string>& args);
// wharf prefetch CONFIG IMAGE... [--images-file FILE]
int prefetch(const config::Config& cfg, const std::vector<std::string>& args);
// wharf healthcheck CONFIG [URL]: GETs /debug/health of the configured listener (or URL); exit 0 on a
// 200, 1 otherwise (a refused connection, a timeout, any other status), 2 for a usage error.
int healthcheck(const config::Config& cfg, const std::vector<std::string>& args);
// The URL `wharf healthcheck` probes: the debug listener if set, else the main one (https with TLS),
// with a wildcard listen address replaced by loopback.
std::string health_url(const config::Config& cfg);

// wharf robot CONFIG create NAME --allow PATTERN:ACTIONS... [--expires 90d] | list | revoke NAME
int robot(const config::Config& cfg, const std::vector<std::string>& args);

}  // namespace wharf::commands
