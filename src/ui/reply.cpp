#include "src/ui/reply.hpp"

#include "src/util/json.hpp"

namespace wharf::ui {
namespace {

// Collects a small body, refusing more than `max` bytes.
class JsonSink : public http::BodySink {
 public:
  JsonSink(http::ExchangePtr ex, size_t max, std::function<void(nlohmann::json)> next)
      : ex_(std::move(ex)), max_(max), next_(std::move(next)) {}
  bool on_data(const char* data, size_t len) override {
    if (failed_) return false;
    if (text_.size() + len > max_) {
      failed_ = true;
      send_error(ex_, oci::ErrorCode::SizeInvalid, std::string("request body larger than ").append(std::to_string(max_)) + " bytes", 413);
      return false;
    }
    text_.append(data, len);
    return true;
  }
  void on_end() override {
    if (failed_) return;
    auto parsed = util::parse_json(text_, util::JsonLimits{8, max_, 64 * 1024, 8});
    if (!parsed) return send_error(ex_, oci::ErrorCode::Unsupported, "request body is not JSON: " + parsed.error().message, 400);
    if (!parsed->is_object()) return send_error(ex_, oci::ErrorCode::Unsupported, "request body must be a JSON object", 400);
    next_(std::move(*parsed));
  }

 private:
  http::ExchangePtr ex_;
  size_t max_;
  std::function<void(nlohmann::json)> next_;
  std::string text_;
  bool failed_ = false;
};

}  // namespace

void send_json(const http::ExchangePtr& ex, int status, const nlohmann::json& body) {
  http::Response r(status);
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.header("Content-Type", "application/json; charset=utf-8");
  r.header("Cache-Control", "no-store");
  r.header("X-Content-Type-Options", "nosniff");
  ex->respond(std::move(r));
}

void send_error(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& message, int status) {
  const auto& info = oci::error_info(code);
  send_json(ex, status ? status : info.status, nlohmann::json{{"error", message}, {"code", std::string(info.wire)}});
}

void read_json_body(const http::ExchangePtr& ex, size_t max, std::function<void(nlohmann::json)> next) {
  const auto& req = ex->req();
  if (!req.has_body()) return send_error(ex, oci::ErrorCode::Unsupported, "a JSON body is required", 400);
  if (req.content_length && *req.content_length > max)
    return send_error(ex, oci::ErrorCode::SizeInvalid, std::string("request body larger than ").append(std::to_string(max)) + " bytes", 413);
  ex->read_body(std::make_unique<JsonSink>(ex, max, std::move(next)));
}

std::optional<std::string> string_member(const nlohmann::json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace wharf::ui
