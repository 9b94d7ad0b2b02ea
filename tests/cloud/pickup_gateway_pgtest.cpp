// A PickupRequest through the kiosk gateway over real mutual TLS, with a real PostgreSQL behind
// it: the kiosk on the connection gets a PickupAnswer for its own slots only.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
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

// The fleet CA with the cloud's and two kiosks' certificates, made once per test run.
const std::string& pkiDir() {
  static const std::string dir = [] {
    const std::string d = test::makeTestDir("pickup_gateway_pgtest_pki");
    const std::string pki = test::sourceDir() + "/tools/pki";
    test::runProgram({pki, "init", d});
    test::runProgram({pki, "server", d, "localhost", "127.0.0.1"});
    for (const char* k : {"kiosk-a", "kiosk-b"}) {
      test::runProgram({pki, "kiosk", d, k});
    }
    return d;
  }();
  return dir;
}

// The cloud's gateway in this process on 127.0.0.1:<any>, with two enrolled kiosks, one holder
// and her card.
class Cloud {
 public:
  Cloud()
      : store_(storeOptions(db_.conninfo())),
        hasher_("test-key", std::string(32, 'k')),
        service_(store_, hasher_, {}, {}),
        tls_(wire::makeServerContext({pkiDir() + "/ca.crt", pkiDir() + "/server/localhost.crt",
                                      pkiDir() + "/server/localhost.key"})),
        gateway_(io_, tls_, service_, work_.get_executor(), gatewayOptions()) {
    store_.migrate();
    for (const char* id : {"kiosk-a", "kiosk-b"}) {
      store_.upsertKiosk({id, std::string("Box ") + id, "Test street 1", 47.0, 8.0, "", 4});
    }
    store_.upsertIssuer("northwind", "Northwind Bank");
    store_.upsertHolder("ada", "Ada Lovelace", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    card_id_ = store_.enrollCard(hasher_, "northwind", "ada", "4000056655665556");
    gateway_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Cloud() {
    asio::post(io_, [this] { gateway_.stop(); });
    thread_.join();
    work_.join();
  }
  unsigned short port() const { return gateway_.localEndpoint().port(); }

  // Ada's card stored in `slot` of `kiosk`, as the kiosk would have reported it; the deposit id.
  std::string storeCard(const std::string& kiosk, std::uint32_t slot) {
    cloud::DepositDecision d;
    d.deposit_id = wire::newUuid();
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card_id_;
    d.last4 = "5556";
    const auto now = std::chrono::system_clock::now();
    store_.recordDecision(d, now);
    v1::Location location;
    location.set_slot(slot);
    REQUIRE(store_.recordStored(kiosk, d.deposit_id, location, now).notice_queued);
    return d.deposit_id;
  }
  // The code in the deposit's newest notice (the outbox holds it sealed).
  std::string code(const std::string& deposit_id) {
    const auto notice = store_.waitingNotice(deposit_id);
    REQUIRE(notice.has_value());
    return notice->pickup_code();
  }
  pqxx::row query1(const std::string& sql) {
    pqxx::connection c(db_.conninfo());
    pqxx::read_transaction tx(c);
    return tx.exec1(sql);
  }

 private:
  static cloud::StoreOptions storeOptions(const std::string& conninfo) {
    cloud::StoreOptions o;
    o.conninfo = conninfo;
    o.pool_size = 2;
    return o;
  }
  static cloud::GatewayOptions gatewayOptions() {
    cloud::GatewayOptions o;
    o.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    o.session.busy_keepalive = 0ms;  // each answer is the next message read
    return o;
  }

  test::PgTestDb db_;
  cloud::Store store_;
  cloud::CardHasher hasher_;
  cloud::DepositService service_;
  std::int64_t card_id_ = 0;
  asio::io_context io_;
  asio::thread_pool work_{2};
  asio::ssl::context tls_;
  cloud::Gateway gateway_;
  std::thread thread_;
};

// A kiosk's side of the connection (its own certificate), driven step by step by the test.
class TestKiosk {
 public:
  TestKiosk(unsigned short port, const std::string& id)
      : tls_(wire::makeClientContext({pkiDir() + "/ca.crt", pkiDir() + "/kiosks/" + id + ".crt",
                                      pkiDir() + "/kiosks/" + id + ".key"})),
        stream_(io_, tls_) {
    stream_.set_verify_callback(asio::ssl::rfc2818_verification("localhost"));
    boost::system::error_code ec;
    stream_.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    REQUIRE_FALSE(ec);
    stream_.handshake(asio::ssl::stream_base::client, ec);
    REQUIRE_FALSE(ec);
    auto hello = wire::makeEnvelope(1);
    hello.mutable_hello()->set_kiosk_id(id);
    send(hello);
    auto ack = receive();
    REQUIRE(ack);
    REQUIRE(ack->has_hello_ack());
  }

  void send(const v1::Envelope& env) { asio::write(stream_, asio::buffer(wire::encodeFrame(env))); }

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
      const std::size_t n = stream_.read_some(asio::buffer(buf), ec);
      reader_.append(buf, n);
      if (ec) {
        return std::nullopt;
      }
    }
  }

  // Sends a PickupRequest and returns what came back.
  v1::Envelope pickup(std::uint32_t slot, const std::string& code,
                      const std::string& request_id = wire::newUuid()) {
    auto env = wire::makeEnvelope(2);
    env.mutable_pickup_request()->set_request_id(request_id);
    env.mutable_pickup_request()->set_slot(slot);
    env.mutable_pickup_request()->set_code(code);
    send(env);
    auto reply = receive();
    REQUIRE(reply);
    return *reply;
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_;
  asio::ssl::stream<tcp::socket> stream_;
  wire::FrameReader reader_;
};

std::string wrong(std::string code) {
  code.back() = code.back() == '9' ? '0' : static_cast<char>(code.back() + 1);
  return code;
}

}  // namespace

TEST_CASE("a kiosk redeems a pickup code over the protocol", "[gateway][pickup]") {
  Cloud cloud;
  const auto deposit = cloud.storeCard("kiosk-a", 2);
  const std::string code = cloud.code(deposit);
  TestKiosk kiosk(cloud.port(), "kiosk-a");

  const auto bad = kiosk.pickup(2, wrong(code));
  REQUIRE(bad.has_pickup_answer());
  CHECK(bad.pickup_answer().result() == v1::PICKUP_RESULT_WRONG_CODE);
  CHECK(bad.pickup_answer().tries_left() == 4);
  CHECK(bad.pickup_answer().deposit_id().empty());  // a wrong code learns nothing of the deposit
  CHECK_THAT(bad.pickup_answer().message(), Catch::Contains("4 tries left"));

  const std::string request_id = wire::newUuid();
  const auto open = kiosk.pickup(2, code, request_id);
  REQUIRE(open.has_pickup_answer());
  const auto& answer = open.pickup_answer();
  CHECK(answer.request_id() == request_id);
  CHECK(answer.result() == v1::PICKUP_RESULT_OPEN);
  CHECK(answer.deposit_id() == deposit);
  CHECK(answer.slot() == 2);
  CHECK(cloud.query1("SELECT status FROM deposits")[0].as<std::string>() == "releasing");

  // The answer was lost; the kiosk resends the same request: the same answer.
  const auto resent = kiosk.pickup(2, code, request_id);
  REQUIRE(resent.has_pickup_answer());
  CHECK(resent.pickup_answer().SerializeAsString() == answer.SerializeAsString());
  // A new attempt with the used code: nothing waits there any more.
  CHECK(kiosk.pickup(2, code).pickup_answer().result() == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
}

TEST_CASE("a kiosk cannot open another kiosk's deposit", "[gateway][pickup]") {
  Cloud cloud;
  const auto deposit = cloud.storeCard("kiosk-a", 1);
  const std::string code = cloud.code(deposit);
  {
    TestKiosk other(cloud.port(), "kiosk-b");
    const auto refused = other.pickup(1, code);
    REQUIRE(refused.has_pickup_answer());
    CHECK(refused.pickup_answer().result() == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
    CHECK(refused.pickup_answer().deposit_id().empty());
  }
  CHECK(cloud.query1("SELECT tries_left FROM pickup_codes")[0].as<int>() == 5);
  TestKiosk own(cloud.port(), "kiosk-a");
  CHECK(own.pickup(1, code).pickup_answer().result() == v1::PICKUP_RESULT_OPEN);
}

TEST_CASE("a malformed PickupRequest gets an error Ack and the session goes on",
          "[gateway][pickup]") {
  Cloud cloud;
  TestKiosk kiosk(cloud.port(), "kiosk-a");
  auto env = wire::makeEnvelope(2);
  env.mutable_pickup_request()->set_request_id("not-a-uuid");
  env.mutable_pickup_request()->set_code("123");
  kiosk.send(env);
  const auto refused = kiosk.receive();
  REQUIRE(refused);
  REQUIRE(refused->has_ack());
  CHECK(refused->ack().message_id() == env.message_id());
  CHECK_THAT(refused->ack().error(), Catch::Contains("not a UUID"));
  // Still there: a well-formed request is answered.
  CHECK(kiosk.pickup(0, "000-000-0000").pickup_answer().result() ==
        v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
}
