#pragma once
// Per-client-address limits on password checks: how many may run at once, and an exponential backoff
// once a client keeps failing. Loop-thread only (not thread-safe); the clock is passed in for tests.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::auth {

// The key per-client limits count under: an IPv4 address as it is, an IPv6 address by its /64 (one
// host usually holds a whole /64), anything else unchanged.
std::string client_key(std::string_view peer);

class FailureThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Outcome { Verified, Failed, NotRun };

  // `max_failures` (at least 1) bounds both the checks in flight for one address and the failures it
  // may make in a row before it has to wait `base`, then twice as long after each further failure, up
  // to `max_wait`.
  explicit FailureThrottle(int max_failures, std::chrono::seconds base = std::chrono::seconds(1),
                           std::chrono::seconds max_wait = std::chrono::seconds(60));

  // Admits one check for `client` (counted as in flight until finish()); refused: how long to wait (>= 1 s).
  std::optional<std::chrono::seconds> begin(const std::string& client, Clock::time_point now = Clock::now());
  // Ends a check that begin() admitted. A verified password clears the client's failures.
  void finish(const std::string& client, Outcome outcome, Clock::time_point now = Clock::now());
  // Addresses with state kept (in flight or recent failures).
  size_t tracked() const { return clients_.size(); }

  static constexpr std::chrono::minutes kForget{15};  // failures older than this no longer count
  static constexpr size_t kPruneAbove = 4096;        // tracked addresses before idle ones are dropped

 private:
  struct State {
    int in_flight = 0;
    int failures = 0;  // in a row
    Clock::time_point last_failure{};
    Clock::time_point blocked_until{};
  };
  void prune(Clock::time_point now);

  int max_failures_;
  std::chrono::seconds base_;
  std::chrono::seconds max_wait_;
  std::unordered_map<std::string, State> clients_;
};

}  // namespace wharf::auth
