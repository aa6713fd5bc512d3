// x5c chains through OpenSSL: DER certificates from base64, X509_STORE_CTX against the anchors.
#include "src/auth/x5c.hpp"

#include "src/auth/openssl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace wharf::auth {
namespace {

struct StackFree {
  void operator()(STACK_OF(X509)* s) const { sk_X509_pop_free(s, X509_free); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};

// Standard base64 (x5c is not base64url) of one DER certificate.
std::unique_ptr<X509, X509Free> decode_cert(const std::string& b64) {
  if (b64.empty() || b64.size() > 64 * 1024 || b64.size() % 4 != 0) return nullptr;
  std::string der(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), int(b64.size()));
  if (n <= 0) return nullptr;
  size_t len = size_t(n);
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) --len;  // EVP_DecodeBlock counts padding
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, long(len)));
  if (cert && p != reinterpret_cast<const unsigned char*>(der.data()) + len) return nullptr;  // trailing bytes
  return cert;
}

}  // namespace

std::expected<CertStore, std::string> CertStore::parse(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  CertStore s;
  s.store_ = std::shared_ptr<X509_STORE>(X509_STORE_new(), X509_STORE_free);
  if (!bio || !s.store_) return std::unexpected("out of memory");
  int count = 0;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    std::unique_ptr<X509, X509Free> cert(raw);
    if (X509_STORE_add_cert(s.store_.get(), cert.get()) != 1) return std::unexpected("cannot add a certificate");
    ++count;
  }
  if (count == 0) return std::unexpected("no certificate found");
  return s;
}

std::expected<CertStore, std::string> CertStore::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  auto s = parse(text.str());
  if (!s) return std::unexpected(path.string() + ": " + s.error());
  return s;
}

std::expected<Key, std::string> CertStore::verify_chain(const nlohmann::json& x5c, int64_t now) const {
  if (!x5c.is_array() || x5c.empty() || x5c.size() > kMaxX5cCerts)
    return std::unexpected("malformed token: x5c must list 1 to " + std::to_string(kMaxX5cCerts) + " certificates");
  std::vector<std::unique_ptr<X509, X509Free>> certs;
  for (const auto& c : x5c) {
    if (!c.is_string()) return std::unexpected("malformed token: x5c entries must be strings");
    auto cert = decode_cert(c.get<std::string>());
    if (!cert) return std::unexpected("malformed token: x5c holds an unreadable certificate");
    certs.push_back(std::move(cert));
  }
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  if (!chain) return std::unexpected("out of memory");
  for (size_t i = 1; i < certs.size(); ++i) {
    if (sk_X509_push(chain.get(), certs[i].get()) <= 0) return std::unexpected("out of memory");
    certs[i].release();  // owned by the stack now
  }
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), certs[0].get(), chain.get()) != 1)
    return std::unexpected("out of memory");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);  // an anchor need not be self-signed
  X509_VERIFY_PARAM_set_time(param, time_t(now));
  if (X509_verify_cert(ctx.get()) != 1)
    return std::unexpected(std::string("token x5c chain does not verify: ") +
                           X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  EVP_PKEY* key = X509_get_pubkey(certs[0].get());
  if (key == nullptr) return std::unexpected("token x5c certificate has no usable key");
  auto k = key_from_pkey(key);
  if (!k) return std::unexpected("token x5c certificate: " + k.error());
  return k;
}

}  // namespace wharf::auth
