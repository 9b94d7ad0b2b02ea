#pragma once
// TLS contexts for the kiosk stream: TLS 1.2 or newer only, peers verified against the fleet CA.
//
// The cloud requires a client certificate issued by the fleet CA (mutual TLS) and, with a
// RevocationList, not revoked; the kiosk verifies the cloud's certificate against the same CA
// and its host name.
//
//   auto tls = wire::makeServerContext({ca, cert, key});
//   wire::RevocationList crl(tls, ca, "pki/crl.pem");   // throws: a start without it fails
//   ...  // on the thread that runs the handshakes, before each accept and now and then:
//   if (auto r = crl.refreshIfChanged(); r.changed) { /* drop sessions crl.isRevoked(cert) */ }
//   ...  // after a failed server handshake:
//   log->warn("TLS handshake with {} failed: {} {}", peer, ec.message(), peerVerifyFailure(ssl));
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
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

// The subject common name of a verified peer certificate, or "" when there is none, when it
// has more than one common name or when the name holds a NUL byte (no name to trust).
std::string peerCommonName(SSL* ssl);

// The peer's certificate (counted reference), or null when it presented none.
std::shared_ptr<X509> peerCertificate(SSL* ssl);

// Why a server context made by makeServerContext refused the peer's certificate in the
// handshake on `ssl`: "certificate revoked (depth 0, CN=kiosk-c, serial 4E02...)"; "" when no
// certificate was refused (none presented, or the handshake failed for another reason).
std::string peerVerifyFailure(SSL* ssl);

// A certificate revocation list (PEM CRL signed by the fleet CA) enforced by a server context:
// peer certificates it names fail the handshake ("certificate revoked"). The file is re-read
// when it changes (refreshIfChanged), so a revoked kiosk is refused on its next connection
// without a restart. Fail closed: a list that cannot be read at start throws; one that cannot be
// read later leaves the previous list in force.
class RevocationList {
 public:
  // Loads `crl_file` and turns on CRL checking of peer certificates in `ctx` (which must outlive
  // this). Throws std::runtime_error when the file cannot be read or parsed, is not signed by a
  // CA in `ca_file`, or is past its next-update time.
  RevocationList(boost::asio::ssl::context& ctx, std::string ca_file, std::string crl_file);
  ~RevocationList();
  RevocationList(const RevocationList&) = delete;
  RevocationList& operator=(const RevocationList&) = delete;

  struct Refresh {
    bool changed = false;  // a new list is in force
    std::string error;     // the file changed but could not be used (the old list stays)
  };
  // Re-reads the file when its size, modification time or inode changed (each version of the
  // file is tried once).
  // Replaces the context's verify store: call it on the thread that runs the handshakes.
  Refresh refreshIfChanged();

  // Whether `cert` is on the list in force.
  bool isRevoked(X509* cert) const;

  // "crl.pem: number 4098, 1 revoked, next update 2027-11-22 02:50:45 GMT", for logs.
  std::string describe() const;

 private:
  struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    timespec mtime{};
    bool operator==(const FileStamp& o) const;
  };
  static FileStamp stampOf(const std::string& path);
  // Reads, checks and installs the list; throws std::runtime_error on any failure.
  void load();

  boost::asio::ssl::context& ctx_;
  std::string ca_file_;
  std::string crl_file_;
  FileStamp stamp_;                        // of the list in force
  std::optional<FileStamp> failed_stamp_;  // of the last file that could not be used
  std::shared_ptr<X509_CRL> crl_;
};

}  // namespace lostcard::wire
