#pragma once
// Checked parsing of numbers that come from outside (HTTP headers, JSON, config, tar headers): every
// parse either yields a value inside the caller's range or nullopt. Never throws, never wraps, never UB.
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace wharf::util {

// Decimal digits only (no sign, no spaces, no "0x"), value <= max; nullopt otherwise (empty, junk, overflow).
std::optional<uint64_t> parse_u64(std::string_view s, uint64_t max = std::numeric_limits<uint64_t>::max());
// Optional leading '-', then decimal digits; value within [min, max]; nullopt otherwise.
std::optional<int64_t> parse_i64(std::string_view s, int64_t min = std::numeric_limits<int64_t>::min(),
                                 int64_t max = std::numeric_limits<int64_t>::max());
// Hexadecimal digits only (either case), value <= max; nullopt otherwise.
std::optional<uint64_t> parse_hex_u64(std::string_view s, uint64_t max = std::numeric_limits<uint64_t>::max());
// Like parse_u64 after trimming spaces and tabs on both sides (header values).
std::optional<uint64_t> parse_u64_trimmed(std::string_view s, uint64_t max = std::numeric_limits<uint64_t>::max());

// A JSON number as an integer in [min, max]: integers as they are; floats only if finite, whole-valued
// or not (truncated toward zero) and inside the range. Anything else (string, NaN, 1e300) is nullopt.
std::optional<int64_t> json_int(const nlohmann::json& v, int64_t min, int64_t max);

// Seconds clamped to [0, max_seconds], safe to add to any steady_clock/system_clock time point
// within a few centuries of now (the caller chooses max_seconds, e.g. a day or a year).
std::chrono::seconds clamp_seconds(int64_t s, int64_t max_seconds);

}  // namespace wharf::util
