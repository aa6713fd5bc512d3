// libFuzzer harness for the request body framing (BodyDecoder), chunked or Content-Length: the first
// byte picks the mode and how the input is split. Decoding whole and in pieces must agree, every step
// must make progress, and body bytes must be views into the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/http/parse.hpp"

using wharf::http::BodyDecoder;

namespace {

struct Outcome {
  std::string body;
  size_t consumed = 0;
  bool error = false;
  bool done = false;
};

Outcome decode(BodyDecoder d, std::string_view in, size_t step) {
  Outcome o;
  for (size_t i = 0; i < in.size() && !o.error && !d.done(); i += step) {
    std::string_view piece = in.substr(i, step);
    while (!piece.empty() && !d.done()) {
      auto s = d.feed(piece);
      if (s.consumed > piece.size()) __builtin_trap();
      if (!s.data.empty() &&
          (s.data.data() < piece.data() || s.data.data() + s.data.size() > piece.data() + piece.size()))
        __builtin_trap();
      if (s.data.size() > s.consumed) __builtin_trap();
      o.consumed += s.consumed;
      o.body.append(s.data);
      if (s.error) {
        o.error = true;
        break;
      }
      if (s.consumed == 0) __builtin_trap();  // no progress on non-empty input
      piece.remove_prefix(s.consumed);
    }
    if (o.error) break;
    // Whole-step consumption stops only at done; keep the positions aligned with `consumed`.
    if (d.done()) break;
  }
  o.done = d.done();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool chunked = (mode & 1) == 0;
  const uint64_t length = chunked ? 0 : uint64_t(mode >> 1) * 3;
  const size_t step = 1 + (mode >> 4);

  Outcome whole = decode(BodyDecoder(chunked, length), in, in.size() ? in.size() : 1);
  Outcome parts = decode(BodyDecoder(chunked, length), in, step);
  if (whole.body != parts.body || whole.error != parts.error || whole.done != parts.done) __builtin_trap();
  if (!whole.error && whole.consumed != parts.consumed) __builtin_trap();
  if (whole.body.size() > in.size()) __builtin_trap();
  if (!chunked) {
    if (whole.error || whole.body.size() != std::min<uint64_t>(length, in.size())) __builtin_trap();
    if (whole.done != (in.size() >= length)) __builtin_trap();
  }
  return 0;
}
