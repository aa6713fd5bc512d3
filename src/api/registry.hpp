#pragma once
// The /v2 API entry point: authentication, routing and dispatch to the endpoint handlers.
#include <memory>

#include "src/api/auth_gate.hpp"
#include "src/api/context.hpp"
#include "src/http/server.hpp"

namespace wharf::api {

class Registry {
 public:
  Registry(Context& ctx, AuthGate& auth) : ctx_(ctx), auth_(auth) {}
  // Handles one request (the http::Handler).
  void handle(const http::ExchangePtr& ex);

 private:
  void dispatch(const http::ExchangePtr& ex);
  Context& ctx_;
  AuthGate& auth_;
};

}  // namespace wharf::api
