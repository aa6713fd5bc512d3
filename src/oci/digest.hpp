#pragma once
// Content digests ("sha256:<64 hex>", "sha512:<128 hex>") and a streaming hasher over OpenSSL EVP.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wharf::oci {

enum class DigestAlgo { Sha256, Sha512 };

struct Digest {
  DigestAlgo algo = DigestAlgo::Sha256;
  std::string hex;  // lowercase hex of the encoded part
  // "sha256:<hex>"
  std::string str() const;
  friend bool operator==(const Digest&, const Digest&) = default;
};

// Parses "algo:hex"; nullopt for an unknown algorithm, wrong length, or non-lowercase-hex.
std::optional<Digest> parse_digest(std::string_view s);

// Incremental hasher; finish() may be called once.
class Hasher {
 public:
  // Starts a hash; throws std::bad_alloc if OpenSSL cannot allocate a context.
  explicit Hasher(DigestAlgo algo = DigestAlgo::Sha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();
  DigestAlgo algo() const { return algo_; }

 private:
  DigestAlgo algo_;
  void* ctx_;  // EVP_MD_CTX*
};

// One-shot digest of a buffer.
Digest digest_of(std::string_view data, DigestAlgo algo = DigestAlgo::Sha256);

}  // namespace wharf::oci
