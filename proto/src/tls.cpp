#include "lostcard/wire/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>
#include <utility>
#include <vector>

namespace lostcard::wire {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's error queue as text (and emptied), for exception messages.
std::string opensslErrors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    text += (text.empty() ? "" : "; ") + std::string(buf);
  }
  return text.empty() ? "unknown error" : text;
}

void loadCommon(ssl::context& ctx, const TlsFiles& files) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("cannot restrict TLS to 1.2 or newer");
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::no_compression);
  auto load = [](const std::string& what, const std::string& path, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot load " + what + " '" + path + "': " + e.what());
    }
  };
  load("CA", files.ca_file, [&] { ctx.load_verify_file(files.ca_file); });
  load("certificate", files.cert_file, [&] { ctx.use_certificate_chain_file(files.cert_file); });
  load("private key", files.key_file,
       [&] { ctx.use_private_key_file(files.key_file, ssl::context::pem); });
}

// The first reason a handshake refused its peer's certificate, kept on the SSL object so the
// gateway can log it with the peer's address (OpenSSL only keeps the error code).
void freeFailure(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int failureIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freeFailure);
  return index;
}

std::string hexSerial(X509* cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  if (bn == nullptr) {
    return "?";
  }
  char* hex = BN_bn2hex(bn);
  std::string text = hex != nullptr ? hex : "?";
  OPENSSL_free(hex);
  BN_free(bn);
  return text;
}

// The subject's single common name, or "" (none, several, not text, or holding a NUL byte).
std::string commonNameOf(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
    return {};
  }
  unsigned char* utf8 = nullptr;
  const int n =
      ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
  if (n < 0) {
    return {};
  }
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  if (name.find('\0') != std::string::npos) {
    return {};
  }
  return name;
}

int recordVerifyFailure(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 1) {
    return 1;
  }
  auto* handshake =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (handshake == nullptr || SSL_get_ex_data(handshake, failureIndex()) != nullptr) {
    return 0;
  }
  std::string text = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
  text += " (depth " + std::to_string(X509_STORE_CTX_get_error_depth(store));
  if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
    const std::string cn = commonNameOf(cert);
    text += ", CN=" + (cn.empty() ? std::string("?") : cn) + ", serial " + hexSerial(cert);
  }
  text += ")";
  auto* kept = new std::string(std::move(text));
  if (SSL_set_ex_data(handshake, failureIndex(), kept) != 1) {
    delete kept;
  }
  return 0;
}

std::string timeText(const ASN1_TIME* time) {
  if (time == nullptr) {
    return "none";
  }
  BIO* bio = BIO_new(BIO_s_mem());
  ASN1_TIME_print(bio, time);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return text;
}

}  // namespace

ssl::context makeServerContext(const TlsFiles& files) {
  ssl::context ctx(ssl::context::tls_server);
  loadCommon(ctx, files);
  SSL_CTX_set_verify(ctx.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     recordVerifyFailure);
  // No session resumption: every connection shows its certificate again and is checked against
  // the revocation list in force (a resumed session would carry the old verdict). Kiosks keep
  // one long connection, so full handshakes cost nothing that matters. (Without this, a client
  // offering a ticket failed its handshake: "session id context uninitialized".)
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.native_handle(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.native_handle(), 0);
  return ctx;
}

ssl::context makeClientContext(const TlsFiles& files) {
  ssl::context ctx(ssl::context::tls_client);
  loadCommon(ctx, files);
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::string peerCommonName(SSL* ssl) {
  auto cert = peerCertificate(ssl);
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) {
    return {};
  }
  return commonNameOf(cert.get());
}

std::shared_ptr<X509> peerCertificate(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) {
    return nullptr;
  }
  return std::shared_ptr<X509>(cert, X509_free);
}

std::string peerVerifyFailure(SSL* ssl) {
  const auto* text = static_cast<const std::string*>(SSL_get_ex_data(ssl, failureIndex()));
  return text != nullptr ? *text : std::string();
}

// ---- RevocationList ----

bool RevocationList::FileStamp::operator==(const FileStamp& o) const {
  return device == o.device && inode == o.inode && size == o.size &&
         mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
}

RevocationList::FileStamp RevocationList::stampOf(const std::string& path) {
  struct stat st {};
  FileStamp stamp;
  if (::stat(path.c_str(), &st) == 0) {
    stamp.device = st.st_dev;
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.mtime = st.st_mtim;
  }
  return stamp;
}

RevocationList::RevocationList(ssl::context& ctx, std::string ca_file, std::string crl_file)
    : ctx_(ctx), ca_file_(std::move(ca_file)), crl_file_(std::move(crl_file)) {
  load();
  // The leaf (the kiosk's certificate) must be on no list; the CA is the root of trust itself.
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx_.native_handle()), X509_V_FLAG_CRL_CHECK);
}

RevocationList::~RevocationList() = default;

void RevocationList::load() {
  ERR_clear_error();
  const FileStamp stamp = stampOf(crl_file_);
  auto fail = [this](const std::string& why) {
    return std::runtime_error("revocation list '" + crl_file_ + "': " + why);
  };

  std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_file(crl_file_.c_str(), "r"), BIO_free);
  if (!in) {
    throw fail("cannot open: " + opensslErrors());
  }
  std::shared_ptr<X509_CRL> crl(PEM_read_bio_X509_CRL(in.get(), nullptr, nullptr, nullptr),
                                X509_CRL_free);
  if (!crl) {
    throw fail("not a PEM CRL: " + opensslErrors());
  }

  // Signed by one of the CAs the peers are verified against.
  std::unique_ptr<BIO, decltype(&BIO_free)> cas(BIO_new_file(ca_file_.c_str(), "r"), BIO_free);
  if (!cas) {
    throw fail("cannot open CA file '" + ca_file_ + "': " + opensslErrors());
  }
  bool signed_by_ca = false;
  while (X509* ca = PEM_read_bio_X509(cas.get(), nullptr, nullptr, nullptr)) {
    if (!signed_by_ca &&
        X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl.get())) == 0 &&
        X509_CRL_verify(crl.get(), X509_get0_pubkey(ca)) == 1) {
      signed_by_ca = true;
    }
    X509_free(ca);
  }
  ERR_clear_error();  // the end of the CA file reads as an error
  if (!signed_by_ca) {
    throw fail("not signed by a CA in '" + ca_file_ + "'");
  }
  if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl.get())) > 0) {
    throw fail("not valid yet (last update " + timeText(X509_CRL_get0_lastUpdate(crl.get())) + ")");
  }
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      next != nullptr && X509_cmp_current_time(next) < 0) {
    throw fail("expired at " + timeText(next) + " (make a new one: tools/pki crl DIR)");
  }

  // A fresh verify store (the CA and this list) replaces the context's: OpenSSL cannot take a
  // list out of a store, and a store with two lists of one CA may consult the older one.
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr || X509_STORE_load_file(store, ca_file_.c_str()) != 1 ||
      X509_STORE_add_crl(store, crl.get()) != 1) {
    X509_STORE_free(store);
    throw fail("cannot build the verify store: " + opensslErrors());
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  SSL_CTX_set_cert_store(ctx_.native_handle(), store);  // frees the previous store
  crl_ = std::move(crl);
  stamp_ = stamp;
}

RevocationList::Refresh RevocationList::refreshIfChanged() {
  const FileStamp now = stampOf(crl_file_);
  if (now == stamp_ || (failed_stamp_ && now == *failed_stamp_)) {
    return {};
  }
  try {
    load();
    failed_stamp_.reset();
    return {true, {}};
  } catch (const std::exception& e) {
    // Reported once per version of the file; the next change (the rest of a half-written file,
    // say) is tried again.
    failed_stamp_ = now;
    return {false, e.what()};
  }
}

bool RevocationList::isRevoked(X509* cert) const {
  if (cert == nullptr ||
      X509_NAME_cmp(X509_get_issuer_name(cert), X509_CRL_get_issuer(crl_.get())) != 0) {
    return false;
  }
  X509_REVOKED* entry = nullptr;
  return X509_CRL_get0_by_cert(crl_.get(), &entry, cert) == 1;
}

std::string RevocationList::describe() const {
  std::string number = "?";
  if (auto* n = static_cast<ASN1_INTEGER*>(
          X509_CRL_get_ext_d2i(crl_.get(), NID_crl_number, nullptr, nullptr))) {
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(n, nullptr)) {
      char* dec = BN_bn2dec(bn);
      number = dec != nullptr ? dec : "?";
      OPENSSL_free(dec);
      BN_free(bn);
    }
    ASN1_INTEGER_free(n);
  }
  const int revoked = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl_.get()));
  return crl_file_ + ": number " + number + ", " + std::to_string(revoked < 0 ? 0 : revoked) +
         " revoked, next update " + timeText(X509_CRL_get0_nextUpdate(crl_.get()));
}

}  // namespace lostcard::wire
