// Per-address password-check limits: in-flight cap and exponential backoff after repeated failures.
#include "src/auth/throttle.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace wharf::auth {

namespace {

// Whole seconds from `now` until `until`, rounded up, at least 1.
std::chrono::seconds wait_until(FailureThrottle::Clock::time_point until, FailureThrottle::Clock::time_point now) {
  auto left = std::chrono::ceil<std::chrono::seconds>(until - now);
  return std::max(left, std::chrono::seconds(1));
}

}  // namespace

std::string client_key(std::string_view peer) {
  if (peer.find(':') == std::string_view::npos || peer.size() >= INET6_ADDRSTRLEN) return std::string(peer);
  const std::string text(peer);
  in6_addr a{};
  if (::inet_pton(AF_INET6, text.c_str(), &a) != 1) return text;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    char v4[INET_ADDRSTRLEN];
    if (::inet_ntop(AF_INET, &a.s6_addr[12], v4, sizeof v4)) return v4;
    return text;
  }
  std::memset(&a.s6_addr[8], 0, 8);
  char out[INET6_ADDRSTRLEN];
  if (!::inet_ntop(AF_INET6, &a, out, sizeof out)) return text;
  return std::string(out) + "/64";
}

FailureThrottle::FailureThrottle(int max_failures, std::chrono::seconds base, std::chrono::seconds max_wait)
    : max_failures_(std::max(max_failures, 1)),
      base_(std::max(base, std::chrono::seconds(1))),
      max_wait_(std::max(max_wait, base_)) {}

std::optional<std::chrono::seconds> FailureThrottle::begin(const std::string& client, Clock::time_point now) {
  if (clients_.size() > kPruneAbove) prune(now);
  State& st = clients_[client];
  if (st.failures > 0 && now - st.last_failure >= kForget) st.failures = 0;
  if (now < st.blocked_until) return wait_until(st.blocked_until, now);
  if (st.in_flight >= max_failures_) return std::chrono::seconds(1);
  ++st.in_flight;
  return std::nullopt;
}

void FailureThrottle::finish(const std::string& client, Outcome outcome, Clock::time_point now) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  State& st = it->second;
  if (st.in_flight > 0) --st.in_flight;
  if (outcome == Outcome::Verified) {
    st.failures = 0;
    st.blocked_until = {};
  } else if (outcome == Outcome::Failed) {
    ++st.failures;
    st.last_failure = now;
    if (st.failures >= max_failures_) {
      const int doublings = std::min(st.failures - max_failures_, 30);
      auto wait = base_ * (int64_t(1) << doublings);
      if (wait > max_wait_ || wait < base_) wait = max_wait_;
      st.blocked_until = std::max(st.blocked_until, now + wait);
    }
  }
  if (st.in_flight == 0 && st.failures == 0) clients_.erase(it);
}

void FailureThrottle::prune(Clock::time_point now) {
  std::erase_if(clients_, [&](const auto& entry) {
    const State& st = entry.second;
    return st.in_flight == 0 && now >= st.blocked_until && now - st.last_failure >= kForget;
  });
}

}  // namespace wharf::auth
