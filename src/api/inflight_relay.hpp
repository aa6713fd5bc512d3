#pragma once
// The waiting front's side of in-flight streaming: a client's GET of a blob that another front is
// downloading is answered with the bytes that front serves on /internal/inflight/<digest>, as they
// arrive. The relay hashes what it passes on and cuts the client's connection, rather than ending the
// body, if the result does not match the digest.
#include <cstdint>
#include <functional>
#include <string>

#include "src/http/server.hpp"
#include "src/oci/digest.hpp"

namespace wharf::proxy {
class HttpClient;
}

namespace wharf::api {

// How a relay ended: the whole verified body sent; the client's connection cut after its head (owner
// failed, hung up, or the bytes did not match); or nothing sent to the client (the owner refused or was
// unreachable: the caller falls back to waiting for the publication); Unauthorized is NotStarted because
// the owner refused the token (the fronts' http.secret differ).
enum class RelayEnd { Completed, Cut, NotStarted, Unauthorized };

// Where to read and with what: the owner's "host:port", whether it speaks TLS, the token for the digest.
struct RelaySource {
  std::string address;
  bool tls = false;
  std::string token;
};

// Starts relaying `digest` from `src` to `ex` (a GET without Range). `relayed` counts the bytes passed
// on (must outlive the transfer); `done` runs once on the loop with the outcome, unless the client hung
// up first. Reading pauses while the client has a piece queued, so a slow client holds the owner back
// instead of growing buffers.
void relay_inflight(proxy::HttpClient& client, const RelaySource& src, const http::ExchangePtr& ex,
                    const oci::Digest& digest, uint64_t* relayed, std::function<void(RelayEnd)> done);

}  // namespace wharf::api
