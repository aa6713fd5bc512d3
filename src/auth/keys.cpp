// PEM keys through OpenSSL: algorithm from the key type, libtrust key ids.
#include "src/auth/keys.hpp"

#include "src/auth/openssl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace wharf::auth {
namespace {


// Never prompts for a passphrase (OpenSSL's default would read the terminal).
int no_passphrase(char*, int, int, void*) { return 0; }

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

// libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in groups of 4.
std::string libtrust_kid(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, size_t(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string b32;
  for (size_t i = 0; i < 30; i += 5) {  // 30 bytes → 48 base32 characters
    uint64_t chunk = 0;
    for (size_t j = 0; j < 5; ++j) chunk = (chunk << 8) | md[i + j];
    for (int s = 35; s >= 0; s -= 5) b32 += kAlphabet[(chunk >> s) & 31];
  }
  std::string kid;
  for (size_t i = 0; i < b32.size(); i += 4) {
    if (!kid.empty()) kid += ':';
    kid += b32.substr(i, 4);
  }
  return kid;
}

// The algorithm for a key, or why it cannot be used.
std::expected<Alg, std::string> alg_for(EVP_PKEY* key) {
  const int type = EVP_PKEY_get_base_id(key);
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(key) < 2048) return std::unexpected("RSA keys must have at least 2048 bits");
    return Alg::RS256;
  }
  if (type == EVP_PKEY_EC) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
        (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0)) {
      return std::unexpected("EC keys must be on the P-256 curve (ES256)");
    }
    return Alg::ES256;
  }
  return std::unexpected("only P-256 EC (ES256) and RSA (RS256) keys are supported");
}

std::expected<Key, std::string> make_key(EVP_PKEY* raw) {
  auto pkey = own(raw);
  auto alg = alg_for(raw);
  if (!alg) return std::unexpected(alg.error());
  return Key{pkey, *alg, libtrust_kid(raw)};
}

std::expected<std::string, std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(std::string("cannot read ") + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::unexpected(std::string("cannot read ") + path.string() + ": " + std::strerror(errno));
  return text.str();
}

}  // namespace

std::string_view alg_name(Alg alg) { return alg == Alg::ES256 ? "ES256" : "RS256"; }

std::expected<Key, std::string> key_from_pkey(EVP_PKEY* pkey) { return make_key(pkey); }

std::expected<std::vector<Key>, std::string> parse_public_keys(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (!bio) return std::unexpected("out of memory");
  std::vector<Key> keys;
  for (int block = 1;; ++block) {
    char* name_raw = nullptr;
    char* header_raw = nullptr;
    unsigned char* data_raw = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) != 1) break;
    std::unique_ptr<char, OpenSslFree> name(name_raw), header(header_raw);
    std::unique_ptr<unsigned char, OpenSslFree> data(data_raw);
    const unsigned char* p = data.get();
    EVP_PKEY* key = nullptr;
    const std::string_view kind(name.get());
    if (kind == "CERTIFICATE") {
      std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, len));
      if (!cert) return std::unexpected(std::string("PEM block ") + std::to_string(block) + ": unreadable certificate");
      key = X509_get_pubkey(cert.get());
    } else if (kind == "PUBLIC KEY") {
      key = d2i_PUBKEY(nullptr, &p, len);
    } else {
      continue;  // other blocks (e.g. a private key) are not trust anchors
    }
    if (key == nullptr) return std::unexpected(std::string("PEM block ") + std::to_string(block) + ": unreadable public key");
    auto k = make_key(key);
    if (!k) return std::unexpected(std::string("PEM block ") + std::to_string(block) + ": " + k.error());
    keys.push_back(std::move(*k));
  }
  if (keys.empty()) return std::unexpected("no certificate or public key found");
  return keys;
}

std::expected<std::vector<Key>, std::string> load_public_keys(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error());
  auto keys = parse_public_keys(*text);
  if (!keys) return std::unexpected(path.string() + ": " + keys.error());
  return keys;
}

std::expected<Key, std::string> parse_private_key(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (!bio) return std::unexpected("out of memory");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
  if (key == nullptr) return std::unexpected("no usable PEM private key found (encrypted keys are not supported)");
  return make_key(key);
}

std::expected<Key, std::string> load_private_key(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error());
  auto key = parse_private_key(*text);
  if (!key) return std::unexpected(path.string() + ": " + key.error());
  return key;
}

}  // namespace wharf::auth
