// Digest parsing and the EVP-backed streaming hasher.
#include "src/oci/digest.hpp"

#include <openssl/evp.h>

#include <new>
#include <utility>

namespace wharf::oci {
namespace {

const EVP_MD* md_for(DigestAlgo algo) {
  return algo == DigestAlgo::Sha512 ? EVP_sha512() : EVP_sha256();
}

std::string_view algo_name(DigestAlgo algo) {
  return algo == DigestAlgo::Sha512 ? "sha512" : "sha256";
}

size_t hex_len(DigestAlgo algo) { return algo == DigestAlgo::Sha512 ? 128 : 64; }

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string to_hex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0x0f];
  }
  return out;
}

EVP_MD_CTX* as_ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

std::string Digest::str() const {
  std::string out(algo_name(algo));
  out += ':';
  out += hex;
  return out;
}

std::optional<Digest> parse_digest(std::string_view s) {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view name = s.substr(0, colon);
  const std::string_view hex = s.substr(colon + 1);
  DigestAlgo algo;
  if (name == "sha256") {
    algo = DigestAlgo::Sha256;
  } else if (name == "sha512") {
    algo = DigestAlgo::Sha512;
  } else {
    return std::nullopt;
  }
  if (hex.size() != hex_len(algo) || !is_lower_hex(hex)) return std::nullopt;
  return Digest{algo, std::string(hex)};
}

Hasher::Hasher(DigestAlgo algo) : algo_(algo), ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(as_ctx(ctx_), md_for(algo_), nullptr) != 1) {
    EVP_MD_CTX_free(as_ctx(ctx_));
    throw std::bad_alloc();
  }
}

Hasher::~Hasher() { EVP_MD_CTX_free(as_ctx(ctx_)); }

Hasher::Hasher(Hasher&& other) noexcept
    : algo_(other.algo_), ctx_(std::exchange(other.ctx_, nullptr)) {}

Hasher& Hasher::operator=(Hasher&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(as_ctx(ctx_));
    algo_ = other.algo_;
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

void Hasher::update(const void* data, size_t len) {
  if (ctx_ != nullptr && len > 0) EVP_DigestUpdate(as_ctx(ctx_), data, len);
}

Digest Hasher::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (ctx_ != nullptr) EVP_DigestFinal_ex(as_ctx(ctx_), out, &n);
  return Digest{algo_, to_hex(out, n)};
}

Digest digest_of(std::string_view data, DigestAlgo algo) {
  Hasher h(algo);
  h.update(data);
  return h.finish();
}

}  // namespace wharf::oci
