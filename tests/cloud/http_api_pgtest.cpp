// The people's HTTPS API (lostcard_http_api) through real TLS sockets, with a real PostgreSQL
// behind it: logins, token expiry, every refusal by role and tenant, the audit rows, and the
// server's answers to malformed and oversized requests.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/api_server.hpp"
#include "lostcard/test/https_client.hpp"
#include "lostcard/test/manual_clock.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/v1/api.pb.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace lostcard;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAdaNumber = "4000056655665556";
constexpr const char* kBobNumber = "5200828282828210";
constexpr const char* kCarlNumber = "4111111111111111";
const auto kT0 = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z
constexpr std::size_t kMaxBody = 4096;

const std::string& pkiDir() { return test::testPki("http_api_pgtest_pki"); }

using Reply = test::HttpsReply;

// The registry with two issuers, three holders, two kiosks, a card each, a deposit stored in a
// slot for each card; accounts for every role; and the API on 127.0.0.1:<any> over TLS with an
// injected clock.
class Api {
 public:
  Api()
      : store_(storeOptions(db_.conninfo())),
        accounts_(accountOptions(db_.conninfo())),
        reader_({.conninfo = db_.conninfo()}),
        keys_({.conninfo = db_.conninfo()}),
        enrollment_({.conninfo = db_.conninfo()}, hasher_),
        router_(cloud::makeApiV1Router(accounts_, reader_, {keys_, enrollment_},
                                       [this] { return now(); })),
        server_(router_, pkiDir(), serverOptions()) {
    store_.migrate();
    store_.upsertIssuer("northwind", "Northwind Bank");
    store_.upsertIssuer("contoso", "Contoso Transit");
    store_.upsertHolder("ada", "Ada", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    store_.upsertHolder("bob", "Bob", "http://127.0.0.1:9/bob", "bob-secret-0123456789");
    store_.upsertHolder("carl", "Carl", "http://127.0.0.1:9/carl", "carl-secret-0123456789");
    store_.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "24/7", 8});
    store_.upsertKiosk({"kiosk-2", "Airport", "Arrivals hall", 47.45, 8.56, "24/7", 8});
    const cloud::CardHasher hasher("test-key", std::string(32, 'k'));
    deposit("11111111-1111-4111-8111-111111111111", "kiosk-1",
            store_.enrollCard(hasher, "northwind", "ada", kAdaNumber), "5556", 1);
    deposit("22222222-2222-4222-8222-222222222222", "kiosk-2",
            store_.enrollCard(hasher, "contoso", "bob", kBobNumber), "8210", 2);
    deposit("33333333-3333-4333-8333-333333333333", "kiosk-2",
            store_.enrollCard(hasher, "northwind", "carl", kCarlNumber), "1111", 3);

    using cloud::Role;
    account("ada", Role::kHolder, "ada", "", {});
    account("bob", Role::kHolder, "bob", "", {});
    account("op1", Role::kOperator, "", "", {"kiosk-1"});
    account("nw", Role::kIssuerStaff, "", "northwind", {});
    account("root", Role::kAdmin, "", "", {});

    server_.start();
  }

  std::chrono::system_clock::time_point now() const { return clock_.now(); }
  void advance(std::chrono::seconds by) { clock_.advance(by); }
  unsigned short port() const { return server_.port(); }
  const std::string& conninfo() const { return db_.conninfo(); }
  cloud::AccountStore& accounts() { return accounts_; }

  // One request on a new TLS connection (the client verifies the server against the test CA).
  Reply call(http::verb method, const std::string& target, const std::string& token = "",
             const std::string& body = "", const std::string& content_type = "application/json") {
    return client_.call(method, target, token, body, content_type);
  }

  // Raw bytes over TLS, then the answer (for requests Beast's client would not make).
  Reply raw(const std::string& bytes) { return client_.raw(bytes); }

  // Two requests on one kept-alive connection; their statuses.
  std::pair<unsigned, unsigned> twoOnOneConnection(const std::string& token) {
    asio::io_context io;
    auto stream = connect(io);
    std::pair<unsigned, unsigned> statuses;
    for (unsigned* status : {&statuses.first, &statuses.second}) {
      http::request<http::string_body> request{http::verb::get, "/v1/me", 11};
      request.set(http::field::host, "localhost");
      request.set(http::field::authorization, "Bearer " + token);
      request.keep_alive(true);
      http::write(*stream, request);
      *status = test::HttpsClient::read(*stream).status;
    }
    return statuses;
  }

  // Connects (TCP only, or TLS too), sends `bytes` and then nothing; returns what the server
  // sent before it closed the connection.
  std::string silentClient(bool tls, const std::string& bytes) {
    asio::io_context io;
    std::string received;
    beast::error_code ec;
    if (tls) {
      auto stream = connect(io);
      asio::write(*stream, asio::buffer(bytes));
      char buf[4096];
      for (std::size_t n; (n = stream->read_some(asio::buffer(buf), ec)) > 0 || !ec;) {
        received.append(buf, n);
      }
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(60s);
      stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
      char buf[4096];
      for (std::size_t n; (n = stream.read_some(asio::buffer(buf), ec)) > 0 || !ec;) {
        received.append(buf, n);
      }
    }
    // Closed by the server (end of stream, or TLS truncation), not by our own 30/60 s deadline.
    CHECK(ec != beast::error::timeout);
    return received;
  }

  std::string login(const std::string& who, const std::string& password) {
    return client_.login(who, password);
  }

  pqxx::result query(const std::string& sql) { return db_.query(sql); }

 private:
  std::unique_ptr<test::HttpsClient::Stream> connect(asio::io_context& io) {
    return client_.connect(io);
  }

  // An account whose password is "<login>-password".
  void account(const std::string& login, cloud::Role role, const std::string& holder,
               const std::string& issuer, std::vector<std::string> kiosks) {
    cloud::AccountSpec spec;
    spec.login = login;
    spec.role = role;
    spec.holder_id = holder;
    spec.issuer_id = issuer;
    spec.kiosk_ids = std::move(kiosks);
    accounts_.upsertAccount(spec, login + "-password", kT0);
  }

  // Short timeouts, so the test of a silent client does not wait long.
  static cloud::HttpServerOptions serverOptions() {
    cloud::HttpServerOptions options;
    options.max_body_bytes = kMaxBody;
    options.handshake_timeout = 3s;
    options.read_timeout = 3s;
    return options;
  }

  static cloud::AccountStoreOptions accountOptions(const std::string& conninfo) {
    cloud::AccountStoreOptions options;
    options.conninfo = conninfo;
    options.token_ttl = 15min;
    options.max_failed_logins = 10;
    options.failed_login_window = 15min;
    return options;
  }

  static cloud::StoreOptions storeOptions(const std::string& conninfo) {
    cloud::StoreOptions options;
    options.conninfo = conninfo;
    return options;
  }

  void deposit(const std::string& id, const std::string& kiosk, std::int64_t card_id,
               const std::string& last4, std::uint32_t slot) {
    cloud::DepositDecision d;
    d.deposit_id = id;
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card_id;
    d.last4 = last4;
    store_.recordDecision(d, kT0);
    v1::Location location;
    location.set_slot(slot);
    REQUIRE(store_.recordStored(kiosk, id, location, kT0).ok);
  }

  test::PgTestDb db_;
  cloud::Store store_;
  cloud::AccountStore accounts_;
  cloud::CardDataReader reader_;
  const cloud::CardHasher hasher_{"test-key", std::string(32, 'k')};
  cloud::IssuerKeyStore keys_;
  cloud::CardEnrollment enrollment_;
  test::ManualClock clock_{kT0};
  cloud::HttpRouter router_;
  test::ApiServer server_;
  test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return port(); }};
};

std::vector<std::string> depositIds(const v1::DepositList& list) {
  std::vector<std::string> ids;
  for (const auto& d : list.deposits()) {
    ids.push_back(d.deposit_id());
  }
  return ids;
}

// Audit rows as "role|action|kind|ids|result" lines, oldest first.
std::vector<std::string> auditLines(Api& api, const std::string& action) {
  std::vector<std::string> lines;
  for (const auto& r : api.query("SELECT actor_role || '|' || action || '|' || object_kind || '|' "
                                 "|| array_to_string(object_ids, ',') || '|' || result "
                                 "FROM audit_log WHERE action = '" +
                                 action + "' ORDER BY id")) {
    lines.push_back(r[0].as<std::string>());
  }
  return lines;
}

}  // namespace

TEST_CASE("login with the right password gives a token that says who it is") {
  Api api;
  const auto reply = api.call(http::verb::post, "/v1/auth/login", "",
                              R"({"login": "ada", "password": "ada-password"})");
  REQUIRE(reply.status == 200);
  CHECK(reply.cache_control == "no-store");
  const auto login = reply.as<v1::LoginResponse>();
  CHECK(login.token().rfind("lc_", 0) == 0);
  CHECK(login.role() == "holder");
  CHECK(login.expires_at() == "2024-05-01T12:15:00Z");

  const auto me = api.call(http::verb::get, "/v1/me", login.token());
  REQUIRE(me.status == 200);
  const auto body = me.as<v1::Me>();
  CHECK(body.login() == "ada");
  CHECK(body.role() == "holder");
  CHECK(body.holder_id() == "ada");

  // Only a SHA-256 of the token is kept.
  CHECK(api.query("SELECT count(*) FROM auth_tokens")[0][0].as<int>() == 1);
  CHECK(api.query("SELECT count(*) FROM auth_tokens WHERE position('" + login.token() +
                  "' IN encode(token_sha256, 'escape')) > 0")[0][0]
            .as<int>() == 0);
  CHECK(auditLines(api, "auth.login") ==
        std::vector<std::string>{"holder|auth.login|account|1|ok"});
}

TEST_CASE("a wrong password or an unknown login gets 401 and the same reason") {
  Api api;
  const auto wrong = api.call(http::verb::post, "/v1/auth/login", "",
                              R"({"login": "ada", "password": "bob-password"})");
  const auto unknown = api.call(http::verb::post, "/v1/auth/login", "",
                                R"({"login": "nobody", "password": "ada-password"})");
  CHECK(wrong.status == 401);
  CHECK(unknown.status == 401);
  CHECK(wrong.error().error() == "unauthorized");
  CHECK(wrong.error().reason() == unknown.error().reason());
  CHECK(api.query("SELECT count(*) FROM auth_tokens")[0][0].as<int>() == 0);
  // Both attempts are audited, and neither the typed password nor the unknown login is kept.
  CHECK(auditLines(api, "auth.login") ==
        std::vector<std::string>{"holder|auth.login|account|1|refused",
                                 "unknown|auth.login|account||refused"});
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE detail LIKE '%password%' AND "
                  "(detail LIKE '%bob-password%' OR detail LIKE '%nobody%' OR "
                  " actor_id LIKE '%nobody%')")[0][0]
            .as<int>() == 0);
}

TEST_CASE("a token stops working when it expires and after logout") {
  Api api;
  const auto token = api.login("ada", "ada-password");
  CHECK(api.call(http::verb::get, "/v1/me", token).status == 200);
  api.advance(14min + 59s);
  CHECK(api.call(http::verb::get, "/v1/me", token).status == 200);
  api.advance(1s);
  const auto expired = api.call(http::verb::get, "/v1/me", token);
  CHECK(expired.status == 401);
  CHECK(expired.www_authenticate.find("invalid_token") != std::string::npos);
  CHECK(api.accounts().purgeExpiredTokens(api.now()) == 1);

  const auto again = api.login("ada", "ada-password");
  CHECK(api.call(http::verb::post, "/v1/auth/logout", again).status == 204);
  CHECK(api.call(http::verb::get, "/v1/me", again).status == 401);
}

TEST_CASE("requests without a valid token get 401") {
  Api api;
  const auto none = api.call(http::verb::get, "/v1/holder/deposits");
  CHECK(none.status == 401);
  CHECK(none.www_authenticate.rfind("Bearer", 0) == 0);
  CHECK(api.call(http::verb::get, "/v1/holder/deposits", "garbage").status == 401);
  CHECK(api.call(http::verb::get, "/v1/holder/deposits",
                 "lc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .status == 401);
}

TEST_CASE("a holder sees only their own deposits") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto own = api.call(http::verb::get, "/v1/holder/deposits", ada);
  REQUIRE(own.status == 200);
  const auto list = own.as<v1::DepositList>();
  CHECK(depositIds(list) == std::vector<std::string>{"11111111-1111-4111-8111-111111111111"});
  CHECK(list.deposits(0).last4() == "5556");
  CHECK(list.deposits(0).kiosk_name() == "Main Station");
  CHECK(list.deposits(0).status() == "stored");
  CHECK(list.deposits(0).location().empty());  // the operator's view only
  CHECK(own.body.find(kAdaNumber) == std::string::npos);

  const auto other = api.call(http::verb::get, "/v1/holder/deposits?holder_id=bob", ada);
  CHECK(other.status == 403);
  CHECK(other.error().error() == "forbidden");
  CHECK_FALSE(other.error().reason().empty());
  // Staff of another role get no holder's list either.
  const auto op = api.login("op1", "op1-password");
  CHECK(api.call(http::verb::get, "/v1/holder/deposits?holder_id=ada", op).status == 403);

  CHECK(auditLines(api, "deposits.read") ==
        std::vector<std::string>{"holder|deposits.read|holder|ada|ok",
                                 "holder|deposits.read|holder|bob|refused",
                                 "operator|deposits.read|holder|ada|refused"});
}

TEST_CASE("an operator sees only the deposits of their kiosks") {
  Api api;
  const auto op = api.login("op1", "op1-password");
  const auto own = api.call(http::verb::get, "/v1/operator/kiosks/kiosk-1/deposits", op);
  REQUIRE(own.status == 200);
  const auto list = own.as<v1::DepositList>();
  CHECK(depositIds(list) == std::vector<std::string>{"11111111-1111-4111-8111-111111111111"});
  CHECK(list.deposits(0).location() == "slot:1");
  CHECK(list.deposits(0).decision() == "store");

  const auto other = api.call(http::verb::get, "/v1/operator/kiosks/kiosk-2/deposits", op);
  CHECK(other.status == 403);
  CHECK(other.error().reason().find("kiosk-2") != std::string::npos);
  // A holder is no operator.
  const auto ada = api.login("ada", "ada-password");
  CHECK(api.call(http::verb::get, "/v1/operator/kiosks/kiosk-1/deposits", ada).status == 403);
  // The admin sees every kiosk; an unknown one is 404.
  const auto root = api.login("root", "root-password");
  const auto all = api.call(http::verb::get, "/v1/operator/kiosks/kiosk-2/deposits", root);
  REQUIRE(all.status == 200);
  CHECK(all.as<v1::DepositList>().deposits_size() == 2);
  CHECK(api.call(http::verb::get, "/v1/operator/kiosks/kiosk-9/deposits", root).status == 404);

  CHECK(auditLines(api, "deposits.read") ==
        std::vector<std::string>{"operator|deposits.read|kiosk|kiosk-1|ok",
                                 "operator|deposits.read|kiosk|kiosk-2|refused",
                                 "holder|deposits.read|kiosk|kiosk-1|refused",
                                 "admin|deposits.read|kiosk|kiosk-2|ok",
                                 "admin|deposits.read|kiosk|kiosk-9|refused"});
}

TEST_CASE("issuer staff see only their issuer's cards, last four and holder only") {
  Api api;
  const auto nw = api.login("nw", "nw-password");
  const auto own = api.call(http::verb::get, "/v1/issuer/cards", nw);
  REQUIRE(own.status == 200);
  const auto list = own.as<v1::IssuerCardList>();
  CHECK(list.issuer_id() == "northwind");
  REQUIRE(list.cards_size() == 2);
  std::vector<std::string> holders;
  for (const auto& card : list.cards()) {
    holders.push_back(card.holder_id() + ":" + card.last4());
  }
  std::sort(holders.begin(), holders.end());
  CHECK(holders == std::vector<std::string>{"ada:5556", "carl:1111"});
  CHECK(own.body.find(kAdaNumber) == std::string::npos);
  CHECK(own.body.find(kCarlNumber) == std::string::npos);

  const auto other = api.call(http::verb::get, "/v1/issuer/cards?issuer_id=contoso", nw);
  CHECK(other.status == 403);
  CHECK(other.body.find("8210") == std::string::npos);
  const auto ada = api.login("ada", "ada-password");
  CHECK(api.call(http::verb::get, "/v1/issuer/cards?issuer_id=northwind", ada).status == 403);

  CHECK(auditLines(api, "cards.read") ==
        std::vector<std::string>{"issuer_staff|cards.read|issuer|northwind|ok",
                                 "issuer_staff|cards.read|issuer|contoso|refused",
                                 "holder|cards.read|issuer|northwind|refused"});
}

TEST_CASE("the audit log is append-only and holds no card number") {
  Api api;
  const auto nw = api.login("nw", "nw-password");
  REQUIRE(api.call(http::verb::get, "/v1/issuer/cards", nw).status == 200);
  CHECK_THROWS(api.query("UPDATE audit_log SET result = 'ok'"));
  CHECK_THROWS(api.query("DELETE FROM audit_log"));
  CHECK_THROWS(api.query("TRUNCATE audit_log"));
  const auto all = api.query("SELECT string_agg(audit_log::text, ' ') FROM audit_log");
  const auto text = all[0][0].as<std::string>();
  for (const char* number : {kAdaNumber, kBobNumber, kCarlNumber}) {
    CHECK(text.find(number) == std::string::npos);
  }
}

TEST_CASE("malformed JSON gets 400 with a reason") {
  Api api;
  for (const std::string body :
       {R"({"login": "ada", "password": )", "not json", R"({"login": 5})",
        R"({"login": "ada", "password": "ada-password", "admin": true})", "[]"}) {
    const auto reply = api.call(http::verb::post, "/v1/auth/login", "", body);
    INFO(body);
    CHECK(reply.status == 400);
    CHECK(reply.error().error() == "bad_request");
    CHECK(reply.error().reason().find("JSON") != std::string::npos);
  }
  const auto empty = api.call(http::verb::post, "/v1/auth/login", "", R"({})");
  CHECK(empty.status == 400);
  const auto text = api.call(http::verb::post, "/v1/auth/login", "",
                             R"({"login": "ada", "password": "ada-password"})", "text/plain");
  CHECK(text.status == 415);
}

TEST_CASE("a body over the limit gets 413, and the server goes on") {
  Api api;
  const std::string big = R"({"login": "ada", "password": ")" + std::string(kMaxBody, 'x') + "\"}";
  const auto reply = api.call(http::verb::post, "/v1/auth/login", "", big);
  CHECK(reply.status == 413);
  CHECK(reply.error().error() == "payload_too_large");
  // A declared length far over the limit is refused before any of the body is read.
  const auto declared = api.raw(
      "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000000000\r\n\r\n{");
  CHECK(declared.status == 413);
  CHECK(api.login("ada", "ada-password").size() > 3);
}

TEST_CASE("unknown endpoints, wrong methods and malformed HTTP get clear errors") {
  Api api;
  const auto token = api.login("ada", "ada-password");
  const auto missing = api.call(http::verb::get, "/v1/nothing", token);
  CHECK(missing.status == 404);
  CHECK(missing.error().error() == "not_found");
  const auto method = api.call(http::verb::get, "/v1/auth/login");
  CHECK(method.status == 405);
  CHECK(method.allow == "POST");
  CHECK(api.call(http::verb::get, "/v1/operator/kiosks/%zz/deposits", token).status == 400);

  const auto garbage = api.raw("BLAH\x01\x02 / HTTP/9.9\r\n\r\n");
  CHECK(garbage.status == 400);
  CHECK(garbage.error().reason().find("malformed HTTP request") != std::string::npos);
  const auto headers = api.raw(
      "GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n");
  CHECK(headers.status == 431);
  // Each bad request closed only its own connection.
  CHECK(api.call(http::verb::get, "/v1/me", token).status == 200);
}

TEST_CASE("a connection serves several requests, and a silent client is disconnected") {
  Api api;
  const auto token = api.login("ada", "ada-password");
  CHECK(api.twoOnOneConnection(token) == std::pair<unsigned, unsigned>{200, 200});
  // No TLS handshake at all: closed after the handshake timeout.
  CHECK(api.silentClient(false, "").empty());
  // Half a request, then silence: closed after the read timeout.
  CHECK(api.silentClient(true, "GET /v1/me HTTP/1.1\r\nHost: x\r\n").empty());
  // The server goes on.
  CHECK(api.call(http::verb::get, "/v1/me", token).status == 200);
}

TEST_CASE("after 10 refused logins an account is refused, right password too, for a while") {
  Api api;
  const auto attempt = [&](const std::string& password) {
    return api
        .call(http::verb::post, "/v1/auth/login", "",
              R"({"login": "bob", "password": ")" + password + R"("})")
        .status;
  };
  // A success resets the count.
  for (int i = 0; i < 9; ++i) {
    REQUIRE(attempt("guess-" + std::to_string(i)) == 401);
  }
  REQUIRE(attempt("bob-password") == 200);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(attempt("guess-" + std::to_string(i)) == 401);
  }
  const auto throttled = api.call(http::verb::post, "/v1/auth/login", "",
                                  R"({"login": "bob", "password": "bob-password"})");
  CHECK(throttled.status == 401);
  // The same answer as a wrong password: a guesser learns nothing.
  CHECK(throttled.error().reason() == "wrong login or password");
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action = 'auth.login' "
                  "AND result = 'throttled'")[0][0]
            .as<int>() == 1);
  // Other accounts are not affected; once the window has passed, bob logs in again.
  CHECK(api.login("ada", "ada-password").size() > 3);
  api.advance(15min);
  CHECK(attempt("bob-password") == 200);
}
