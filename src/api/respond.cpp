#include "src/api/respond.hpp"

#include <unistd.h>

#include "src/api/small_cache.hpp"

namespace wharf::api {

std::optional<std::string> read_small_file(int fd, uint64_t size) {
  std::string out(size, '\0');
  uint64_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out.data() + got, size - got, off_t(got));
    if (n <= 0) return std::nullopt;
    got += uint64_t(n);
  }
  return out;
}

http::Response error_response(oci::ErrorCode code, std::string message, oci::Detail detail, int status) {
  http::Response r(status ? status : oci::error_info(code).status);
  r.body = oci::error_body(oci::Error{code, std::move(message), std::move(detail)});
  r.header("Content-Type", "application/json; charset=utf-8");
  return r;
}

void fail(const http::ExchangePtr& ex, oci::ErrorCode code, std::string message, oci::Detail detail, int status) {
  ex->respond(error_response(code, std::move(message), std::move(detail), status));
}

http::Response json_response(int status, std::string body) {
  http::Response r(status);
  r.body = std::move(body);
  r.header("Content-Type", "application/json; charset=utf-8");
  return r;
}

}  // namespace wharf::api
