#pragma once
// The internal endpoint between fronts of a fleet: GET /internal/inflight/<digest> streams the bytes of
// a blob download running on this front, to a front whose clients wait for the same blob (it relays them,
// see inflight_relay.hpp). Authenticated with an HMAC token under http.secret (inflight_token.hpp).
#include <string>
#include <string_view>

#include "src/config/config.hpp"
#include "src/http/server.hpp"

namespace wharf::proxy {
class FetchTable;
}

namespace wharf::api {

// The path prefix of the endpoint, and the request header carrying the token.
inline constexpr std::string_view kInflightPath = "/internal/inflight/";
inline constexpr const char* kInflightTokenHeader = "X-Wharf-Inflight-Token";

// The "host:port" other fronts reach this one at: http.internaladdr, else http.addr, or this machine's
// host name with its port when http.addr listens on every address; empty if none gives a usable address.
std::string internal_address(const config::Config& cfg);

// Serves GET /internal/inflight/<digest> from `fetches` (null: no mirror). 404 UNSUPPORTED without
// http.secret, 401 UNAUTHORIZED without a valid token, 400 DIGEST_INVALID, 404 BLOB_UNKNOWN when no
// download of the digest runs here; else 200 with the blob's length, its bytes as they are verified-safe
// to send, ending when the download is verified, and a cut connection if it fails midway.
void serve_inflight(const config::Config& cfg, proxy::FetchTable* fetches, const http::ExchangePtr& ex);

}  // namespace wharf::api
