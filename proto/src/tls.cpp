#include "lostcard/wire/tls.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace lostcard::wire {

namespace ssl = boost::asio::ssl;

namespace {

void loadCommon(ssl::context& ctx, const TlsFiles& files) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("cannot restrict TLS to 1.2 or newer");
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  auto load = [](const std::string& what, const std::string& path, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot load " + what + " '" + path + "': " + e.what());
    }
  };
  load("CA", files.ca_file, [&] { ctx.load_verify_file(files.ca_file); });
  load("certificate", files.cert_file,
       [&] { ctx.use_certificate_chain_file(files.cert_file); });
  load("private key", files.key_file,
       [&] { ctx.use_private_key_file(files.key_file, ssl::context::pem); });
}

}  // namespace

ssl::context makeServerContext(const TlsFiles& files) {
  ssl::context ctx(ssl::context::tls_server);
  loadCommon(ctx, files);
  ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

ssl::context makeClientContext(const TlsFiles& files) {
  ssl::context ctx(ssl::context::tls_client);
  loadCommon(ctx, files);
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::string peerCommonName(SSL* ssl) {
  X509* cert = SSL_get_peer_certificate(ssl);
  if (cert == nullptr) {
    return {};
  }
  std::string name;
  char buf[256];
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                sizeof(buf)) > 0) {
    name = buf;
  }
  X509_free(cert);
  return name;
}

}  // namespace lostcard::wire
