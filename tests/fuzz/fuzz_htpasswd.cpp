// libFuzzer harness for the htpasswd parser and the Basic credential decoder (src/auth/htpasswd.*).
// The first byte picks the target; the rest is the input. Invariants are checked with __builtin_trap().
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/htpasswd.hpp"

namespace {

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
  out.resize(size_t(n));
  return out;
}

size_t count_lines(std::string_view text) {
  size_t n = text.empty() ? 0 : 1;
  for (char c : text) n += c == '\n';
  return n;
}

void fuzz_parse(std::string_view text) {
  std::vector<std::string> warnings;
  auto db = wharf::auth::Htpasswd::parse(text, warnings);
  if (db) {
    // Every user and every warning comes from a line of its own.
    if (db->size() + warnings.size() > count_lines(text)) __builtin_trap();
  } else if (db.error().find("line ") != 0) {
    __builtin_trap();  // a failure names its line
  }
}

void fuzz_basic(std::string_view header) {
  auto creds = wharf::auth::parse_basic(header);
  if (!creds) return;
  // The user never contains the separator, and encoding the pair again decodes to the same pair.
  if (creds->first.find(':') != std::string::npos) __builtin_trap();
  const std::string again = "Basic " + base64(creds->first + ":" + creds->second);
  auto round = wharf::auth::parse_basic(again);
  if (!round || *round != *creds) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    fuzz_basic(rest);
  } else {
    fuzz_parse(rest);
  }
  return 0;
}
