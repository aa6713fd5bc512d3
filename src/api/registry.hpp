#pragma once
// The /v2 API entry point (and /auth/token): routing, the auth gate, and dispatch to the endpoint handlers.
#include <memory>

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
  Context& ctx_;
  AuthGate& auth_;
};

}  // namespace wharf::api
