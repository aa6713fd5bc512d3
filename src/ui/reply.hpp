#pragma once
// Answers of the page's API: JSON bodies, `{"error","code"}` errors, and small JSON request bodies.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "src/http/server.hpp"
#include "src/oci/errors.hpp"

namespace wharf::ui {

// Sends `body` as a JSON response with `status`, marked not cacheable.
void send_json(const http::ExchangePtr& ex, int status, const nlohmann::json& body);
// Sends {"error": message, "code": CODE} with `status` (0: the OCI table's status for `code`).
void send_error(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& message, int status = 0);
// Reads a JSON object body of at most `max` bytes and passes it on; answers 400/413 itself when the
// body is missing, too large, not JSON or not an object.
void read_json_body(const http::ExchangePtr& ex, size_t max, std::function<void(nlohmann::json)> next);
// The string member `key` of `body`, or nullopt if absent or not a string.
std::optional<std::string> string_member(const nlohmann::json& body, const char* key);

}  // namespace wharf::ui
