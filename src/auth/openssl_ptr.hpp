#pragma once
// unique_ptr deleters for the OpenSSL objects the auth code owns (one owner per C handle).
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

namespace wharf::auth {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};

}  // namespace wharf::auth
