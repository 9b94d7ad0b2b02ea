#pragma once
// The real system around a box, for end-to-end tests: a test PKI (the cloud's server certificate
// and kiosk certificates), a card key and synthetic cards, lostcard-admin on the test database,
// lostcard-cloud (kiosk gateway, and the people's HTTPS API when asked) and the argv of a
// lostcard-kiosk daemon on a simulated box. Each test keeps what it checks; only the setup
// every box test repeats lives here.
//
//   test::PgTestDb db;
//   test::BoxSystem sys(test::makeTestDir("my_e2etest"), db.conninfo());
//   sys.makePki({"kiosk-1"});
//   sys.makeCards({{"card-marie", "4556737586899855"}});     // also writes the card key
//   sys.admin({"migrate"});
//   auto cloud = sys.startCloud(/*http=*/true);             // waits for its ports
//   test::ChildProcess kiosk(sys.kioskArgv("kiosk-1", 6), sys.dir / "kiosk-1.log");
//   auto reply = test::httpsRequest(sys.httpPort(), sys.caFile(), "GET", "/v1/operator/kiosks",
//                                   token);
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lostcard/test/child_process.hpp"

namespace lostcard::test {

struct HttpsReply {
  unsigned status = 0;
  std::string body;
};

// One HTTPS request ("GET", "POST", ...) to 127.0.0.1:port, the server verified against
// `ca_file`; `token` as a bearer token when not empty, `body` as JSON when not empty.
HttpsReply httpsRequest(unsigned short port, const std::string& ca_file, const std::string& method,
                        const std::string& target, const std::string& token,
                        const std::string& body = "");

// lostcard-cloud's argv on the database `conninfo`, with the test PKI under dir/pki (tools/pki),
// the card key dir/card.key and the repository's models, webhooks to 127.0.0.1 allowed (the
// tests' receivers); `extra` (--listen, port files, limits) appended.
std::vector<std::string> cloudArgv(const std::filesystem::path& dir, const std::string& conninfo,
                                   const std::vector<std::string>& extra);

// lostcard-kiosk's argv for `kiosk_id` on a simulated box at dir/<kiosk_id> with the journal
// dir/<kiosk_id>.journal and its certificate from dir/pki/kiosks, talking to the cloud's gateway
// at `cloud` (HOST:PORT, server name localhost), `slots` slots, a heartbeat every 500 ms;
// `extra` appended.
std::vector<std::string> kioskArgv(const std::filesystem::path& dir, const std::string& kiosk_id,
                                   const std::string& cloud, int slots,
                                   const std::vector<std::string>& extra = {});

class BoxSystem {
 public:
  BoxSystem(std::filesystem::path dir, std::string conninfo);

  // tools/pki: a CA, the server certificate for localhost/127.0.0.1, one certificate per kiosk.
  void makePki(const std::vector<std::string>& kiosk_ids);
  // The card key (card.key) and, with lostcard-cardgen, a card folder per (name, number) under
  // dir/cards.
  void makeCards(const std::vector<std::pair<std::string, std::string>>& cards);
  // The people every box test starts with: the schema; issuer "bank"; holder "holder-marie"
  // (a webhook nobody answers) with card 4556737586899855 enrolled; kiosks "kiosk-1" and
  // "kiosk-2" with `slots` slots each; operators "op-east" (kiosk-1, password "east-password",
  // box code 1357924680) and "op-west" (kiosk-2, "west-password", 2468013579).
  void addPeople(int slots) const;
  // Runs lostcard-admin with the test database and the card key; returns what it printed.
  std::string admin(const std::vector<std::string>& args, const std::string& input = {}) const;
  std::vector<std::string> adminArgv(const std::vector<std::string>& args) const;
  // Starts lostcard-cloud (log: dir/cloud.log), with the people's HTTPS API when `http`, and
  // waits until it listens.
  std::unique_ptr<ChildProcess> startCloud(bool http, const std::vector<std::string>& extra = {});
  // lostcard-kiosk for `kiosk_id` on the simulated box dir/<kiosk_id>, journal
  // dir/<kiosk_id>.journal; `extra` options appended.
  std::vector<std::string> kioskArgv(const std::string& kiosk_id, int slots,
                                     const std::vector<std::string>& extra = {}) const;

  std::filesystem::path simRoot(const std::string& kiosk_id) const { return dir / kiosk_id; }
  std::filesystem::path journal(const std::string& kiosk_id) const {
    return dir / (kiosk_id + ".journal");
  }
  std::string caFile() const { return (dir / "pki/ca.crt").string(); }
  unsigned short httpPort() const { return http_port_; }

  const std::filesystem::path dir;
  const std::string bin;
  const std::string tools;

 private:
  std::string conninfo_;
  std::string kiosk_port_;
  unsigned short http_port_ = 0;
};

}  // namespace lostcard::test
