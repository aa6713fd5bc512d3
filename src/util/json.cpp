// Bounded JSON parsing: nlohmann's iterative SAX parser feeding its DOM builder through a gate that
// counts nesting and estimated heap bytes, and stops the parse at the first bound crossed.
#include "src/util/json.hpp"

#include <optional>
#include <utility>

namespace wharf::util {
namespace {

using nlohmann::json;
using DomBuilder = nlohmann::detail::json_sax_dom_parser<json>;

// Estimated heap bytes per DOM element (libstdc++ + glibc malloc), rounded up on purpose.
constexpr uint64_t kValueBytes = 32;      // a json value in its parent's vector (16), doubled for growth
constexpr uint64_t kContainerBytes = 64;  // the vector/map object behind an array/object
constexpr uint64_t kStringBytes = 48;     // the std::string object behind a string
constexpr uint64_t kMemberBytes = 80;     // an object member's map node and key string
constexpr size_t kMaxMessage = 200;

uint64_t heap_of(size_t len) { return len > 15 ? len + 16 : 0; }

// Forwards SAX events to the DOM builder (if any) while enforcing depth and the DOM budget.
class Gate {
 public:
  Gate(const JsonLimits& limits, uint64_t budget, DomBuilder* dom) : limits_(limits), budget_(budget), dom_(dom) {}

  bool null() { return charge(kValueBytes) && (!dom_ || dom_->null()); }
  bool boolean(bool v) { return charge(kValueBytes) && (!dom_ || dom_->boolean(v)); }
  bool number_integer(json::number_integer_t v) { return charge(kValueBytes) && (!dom_ || dom_->number_integer(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    return charge(kValueBytes) && (!dom_ || dom_->number_unsigned(v));
  }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return charge(kValueBytes) && (!dom_ || dom_->number_float(v, s));
  }
  bool string(json::string_t& s) {
    return charge(kValueBytes + kStringBytes + heap_of(s.size())) && (!dom_ || dom_->string(s));
  }
  bool binary(json::binary_t& b) { return charge(kValueBytes + kStringBytes + b.size()) && (!dom_ || dom_->binary(b)); }
  bool start_object(std::size_t n) { return enter() && (!dom_ || dom_->start_object(n)); }
  bool key(json::string_t& s) { return charge(kMemberBytes + heap_of(s.size())) && (!dom_ || dom_->key(s)); }
  bool end_object() { return leave() && (!dom_ || dom_->end_object()); }
  bool start_array(std::size_t n) { return enter() && (!dom_ || dom_->start_array(n)); }
  bool end_array() { return leave() && (!dom_ || dom_->end_array()); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (!failure_) {
      std::string what = ex.what();
      if (what.size() > kMaxMessage) what = what.substr(0, kMaxMessage) + "...";
      failure_ = JsonError{JsonFailure::Syntax, "invalid JSON: " + what};
    }
    return false;
  }

  uint64_t cost() const { return cost_; }
  const std::optional<JsonError>& failure() const { return failure_; }

 private:
  bool charge(uint64_t bytes) {
    cost_ += bytes;
    if (cost_ <= budget_) return true;
    failure_ = JsonError{JsonFailure::TooBig, "JSON document too large for its size (more than " +
                                                  std::to_string(budget_) + " bytes in memory)"};
    return false;
  }
  bool enter() {
    if (++depth_ > limits_.max_depth) {
      failure_ = JsonError{JsonFailure::TooDeep,
                           "JSON nested deeper than " + std::to_string(limits_.max_depth) + " levels"};
      return false;
    }
    return charge(kValueBytes + kContainerBytes);
  }
  bool leave() {
    --depth_;
    return true;
  }

  const JsonLimits& limits_;
  uint64_t budget_;
  DomBuilder* dom_;
  size_t depth_ = 0;
  uint64_t cost_ = 0;
  std::optional<JsonError> failure_;
};

std::expected<uint64_t, JsonError> run(std::string_view text, const JsonLimits& limits, DomBuilder* dom) {
  if (text.size() > limits.max_bytes)
    return std::unexpected(JsonError{JsonFailure::TooLarge, "JSON text of " + std::to_string(text.size()) +
                                                                " bytes exceeds the limit of " +
                                                                std::to_string(limits.max_bytes)});
  const uint64_t budget = limits.dom_fixed + limits.dom_per_byte * text.size();
  Gate gate(limits, budget, dom);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &gate, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {  // defensive: the gate never throws, nlohmann should not either
    return std::unexpected(JsonError{JsonFailure::Syntax, std::string("invalid JSON: ") + e.what()});
  }
  if (gate.failure()) return std::unexpected(*gate.failure());
  if (!ok) return std::unexpected(JsonError{JsonFailure::Syntax, "invalid JSON"});
  return gate.cost();
}

}  // namespace

std::expected<nlohmann::json, JsonError> parse_json(std::string_view text, const JsonLimits& limits) {
  json out;
  DomBuilder dom(out, /*allow_exceptions=*/false);
  if (auto r = run(text, limits, &dom); !r) return std::unexpected(std::move(r.error()));
  return out;
}

std::expected<uint64_t, JsonError> json_dom_cost(std::string_view text, const JsonLimits& limits) {
  return run(text, limits, nullptr);
}

}  // namespace wharf::util
