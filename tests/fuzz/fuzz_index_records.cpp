// libFuzzer harness for the index's record decoders (cache/index_records.cpp): values read back from a
// possibly damaged data.mdb. The first byte picks the record kind, the rest is the value.
// Invariants: decoding never crashes nor reads past the value (ASan), and decoding is strict: a
// value that decodes re-encodes to exactly the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/index_records.hpp"

using namespace wharf::cache;
using namespace wharf::cache::index_detail;

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view v(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      if (auto b = decode_blob(v)) require(encode(*b) == v);
      break;
    case 1:
      if (auto m = decode_manifest(v)) require(encode(*m) == v);
      break;
    case 2:
      if (auto u = decode_upload(v)) require(encode(*u) == v);
      break;
    case 3:
      if (auto r = decode_referrer("sha256:x", v)) {
        ManifestRecord m;
        m.media_type = r->media_type;
        m.size = r->size;
        m.artifact_type = r->artifact_type;
        m.annotations_json = r->annotations_json;
        require(encode_referrer(m) == v && r->digest == "sha256:x");
      }
      break;
    case 4:
      if (auto i = decode_i64(v)) require(encode_i64(*i) == v);
      break;
    case 5: {
      std::string_view a, b;
      if (split_key(v, a, b)) require(key(a, b) == v);
      break;
    }
  }
  return 0;
}
