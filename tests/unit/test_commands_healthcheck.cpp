// wharf healthcheck: which URL it probes for each listener configuration.
#include <doctest/doctest.h>

#include "src/commands/commands.hpp"

using wharf::commands::health_url;
using wharf::config::Config;

TEST_CASE("health_url") {
  Config cfg;
  SUBCASE("a wildcard listen address is probed on loopback") {
    cfg.http_addr = ":5000";
    CHECK(health_url(cfg) == "http://127.0.0.1:5000/debug/health");
    cfg.http_addr = "0.0.0.0:5001";
    CHECK(health_url(cfg) == "http://127.0.0.1:5001/debug/health");
    cfg.http_addr = "[::]:5002";
    CHECK(health_url(cfg) == "http://[::1]:5002/debug/health");
  }
  SUBCASE("a named host is probed as configured") {
    cfg.http_addr = "127.0.0.5:6000";
    CHECK(health_url(cfg) == "http://127.0.0.5:6000/debug/health");
  }
  SUBCASE("TLS on the main listener means https") {
    cfg.http_addr = ":5443";
    cfg.tls_certificate = "/certs/tls.crt";
    CHECK(health_url(cfg) == "https://127.0.0.1:5443/debug/health");
  }
  SUBCASE("the debug listener is preferred, always plain http") {
    cfg.http_addr = ":5443";
    cfg.tls_certificate = "/certs/tls.crt";
    cfg.debug_addr = "127.0.0.1:5001";
    CHECK(health_url(cfg) == "http://127.0.0.1:5001/debug/health");
  }
}
