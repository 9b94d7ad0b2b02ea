// The kiosk gateway over real TLS sockets, with a real PostgreSQL behind it: what one kiosk
// does wrong ends only its own session.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/gateway.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/framing.hpp"
#include "lostcard/wire/tls.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace lostcard;
using namespace std::chrono_literals;

namespace {

// The fleet CA with the cloud's and three kiosks' certificates, made once per test run.
const std::string& pkiDir() {
  static const std::string dir = [] {
    const std::string d = test::makeTestDir("gateway_pgtest_pki");
    const std::string pki = test::sourceDir() + "/tools/pki";
    test::runProgram({pki, "init", d});
    test::runProgram({pki, "server", d, "localhost", "127.0.0.1"});
    for (const char* k : {"kiosk-a", "kiosk-b", "kiosk-unenrolled"}) {
      test::runProgram({pki, "kiosk", d, k});
    }
    return d;
  }();
  return dir;
}

// lostcard's cloud side in this process: store, recognition, gateway on 127.0.0.1:<any>.
class Cloud {
 public:
  // busy_keepalive 0: no empty Heartbeats while the cloud works, so each test reads the answer to
  // what it sent as the next message.
  explicit Cloud(std::chrono::milliseconds busy_keepalive = std::chrono::milliseconds(0))
      : store_(storeOptions(db_.conninfo())),
        hasher_("test-key", std::string(32, 'k')),
        service_(store_, hasher_, {}, {}),
        tls_(wire::makeServerContext({pkiDir() + "/ca.crt", pkiDir() + "/server/localhost.crt",
                                      pkiDir() + "/server/localhost.key"})),
        gateway_(io_, tls_, service_, work_.get_executor(), gatewayOptions(busy_keepalive)) {
    store_.migrate();
    for (const char* id : {"kiosk-a", "kiosk-b"}) {
      cloud::KioskRecord k;
      k.id = id;
      k.name = std::string("Box ") + id;
      k.address = "Test street 1";
      k.slot_count = 4;
      store_.upsertKiosk(k);
    }
    gateway_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Cloud() {
    asio::post(io_, [this] { gateway_.stop(); });
    thread_.join();
    work_.join();
  }
  unsigned short port() const { return gateway_.localEndpoint().port(); }
  cloud::Store& store() { return store_; }
  std::string conninfo() const { return db_.conninfo(); }
  // gateway.drain() on the gateway's thread; `drained` turns true when it reports done.
  void drain(std::atomic<bool>& drained) {
    asio::post(io_, [this, &drained] {
      gateway_.drain(std::chrono::minutes(2), [&drained] { drained = true; });
    });
  }

 private:
  static cloud::StoreOptions storeOptions(const std::string& conninfo) {
    cloud::StoreOptions o;
    o.conninfo = conninfo;
    o.pool_size = 2;
    return o;
  }
  static cloud::GatewayOptions gatewayOptions(std::chrono::milliseconds busy_keepalive) {
    cloud::GatewayOptions o;
    o.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    o.session.max_frame_bytes = 256 * 1024;
    o.session.busy_keepalive = busy_keepalive;
    return o;
  }

  test::PgTestDb db_;
  cloud::Store store_;
  cloud::CardHasher hasher_;
  cloud::DepositService service_;
  asio::io_context io_;
  asio::thread_pool work_{2};
  asio::ssl::context tls_;
  cloud::Gateway gateway_;
  std::thread thread_;
};

// A kiosk's side of the connection, driven step by step by the test.
class TestKiosk {
 public:
  TestKiosk(unsigned short port, const std::string& cert_name, bool with_certificate = true)
      : tls_(with_certificate
                 ? wire::makeClientContext({pkiDir() + "/ca.crt",
                                            pkiDir() + "/kiosks/" + cert_name + ".crt",
                                            pkiDir() + "/kiosks/" + cert_name + ".key"})
                 : clientWithoutCertificate()),
        stream_(io_, tls_) {
    stream_.set_verify_callback(asio::ssl::rfc2818_verification("localhost"));
    boost::system::error_code ec;
    stream_.next_layer().async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
        [&](boost::system::error_code e) { ec = e; });
    runFor();
    if (!ec) {
      stream_.async_handshake(asio::ssl::stream_base::client,
                              [&](boost::system::error_code e) { ec = e; });
      runFor();
    }
    handshake_error_ = ec;
  }

  bool handshakeFailed() const { return static_cast<bool>(handshake_error_); }

  void sendBytes(const std::string& bytes) {
    asio::async_write(stream_, asio::buffer(bytes), [](boost::system::error_code, std::size_t) {});
    runFor();
  }
  void send(const v1::Envelope& env) { sendBytes(wire::encodeFrame(env)); }

  // The next envelope from the cloud; nullopt when the cloud closed the connection.
  std::optional<v1::Envelope> receive() {
    v1::Envelope env;
    while (true) {
      auto r = reader_.next(env);
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
      if (ec) {
        return std::nullopt;
      }
    }
  }

  v1::Envelope hello(const std::string& kiosk_id) {
    auto env = wire::makeEnvelope(1);
    env.mutable_hello()->set_kiosk_id(kiosk_id);
    send(env);
    auto reply = receive();
    REQUIRE(reply);
    return *reply;
  }

 private:
  static asio::ssl::context clientWithoutCertificate() {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(pkiDir() + "/ca.crt");
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
  }
  void runFor() {
    io_.restart();
    io_.run_for(30s);
  }

  asio::io_context io_;
  asio::ssl::context tls_;
  asio::ssl::stream<tcp::socket> stream_;
  boost::system::error_code handshake_error_;
  wire::FrameReader reader_;
};

v1::Envelope captured(const std::string& deposit_id, const std::string& front_jpeg) {
  auto env = wire::makeEnvelope(2);
  auto* c = env.mutable_card_captured();
  c->set_deposit_id(deposit_id);
  c->add_front()->set_jpeg(front_jpeg);
  c->add_back()->set_jpeg(front_jpeg);
  return env;
}

}  // namespace

TEST_CASE("a kiosk says Hello and is admitted under its certificate's name", "[gateway]") {
  Cloud cloud;
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE_FALSE(kiosk.handshakeFailed());
  const auto ack = kiosk.hello("kiosk-a");
  REQUIRE(ack.has_hello_ack());
  CHECK(ack.hello_ack().kiosk_id() == "kiosk-a");
  CHECK(ack.hello_ack().max_frame_bytes() == 256 * 1024);
}

TEST_CASE("the gateway refuses kiosks it cannot trust", "[gateway]") {
  Cloud cloud;
  SECTION("no client certificate") {
    TestKiosk kiosk(cloud.port(), "", false);
    // TLS 1.3 may finish the client's handshake before the server rejects it; then the first
    // read sees the connection closed.
    if (!kiosk.handshakeFailed()) {
      auto env = wire::makeEnvelope(1);
      env.mutable_hello()->set_kiosk_id("kiosk-a");
      kiosk.send(env);
      CHECK_FALSE(kiosk.receive());
    }
  }
  SECTION("a Hello claiming another kiosk's id") {
    TestKiosk kiosk(cloud.port(), "kiosk-a");
    auto env = wire::makeEnvelope(1);
    env.mutable_hello()->set_kiosk_id("kiosk-b");
    kiosk.send(env);
    CHECK_FALSE(kiosk.receive());
  }
  SECTION("a certified kiosk that is not enrolled") {
    TestKiosk kiosk(cloud.port(), "kiosk-unenrolled");
    auto env = wire::makeEnvelope(1);
    env.mutable_hello()->set_kiosk_id("kiosk-unenrolled");
    kiosk.send(env);
    CHECK_FALSE(kiosk.receive());
  }
}

TEST_CASE("bad frames close only the session that sent them", "[gateway]") {
  Cloud cloud;
  TestKiosk good(cloud.port(), "kiosk-b");
  REQUIRE(good.hello("kiosk-b").has_hello_ack());

  SECTION("garbage") {
    TestKiosk bad(cloud.port(), "kiosk-a");
    REQUIRE(bad.hello("kiosk-a").has_hello_ack());
    bad.sendBytes(std::string("\x05\xff\xff\xff\xff\xff\xff", 7));
    CHECK_FALSE(bad.receive());
  }
  SECTION("a frame announcing more than the limit") {
    TestKiosk bad(cloud.port(), "kiosk-a");
    REQUIRE(bad.hello("kiosk-a").has_hello_ack());
    auto env = captured(wire::newUuid(), std::string(300 * 1024, 'x'));
    bad.sendBytes(wire::encodeFrame(env).substr(0, 1000));
    CHECK_FALSE(bad.receive());
  }
  SECTION("a truncated frame followed by the end of the connection") {
    auto bad = std::make_unique<TestKiosk>(cloud.port(), "kiosk-a");
    REQUIRE(bad->hello("kiosk-a").has_hello_ack());
    bad->sendBytes(wire::encodeFrame(captured(wire::newUuid(), "abc")).substr(0, 10));
    bad.reset();
  }
  SECTION("a message a kiosk never sends") {
    TestKiosk bad(cloud.port(), "kiosk-a");
    REQUIRE(bad.hello("kiosk-a").has_hello_ack());
    auto env = wire::makeEnvelope(3);
    env.mutable_disposition()->set_deposit_id(wire::newUuid());
    bad.send(env);
    CHECK_FALSE(bad.receive());
  }

  // The other kiosk carries on: its card is handled as usual.
  const std::string deposit = wire::newUuid();
  good.send(captured(deposit, "this is not a JPEG"));
  auto reply = good.receive();
  REQUIRE(reply);
  REQUIRE(reply->has_disposition());
  CHECK(reply->disposition().deposit_id() == deposit);
  REQUIRE(reply->disposition().has_difficult());
  CHECK(reply->disposition().difficult().reason() == v1::DIFFICULT_REASON_BAD_IMAGE);
}

TEST_CASE("a message this cloud does not know gets an error Ack and the session goes on",
          "[gateway]") {
  Cloud cloud;
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  // What a newer kiosk sends: an Envelope body this cloud's schema does not have (field 99).
  auto newer = wire::makeEnvelope(3);
  newer.GetReflection()->MutableUnknownFields(&newer)->AddLengthDelimited(99, "\x08\x01");
  kiosk.send(newer);
  auto refused = kiosk.receive();
  REQUIRE(refused);
  REQUIRE(refused->has_ack());
  CHECK(refused->ack().message_id() == newer.message_id());
  CHECK_THAT(refused->ack().error(),
             Catch::StartsWith("unsupported message") && Catch::Contains("field 99"));

  // The session is still there: a heartbeat is acknowledged as usual.
  auto heartbeat = wire::makeEnvelope(4);
  heartbeat.mutable_heartbeat()->set_slots_total(4);
  kiosk.send(heartbeat);
  auto ack = kiosk.receive();
  REQUIRE(ack);
  REQUIRE(ack->has_ack());
  CHECK(ack->ack().message_id() == heartbeat.message_id());
  CHECK(ack->ack().error().empty());
}

TEST_CASE("a cloud busy for a kiosk tells it so with empty Heartbeats, then answers", "[gateway]") {
  Cloud cloud(std::chrono::milliseconds(50));
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  // The decision is held in hand: nobody may write deposits until the test lets go.
  pqxx::connection locker(cloud.conninfo());
  auto hold = std::make_unique<pqxx::work>(locker);
  hold->exec0("LOCK TABLE deposits IN EXCLUSIVE MODE");
  const std::string deposit = wire::newUuid();
  kiosk.send(captured(deposit, "not a JPEG"));
  for (int i = 0; i < 2; ++i) {
    auto alive = kiosk.receive();
    REQUIRE(alive);
    CHECK(alive->has_heartbeat());
  }
  hold->abort();
  hold.reset();
  // Then the answer (after any Heartbeat still on its way).
  std::optional<v1::Envelope> reply;
  do {
    reply = kiosk.receive();
    REQUIRE(reply);
  } while (reply->has_heartbeat());
  REQUIRE(reply->has_disposition());
  CHECK(reply->disposition().deposit_id() == deposit);
}

TEST_CASE("draining closes an idle session once its answers are written, and lets nobody in",
          "[gateway]") {
  Cloud cloud;
  const unsigned short port = cloud.port();
  TestKiosk kiosk(port, "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  auto heartbeat = wire::makeEnvelope(4);
  heartbeat.mutable_heartbeat()->set_slots_total(4);
  kiosk.send(heartbeat);
  std::atomic<bool> drained = false;
  cloud.drain(drained);
  // Whatever was answered before the drain arrives; then the connection ends.
  std::optional<v1::Envelope> got;
  while ((got = kiosk.receive())) {
    CHECK(got->has_ack());
  }
  CHECK(test::eventually([&] { return drained.load(); }, 30s));
  // Nobody is let in any more.
  TestKiosk late(port, "kiosk-b");
  CHECK(late.handshakeFailed());
}

TEST_CASE("a card that is not a JPEG becomes a difficult card stored in the bin", "[gateway]") {
  Cloud cloud;
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  const std::string deposit = wire::newUuid();
  const auto first = captured(deposit, std::string("\xff\xd8\xff garbage", 12));
  kiosk.send(first);
  auto d1 = kiosk.receive();
  REQUIRE(d1);
  REQUIRE(d1->disposition().has_difficult());
  CHECK(d1->disposition().difficult().reason() == v1::DIFFICULT_REASON_BAD_IMAGE);

  // The same deposit sent again (a kiosk that missed the answer) gets the same answer.
  kiosk.send(first);
  auto d2 = kiosk.receive();
  REQUIRE(d2);
  CHECK(d2->disposition().SerializeAsString() == d1->disposition().SerializeAsString());

  auto stored = wire::makeEnvelope(4);
  stored.mutable_card_stored()->set_deposit_id(deposit);
  stored.mutable_card_stored()->mutable_location()->mutable_bin();
  kiosk.send(stored);
  auto ack = kiosk.receive();
  REQUIRE(ack);
  REQUIRE(ack->has_ack());
  CHECK(ack->ack().message_id() == stored.message_id());
  CHECK(ack->ack().error().empty());

  const auto deposits = cloud.store().listDeposits(std::string("kiosk-a"));
  REQUIRE(deposits.size() == 1);
  CHECK(deposits[0].status == "stored");
  CHECK(deposits[0].location == "bin");

  SECTION("another kiosk cannot report this deposit") {
    TestKiosk other(cloud.port(), "kiosk-b");
    REQUIRE(other.hello("kiosk-b").has_hello_ack());
    auto forged = wire::makeEnvelope(5);
    forged.mutable_card_stored()->set_deposit_id(deposit);
    forged.mutable_card_stored()->mutable_location()->set_slot(1);
    other.send(forged);
    auto refused = other.receive();
    REQUIRE(refused);
    REQUIRE(refused->has_ack());
    CHECK_FALSE(refused->ack().error().empty());
    CHECK(cloud.store().listDeposits(std::string("kiosk-a"))[0].location == "bin");
  }
}

TEST_CASE("a kiosk cannot report a slot it does not have", "[gateway]") {
  Cloud cloud;  // kiosk-a has 4 slots: 0..3
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  const std::string deposit = wire::newUuid();
  kiosk.send(captured(deposit, "not a JPEG"));
  REQUIRE(kiosk.receive());

  auto stored = wire::makeEnvelope(4);
  stored.mutable_card_stored()->set_deposit_id(deposit);
  stored.mutable_card_stored()->mutable_location()->set_slot(4);
  kiosk.send(stored);
  auto refused = kiosk.receive();
  REQUIRE(refused);
  REQUIRE(refused->has_ack());
  CHECK_THAT(refused->ack().error(), Catch::Contains("slot 4 does not exist"));
  CHECK(cloud.store().listDeposits(std::string("kiosk-a"))[0].status == "decided");
}

TEST_CASE("too many frames are refused before any is decoded", "[gateway]") {
  Cloud cloud;
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  REQUIRE(kiosk.hello("kiosk-a").has_hello_ack());
  auto env = captured(wire::newUuid(), "x");
  for (int i = 0; i < 20; ++i) {
    env.mutable_card_captured()->add_front()->set_jpeg("x");
  }
  kiosk.send(env);
  auto reply = kiosk.receive();
  REQUIRE(reply);
  REQUIRE(reply->disposition().has_difficult());
  CHECK(reply->disposition().difficult().reason() == v1::DIFFICULT_REASON_BAD_IMAGE);
  CHECK_THAT(reply->disposition().difficult().detail(), Catch::Contains("at most 8 per face"));
}
