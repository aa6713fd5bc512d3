#pragma once
// Building responses: the one place that turns an OCI error into status, headers and JSON body.
#include <string>

#include "src/http/message.hpp"
#include "src/http/server.hpp"
#include "src/oci/errors.hpp"

namespace wharf::api {

// An OCI JSON error response; `status` 0 means the table's status for `code`.
http::Response error_response(oci::ErrorCode code, std::string message = {}, oci::Detail detail = {},
                              int status = 0);
// Sends error_response(...) on `ex`.
void fail(const http::ExchangePtr& ex, oci::ErrorCode code, std::string message = {}, oci::Detail detail = {},
          int status = 0);
// A JSON body response with Content-Type application/json.
http::Response json_response(int status, std::string body);

}  // namespace wharf::api
