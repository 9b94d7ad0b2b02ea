// Box identity through the real lostcard-cloud process, real TLS and a real PostgreSQL: only a
// kiosk with a fleet certificate that is not revoked, speaking TLS 1.2 or newer and claiming its
// own id, gets in; revoking a certificate while the cloud runs drops that kiosk and refuses its
// next connection; a revocation list that cannot be used at start stops the cloud.
//
// The kiosks here are test clients (Boost.Asio TLS) driven step by step, plus one real
// lostcard-kiosk for the revocation of a box that is online.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <pqxx/pqxx>

#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/framing.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace lostcard;
using namespace std::chrono_literals;
using test::countOf;
using test::nonEmptyLines;
using test::readFile;

namespace {

// How a test client speaks TLS.
struct ClientTls {
  std::string ca;    // the CA it trusts for the cloud's certificate
  std::string cert;  // its certificate and key; empty: it presents none
  std::string key;
  int max_version = 0;  // e.g. TLS1_1_VERSION; 0: the library's newest
};

// One connection to the cloud's kiosk port, driven step by step: connect and handshake in the
// constructor, then send envelopes and read the cloud's answers. Every wait is bounded.
class TestClient {
 public:
  // `resume`: a TLS session of an earlier connection to offer for resumption.
  TestClient(unsigned short port, const ClientTls& how, std::shared_ptr<SSL_SESSION> resume = {})
      : tls_(makeContext(how)), stream_(io_, tls_) {
    stream_.set_verify_callback(asio::ssl::host_name_verification("localhost"));
    if (resume) {
      REQUIRE(SSL_set_session(stream_.native_handle(), resume.get()) == 1);
    }
    boost::system::error_code ec;
    stream_.next_layer().async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                       [&](boost::system::error_code e) { ec = e; });
    runFor();
    REQUIRE_FALSE(ec);  // the TCP connection itself always succeeds
    local_port_ = stream_.next_layer().local_endpoint().port();
    stream_.async_handshake(asio::ssl::stream_base::client,
                            [&](boost::system::error_code e) { ec = e; });
    runFor();
    handshake_error_ = ec;
  }

  // The client's side of the connection, as the cloud logs it ("127.0.0.1:<port>").
  std::string address() const { return "127.0.0.1:" + std::to_string(local_port_); }
  bool handshakeFailed() const { return static_cast<bool>(handshake_error_); }
  // This connection's TLS session, to offer again (read something first: TLS 1.3 sends its
  // tickets after the handshake).
  std::shared_ptr<SSL_SESSION> session() {
    return {SSL_get1_session(stream_.native_handle()), SSL_SESSION_free};
  }
  bool resumed() { return SSL_session_reused(stream_.native_handle()) == 1; }

  void send(const std::string& bytes) {
    boost::system::error_code ec;
    asio::async_write(stream_, asio::buffer(bytes),
                      [&](boost::system::error_code e, std::size_t) { ec = e; });
    runFor();
  }

  // The next envelope from the cloud; nullopt once the cloud closed the connection.
  std::optional<v1::Envelope> receive() {
    v1::Envelope env;
    while (!closed_) {
      const auto r = reader_.next(env);
      if (r.status == wire::FrameStatus::kFrame) {
        return env;
      }
      REQUIRE(r.status == wire::FrameStatus::kNeedMore);
      char buf[8192];
      boost::system::error_code ec;
      std::size_t n = 0;
      bool done = false;
      stream_.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t k) {
        ec = e;
        n = k;
        done = true;
      });
      runFor();
      REQUIRE(done);  // the cloud answers or closes; it never leaves a kiosk hanging
      reader_.append(buf, n);
      closed_ = static_cast<bool>(ec);
    }
    return std::nullopt;
  }

  // Says Hello as `kiosk_id`; true when the cloud answered with a HelloAck for that id. A client
  // whose handshake failed is not admitted. (With TLS 1.3 the client may finish its handshake
  // before the cloud refuses its certificate; then the cloud closes and nothing comes back.)
  bool admittedAs(const std::string& kiosk_id) {
    if (handshakeFailed()) {
      return false;
    }
    auto env = wire::makeEnvelope(1);
    env.mutable_hello()->set_kiosk_id(kiosk_id);
    send(wire::encodeFrame(env));
    const auto reply = receive();
    return reply && reply->has_hello_ack() && reply->hello_ack().kiosk_id() == kiosk_id;
  }

 private:
  static asio::ssl::context makeContext(const ClientTls& how) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (how.max_version != 0) {
      // An old client: OpenSSL 3 refuses TLS 1.1 at its default security level, so the client
      // lowers it to really offer TLS 1.1 and nothing newer.
      SSL_CTX_set_security_level(ctx.native_handle(), 0);
      SSL_CTX_set_min_proto_version(ctx.native_handle(), 0);
      SSL_CTX_set_max_proto_version(ctx.native_handle(), how.max_version);
      SSL_CTX_set_cipher_list(ctx.native_handle(), "DEFAULT:@SECLEVEL=0");
    }
    ctx.load_verify_file(how.ca);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (!how.cert.empty()) {
      ctx.use_certificate_chain_file(how.cert);
      ctx.use_private_key_file(how.key, asio::ssl::context::pem);
    }
    return ctx;
  }
  void runFor() {
    io_.restart();
    io_.run_for(30s);
  }

  asio::io_context io_;
  asio::ssl::context tls_;
  asio::ssl::stream<tcp::socket> stream_;
  unsigned short local_port_ = 0;
  boost::system::error_code handshake_error_;
  wire::FrameReader reader_;
  bool closed_ = false;
};

// The fleet's PKI (CA, the cloud's certificate, kiosks a, b and c), a rogue CA that issued its
// own "kiosk-a", and a database with kiosks a, b and c enrolled.
struct Fleet {
  fs::path dir;
  test::PgTestDb db;
  std::string bin = test::binDir();
  std::string pki_tool = test::sourceDir() + "/tools/pki";

  explicit Fleet(const std::string& name) : dir(test::makeTestDir(name)) {
    const std::string pki = (dir / "pki").string();
    test::runProgram({pki_tool, "init", pki});
    test::runProgram({pki_tool, "server", pki, "localhost", "127.0.0.1"});
    for (const char* k : {"kiosk-a", "kiosk-b", "kiosk-c"}) {
      test::runProgram({pki_tool, "kiosk", pki, k});
    }
    const std::string rogue = (dir / "rogue").string();
    test::runProgram({pki_tool, "init", rogue});
    test::runProgram({pki_tool, "kiosk", rogue, "kiosk-a"});
    std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'd') << "\n";
    admin({"migrate"});
    for (const char* k : {"kiosk-a", "kiosk-b", "kiosk-c"}) {
      admin({"add-kiosk", k, "--name", std::string("Box ") + k, "--address", "1 Test Road", "--lat",
             "48.85", "--lon", "2.29", "--slots", "6"});
    }
  }

  void admin(std::vector<std::string> args) {
    std::vector<std::string> argv = {bin + "/lostcard-admin", "--db", db.conninfo(),
                                     "--card-key-file", (dir / "card.key").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    test::runProgram(argv);
  }

  std::vector<std::string> cloudArgs(const std::string& crl) const {
    return test::cloudArgv(dir, db.conninfo(),
                           {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string(),
                            "--crl", crl, "--crl-check-ms", "100", "--idle-timeout-ms", "600000"});
  }

  ClientTls kiosk(const std::string& id, const std::string& pki = "pki") const {
    return {(dir / "pki/ca.crt").string(), (dir / pki / "kiosks" / (id + ".crt")).string(),
            (dir / pki / "kiosks" / (id + ".key")).string()};
  }
};

}  // namespace

TEST_CASE("the cloud admits only fleet kiosks that are not revoked, over TLS 1.2+, as themselves",
          "[e2e]") {
  Fleet fleet("kiosk_identity_e2etest");
  const fs::path& dir = fleet.dir;
  const fs::path cloud_log = dir / "cloud.log";
  test::ChildProcess cloud(fleet.cloudArgs((dir / "pki/crl.pem").string()), cloud_log.string());
  REQUIRE(
      test::eventually([&] { return !nonEmptyLines(readFile(dir / "cloud.port")).empty(); }, 120s));
  const auto port =
      static_cast<unsigned short>(std::stoi(nonEmptyLines(readFile(dir / "cloud.port")).front()));
  // The cloud's log line for a connection refused in its TLS handshake, with the reason.
  auto refusedInHandshake = [&](const TestClient& client, const std::string& reason) {
    return test::eventually(
        [&] {
          for (const auto& line : nonEmptyLines(readFile(cloud_log))) {
            if (line.find("TLS handshake with " + client.address() + " failed") !=
                    std::string::npos &&
                line.find(reason) != std::string::npos) {
              return true;
            }
          }
          return false;
        },
        30s);
  };

  // The control: the test client itself works (a fleet certificate, its own id).
  {
    TestClient kiosk(port, fleet.kiosk("kiosk-a"));
    REQUIRE_FALSE(kiosk.handshakeFailed());
    CHECK(kiosk.admittedAs("kiosk-a"));
    // The cloud resumes no TLS session: each connection shows its certificate again, and is
    // checked against the revocation list in force.
    TestClient again(port, fleet.kiosk("kiosk-a"), kiosk.session());
    CHECK(again.admittedAs("kiosk-a"));
    CHECK_FALSE(again.resumed());
  }

  SECTION("no client certificate") {
    ClientTls anonymous = fleet.kiosk("kiosk-a");
    anonymous.cert.clear();
    TestClient kiosk(port, anonymous);
    CHECK_FALSE(kiosk.admittedAs("kiosk-a"));
    CHECK(refusedInHandshake(kiosk, "peer did not return a certificate"));
  }

  SECTION("a certificate from another CA, even one naming an enrolled kiosk") {
    TestClient kiosk(port, fleet.kiosk("kiosk-a", "rogue"));
    CHECK_FALSE(kiosk.admittedAs("kiosk-a"));
    CHECK(refusedInHandshake(kiosk, "unable to get local issuer certificate (depth 0, CN=kiosk-a"));
  }

  SECTION("the cloud's own server certificate, which is not for clients") {
    ClientTls server = fleet.kiosk("kiosk-a");
    server.cert = (dir / "pki/server/localhost.crt").string();
    server.key = (dir / "pki/server/localhost.key").string();
    TestClient kiosk(port, server);
    CHECK_FALSE(kiosk.admittedAs("localhost"));
    CHECK(refusedInHandshake(kiosk, "unsuitable certificate purpose (depth 0, CN=localhost"));
  }

  SECTION("a client that speaks TLS 1.1 at most") {
    ClientTls old = fleet.kiosk("kiosk-a");
    old.max_version = TLS1_1_VERSION;
    TestClient kiosk(port, old);
    CHECK(kiosk.handshakeFailed());
    CHECK_FALSE(kiosk.admittedAs("kiosk-a"));
    CHECK(refusedInHandshake(kiosk, "unsupported protocol"));
    // The same client allowed TLS 1.2 gets in: only the version made the difference.
    ClientTls tls12 = fleet.kiosk("kiosk-a");
    tls12.max_version = TLS1_2_VERSION;
    TestClient newer(port, tls12);
    CHECK_FALSE(newer.handshakeFailed());
    CHECK(newer.admittedAs("kiosk-a"));
  }

  SECTION("a fleet certificate whose Hello claims another kiosk: refused, nothing recorded") {
    TestClient kiosk(port, fleet.kiosk("kiosk-a"));
    REQUIRE_FALSE(kiosk.handshakeFailed());
    // Hello as kiosk-b and, without waiting, a card and a heartbeat in kiosk-b's name.
    auto hello = wire::makeEnvelope(1);
    hello.mutable_hello()->set_kiosk_id("kiosk-b");
    const std::string deposit_id = wire::newUuid();
    auto card = wire::makeEnvelope(2);
    card.mutable_card_captured()->set_deposit_id(deposit_id);
    card.mutable_card_captured()->add_front()->set_jpeg("not a photo");
    card.mutable_card_captured()->add_back()->set_jpeg("not a photo");
    auto heartbeat = wire::makeEnvelope(3);
    heartbeat.mutable_heartbeat()->set_slots_total(6);
    heartbeat.mutable_heartbeat()->set_slots_used(5);
    kiosk.send(wire::encodeFrame(hello) + wire::encodeFrame(card) + wire::encodeFrame(heartbeat));
    CHECK_FALSE(kiosk.receive());  // closed without a word: no HelloAck, no Disposition, no Ack
    CHECK(test::eventually(
        [&] {
          return readFile(cloud_log).find(
                     "kiosk id 'kiosk-b' does not match its certificate ('kiosk-a')") !=
                 std::string::npos;
        },
        30s));
    pqxx::connection conn(fleet.db.conninfo());
    pqxx::work tx(conn);
    auto count = [&](const std::string& sql) { return tx.exec1(sql)[0].as<int>(); };
    CHECK(count("SELECT count(*) FROM deposits") == 0);
    CHECK(count("SELECT count(*) FROM kiosks WHERE last_heartbeat_at IS NOT NULL "
                "OR slots_used IS NOT NULL") == 0);
    CHECK(count("SELECT count(*) FROM kiosk_inventories") == 0);
  }

  SECTION("a kiosk revoked while the cloud runs is dropped and refused from then on") {
    // kiosk-c is a real box, online.
    const fs::path kiosk_log = dir / "kiosk-c.log";
    // clang-format off
    test::ChildProcess box(
        {fleet.bin + "/lostcard-kiosk", "--id", "kiosk-c",
         "--cloud", "127.0.0.1:" + std::to_string(port), "--server-name", "localhost",
         "--ca", (dir / "pki/ca.crt").string(),
         "--cert", (dir / "pki/kiosks/kiosk-c.crt").string(),
         "--key", (dir / "pki/kiosks/kiosk-c.key").string(),
         "--journal", (dir / "kiosk-c.journal").string(), "--hw", "sim",
         "--sim-root", (dir / "sim-c").string(), "--slots", "6", "--heartbeat-ms", "500"},
        kiosk_log.string());
    // clang-format on
    REQUIRE(test::eventually(
        [&] { return countOf(readFile(cloud_log), "kiosk kiosk-c connected from") == 1; }, 60s));
    // A TLS session of kiosk-c's from before the revocation, to try to resume afterwards.
    std::shared_ptr<SSL_SESSION> before;
    {
      TestClient earlier(port, fleet.kiosk("kiosk-c"));
      REQUIRE(earlier.admittedAs("kiosk-c"));
      before = earlier.session();
    }
    // (That connection replaced the box's session; the box reconnects by itself.)
    REQUIRE(test::eventually(
        [&] { return countOf(readFile(cloud_log), "kiosk kiosk-c connected from") == 3; }, 60s));

    test::runProgram({fleet.pki_tool, "revoke", (dir / "pki").string(), "kiosk-c"});

    // Dropped once the cloud sees the new list; then every handshake of kiosk-c fails.
    CHECK(test::eventually(
        [&] {
          const std::string log = readFile(cloud_log);
          return countOf(log, "revocation list reloaded") == 1 &&
                 countOf(log, "closed: certificate revoked") == 1;
        },
        30s));
    {
      TestClient again(port, fleet.kiosk("kiosk-c"));
      CHECK_FALSE(again.admittedAs("kiosk-c"));
      CHECK(refusedInHandshake(again, "certificate revoked (depth 0, CN=kiosk-c"));
      // Nor does a TLS session from before the revocation get it in again.
      TestClient resuming(port, fleet.kiosk("kiosk-c"), before);
      CHECK_FALSE(resuming.admittedAs("kiosk-c"));
      CHECK_FALSE(resuming.resumed());
    }
    // The real box keeps trying and is refused the same way; it never got back in.
    CHECK(test::eventually(
        [&] {
          return countOf(readFile(cloud_log), "certificate revoked (depth 0, CN=kiosk-c") >= 2;
        },
        60s));
    CHECK(countOf(readFile(cloud_log), "kiosk kiosk-c connected from") == 3);

    // The other kiosks are not affected by the new list.
    {
      TestClient other(port, fleet.kiosk("kiosk-b"));
      CHECK(other.admittedAs("kiosk-b"));
    }

    // A list that cannot be read later is reported and the previous one stays in force.
    // Replaced in one step, as a deployment replaces it: written in place, the cloud could see
    // the emptied file and then the bad one, two versions, and rightly report both.
    std::ofstream(dir / "pki/crl.pem.new") << "not a revocation list\n";
    fs::rename(dir / "pki/crl.pem.new", dir / "pki/crl.pem");
    CHECK(test::eventually(
        [&] { return readFile(cloud_log).find("cannot be used") != std::string::npos; }, 30s));
    {
      TestClient still_revoked(port, fleet.kiosk("kiosk-c"));
      CHECK_FALSE(still_revoked.admittedAs("kiosk-c"));
      TestClient still_fine(port, fleet.kiosk("kiosk-a"));
      CHECK(still_fine.admittedAs("kiosk-a"));
    }
    // Said once for that version of the file, not at every look.
    CHECK(countOf(readFile(cloud_log), "cannot be used") == 1);
    box.terminate();
  }

  CHECK(cloud.terminate() == 0);
}

TEST_CASE("a revocation list that cannot be used stops the cloud at start", "[e2e]") {
  Fleet fleet("kiosk_identity_crl_start_e2etest");
  const fs::path& dir = fleet.dir;
  // The rogue CA's list is well formed but not signed by the fleet CA.
  const auto [crl, why] =
      GENERATE(table<std::string, std::string>({{"missing.pem", "cannot open"},
                                                {"rogue/crl.pem", "not signed by a CA in"},
                                                {"pki/ca.crt", "not a PEM CRL"}}));
  const fs::path log = dir / ("cloud-" + fs::path(crl).filename().string() + ".log");
  fs::remove(log);
  test::ChildProcess cloud(fleet.cloudArgs((dir / crl).string()), log.string());
  const auto status = cloud.waitFor(120s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 1);
  CHECK_THAT(readFile(log), Catch::Contains("revocation list") && Catch::Contains(why));
  CHECK_FALSE(fs::exists(dir / "cloud.port"));
}
