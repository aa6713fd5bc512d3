#include "src/api/respond.hpp"

namespace wharf::api {

http::Response error_response(oci::ErrorCode code, std::string message, std::string detail_json, int status) {
  http::Response r(status ? status : oci::error_info(code).status);
  r.body = oci::error_body(oci::Error{code, std::move(message), std::move(detail_json)});
  r.header("Content-Type", "application/json; charset=utf-8");
  return r;
}

void fail(const http::ExchangePtr& ex, oci::ErrorCode code, std::string message, std::string detail_json, int status) {
  ex->respond(error_response(code, std::move(message), std::move(detail_json), status));
}

http::Response json_response(int status, std::string body) {
  http::Response r(status);
  r.body = std::move(body);
  r.header("Content-Type", "application/json; charset=utf-8");
  return r;
}

}  // namespace wharf::api
