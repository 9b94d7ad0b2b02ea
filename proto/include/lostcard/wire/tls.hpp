#pragma once
// TLS contexts for the kiosk stream: TLS 1.2 or newer only, peers verified against the fleet CA.
//
// The cloud requires a client certificate issued by the fleet CA (mutual TLS); the kiosk
// verifies the cloud's certificate against the same CA and its host name.
#include <boost/asio/ssl/context.hpp>

#include <string>

namespace lostcard::wire {

struct TlsFiles {
  std::string ca_file;    // PEM, the fleet CA
  std::string cert_file;  // PEM, this peer's certificate (chain)
  std::string key_file;   // PEM, this peer's private key
};

// Throws std::runtime_error naming the file that could not be loaded.
boost::asio::ssl::context makeServerContext(const TlsFiles& files);
boost::asio::ssl::context makeClientContext(const TlsFiles& files);

// The subject common name of a verified peer certificate, or "" when there is none.
std::string peerCommonName(SSL* ssl);

}  // namespace lostcard::wire
