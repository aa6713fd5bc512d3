#pragma once
// The /v2 API entry point (and /auth/token): routing, the auth gate, and dispatch to the endpoint handlers.
#include <memory>
#include <optional>
#include <string>

#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/api/route.hpp"
#include "proxy/routing.hpp"
#include "src/http/server.hpp"

namespace wharf::api {

class Registry {
 public:
  Registry(Context& ctx, AuthGate& auth) : ctx_(ctx), auth_(auth) {}
  // Handles one request (the http::Handler).
  void handle(const http::ExchangePtr& ex);

 private:
  // What dispatch needs from the index before choosing a handler (read where the index may block).
  struct Facts {
    std::optional<std::string> immutable;  // why a manifest PUT/DELETE is refused (auth.immutabletags)
    std::optional<proxy::Decision> decision;  // the mirror's routing, when upstreams are configured
    bool cached_upstream_repo = false;        // the decision's cache repository exists (writes only)
  };
  // Reads the Facts of a request (on a worker when the index blocks); throws if the index cannot answer.
  Facts read_facts(const cache::Index& index, const Route& route, const std::string& method, const std::string& ns) const;
  void dispatch(const http::ExchangePtr& ex, const Route& route, const Caller& caller);
  void dispatch_with(const http::ExchangePtr& ex, const Route& route, const Caller& caller, const Facts& facts);
  // Why a manifest PUT/DELETE would break auth.immutabletags (an existing immutable tag), or nullopt.
  std::optional<std::string> immutable_conflict(const cache::Index& index, const cache::Index::ReadTxn& txn,
                                                const Route& route, const std::string& method) const;
  Context& ctx_;
  AuthGate& auth_;
};

}  // namespace wharf::api
