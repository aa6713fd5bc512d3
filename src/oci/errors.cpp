// The OCI error table and the one place that writes the JSON error body.
#include "src/oci/errors.hpp"

#include <array>
#include <cstddef>

#include <nlohmann/json.hpp>

namespace wharf::oci {
namespace {

// Rows in ErrorCode order; the static_assert below keeps the two in step.
constexpr std::array<ErrorInfo, 16> kTable{{
    {"BLOB_UNKNOWN", "blob unknown to registry", 404},
    {"BLOB_UPLOAD_INVALID", "blob upload invalid", 400},
    {"BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404},
    {"DIGEST_INVALID", "provided digest did not match uploaded content", 400},
    {"MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400},
    {"MANIFEST_INVALID", "manifest invalid", 400},
    {"MANIFEST_UNKNOWN", "manifest unknown", 404},
    {"NAME_INVALID", "invalid repository name", 400},
    {"NAME_UNKNOWN", "repository name not known to registry", 404},
    {"SIZE_INVALID", "provided length did not match content length", 400},
    {"UNAUTHORIZED", "authentication required", 401},
    {"DENIED", "requested access to the resource is denied", 403},
    {"UNSUPPORTED", "The operation is unsupported.", 405},
    {"TOOMANYREQUESTS", "too many requests", 429},
    {"RANGE_INVALID", "requested range not satisfiable", 416},
    {"UNAVAILABLE", "service unavailable", 503},
}};

static_assert(kTable.size() == static_cast<size_t>(ErrorCode::Unavailable) + 1,
              "error table must have one row per ErrorCode");

}  // namespace

const ErrorInfo& error_info(ErrorCode code) {
  const auto i = static_cast<size_t>(code);
  return i < kTable.size() ? kTable[i] : kTable[static_cast<size_t>(ErrorCode::Unavailable)];
}

std::string error_body(const Error& e) {
  const ErrorInfo& info = error_info(e.code);
  // Built member by member: no initializer lists of temporaries (GCC 12 + ASan report them).
  nlohmann::json entry = nlohmann::json::object();
  entry["code"] = std::string(info.wire);
  entry["message"] = e.message.empty() ? std::string(info.message) : e.message;
  if (!e.detail.empty()) {
    nlohmann::json detail = nlohmann::json::object();
    for (const auto& [key, value] : e.detail.strings()) detail[key] = value;
    for (const auto& [key, values] : e.detail.lists()) detail[key] = values;
    entry["detail"] = std::move(detail);
  }
  nlohmann::json errors = nlohmann::json::array();
  errors.push_back(std::move(entry));
  nlohmann::json body = nlohmann::json::object();
  body["errors"] = std::move(errors);
  // Replace invalid UTF-8 instead of throwing: this function never fails.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wharf::oci
