// wharf healthcheck CONFIG [URL]: one GET of /debug/health, for a container's HEALTHCHECK (an image that
// holds nothing but wharf has no curl). Blocking is fine here: this is a short-lived CLI process.
#include <curl/curl.h>

#include <cstdio>
#include <memory>

#include "src/commands/commands.hpp"

namespace wharf::commands {

namespace {

// The loopback address to dial for a listen host: wildcards mean "this machine".
std::string dial_host(const std::string& host) {
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "[::]" || host == "::") return "[::1]";
  return host;
}

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

}  // namespace

std::string health_url(const config::Config& cfg) {
  const bool debug = !cfg.debug_addr.empty();
  const std::string& addr = debug ? cfg.debug_addr : cfg.http_addr;
  const auto colon = addr.rfind(':');
  const std::string host = colon == std::string::npos ? addr : addr.substr(0, colon);
  const std::string port = colon == std::string::npos ? "5000" : addr.substr(colon + 1);
  const bool tls = !debug && !cfg.tls_certificate.empty();
  return std::string(tls ? "https://" : "http://").append(dial_host(host)).append(":").append(port).append("/debug/health");
}

int healthcheck(const config::Config& cfg, const std::vector<std::string>& args) {
  if (args.size() > 1) {
    std::fputs("usage: wharf healthcheck CONFIG.yml [URL]\n", stderr);
    return 2;
  }
  const std::string url = args.empty() ? health_url(cfg) : args[0];
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) {
    std::fputs("unhealthy: cannot initialise libcurl\n", stdout);
    return 1;
  }
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &discard);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  // A liveness probe, not an identity check: it dials this machine's own listener, whose certificate
  // names the public host, so the TLS handshake must succeed but the name and chain are not verified.
  curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYHOST, 0L);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    std::printf("unhealthy: %s: %s\n", url.c_str(), curl_easy_strerror(rc));
    return 1;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::printf("unhealthy: %s answered %ld\n", url.c_str(), status);
    return 1;
  }
  std::printf("healthy: %s\n", url.c_str());
  return 0;
}

}  // namespace wharf::commands
