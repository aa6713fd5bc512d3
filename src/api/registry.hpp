#pragma once
// The /v2 API entry point (and /auth/token): routing, the auth gate, and dispatch to the endpoint handlers.
#include <memory>
#include <optional>
#include <string>

#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/api/route.hpp"
#include "src/http/server.hpp"

namespace wharf::api {

class Registry {
 public:
  Registry(Context& ctx, AuthGate& auth) : ctx_(ctx), auth_(auth) {}
  // Handles one request (the http::Handler).
  void handle(const http::ExchangePtr& ex);

 private:
  void dispatch(const http::ExchangePtr& ex, const Route& route, const Caller& caller);
  // Why a manifest PUT/DELETE would break auth.immutabletags (an existing immutable tag), or nullopt.
  std::optional<std::string> immutable_conflict(const Route& route, const std::string& method);
  Context& ctx_;
  AuthGate& auth_;
};

}  // namespace wharf::api
