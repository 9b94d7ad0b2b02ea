// The holder's endpoints (holder_api.hpp) through real TLS sockets, with a real PostgreSQL
// behind them: their cards, "is my card in a box?", the inbox and its live stream (server-sent
// events, resumed with Last-Event-ID), new pickup codes, the boxes; and every refusal: another
// holder's card, deposit or notice is never shown, a number that is not yours is "not found".
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/card_proof.hpp"
#include "lostcard/cloud/holder_api.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/cloud/unclaimed.hpp"
#include "lostcard/test/api_server.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/https_client.hpp"
#include "lostcard/test/manual_clock.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/v1/api.pb.h"
#include "lostcard/wire/envelope.hpp"

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
constexpr const char* kAdaDeposit = "11111111-1111-4111-8111-111111111111";
constexpr const char* kBobDeposit = "22222222-2222-4222-8222-222222222222";

const std::string& pkiDir() { return test::testPki("holder_api_pgtest_pki"); }

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
        holder_data_({.conninfo = db_.conninfo(), .max_new_codes_per_hour = 5}, store_, hasher_),
        streams_({.conninfo = db_.conninfo(), .listen_slice = 20ms}),
        holder_api_{holder_data_, streams_},
        router_(cloud::makeApiV1Router(
            accounts_, reader_, {keys_, enrollment_}, [this] { return now(); }, &holder_api_)),
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

    streams_.start();
    server_.start();
  }

  ~Api() { streams_.stop(); }

  std::chrono::system_clock::time_point now() const { return clock_.now(); }
  void advance(std::chrono::seconds by) { clock_.advance(by); }
  unsigned short port() const { return server_.port(); }
  const std::string& conninfo() const { return db_.conninfo(); }
  cloud::AccountStore& accounts() { return accounts_; }
  cloud::Store& store() { return store_; }

  // One request on a new TLS connection (the client verifies the server against the test CA).
  Reply call(http::verb method, const std::string& target, const std::string& token = "",
             const std::string& body = "", const std::string& content_type = "application/json") {
    return client_.call(method, target, token, body, content_type);
  }

  std::string login(const std::string& who, const std::string& password) {
    return client_.login(who, password);
  }

  pqxx::result query(const std::string& sql) { return db_.query(sql); }

 public:
  using Stream = test::HttpsClient::Stream;

  std::unique_ptr<Stream> connect(asio::io_context& io) { return client_.connect(io); }

 private:
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

 public:
  // A card decided "store" at kT0 and reported in `slot` (nullopt: in the bin) of `kiosk`.
  void deposit(const std::string& id, const std::string& kiosk, std::int64_t card_id,
               const std::string& last4, std::optional<std::uint32_t> slot) {
    cloud::DepositDecision d;
    d.deposit_id = id;
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card_id;
    d.last4 = last4;
    store_.recordDecision(d, kT0);
    v1::Location location;
    if (slot) {
      location.set_slot(*slot);
    } else {
      location.mutable_bin();
    }
    REQUIRE(store_.recordStored(kiosk, id, location, kT0).ok);
  }

 private:
  test::PgTestDb db_;
  cloud::Store store_;
  cloud::AccountStore accounts_;
  cloud::CardDataReader reader_;
  const cloud::CardHasher hasher_{"test-key", std::string(32, 'k')};
  cloud::IssuerKeyStore keys_;
  cloud::CardEnrollment enrollment_;
  cloud::HolderData holder_data_;
  cloud::NoticeStreams streams_;
  cloud::HolderApi holder_api_;
  test::ManualClock clock_{kT0};
  cloud::HttpRouter router_;
  test::ApiServer server_;
  test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return port(); }};
};

// An open event stream (GET /v1/holder/notices/stream), read as raw text: each event is sent as
// one chunk, so the events appear whole between the chunk-size lines.
class EventStream {
 public:
  EventStream(Api& api, asio::io_context& io, const std::string& token,
              const std::string& last_event_id = "")
      : stream_(api.connect(io)) {
    std::string request =
        "GET /v1/holder/notices/stream HTTP/1.1\r\nHost: localhost\r\n"
        "Accept: text/event-stream\r\nAuthorization: Bearer " +
        token + "\r\n";
    if (!last_event_id.empty()) {
      request += "Last-Event-ID: " + last_event_id + "\r\n";
    }
    request += "\r\n";
    asio::write(*stream_, asio::buffer(request));
    waitFor("\r\n\r\n");
    head_ = text_.substr(0, text_.find("\r\n\r\n"));
  }

  // Reads until `what` has arrived (the test fails by the stream's 30 s deadline otherwise).
  void waitFor(const std::string& what) {
    char buf[4096];
    while (text_.find(what) == std::string::npos) {
      beast::error_code ec;
      const auto n = stream_->read_some(asio::buffer(buf), ec);
      INFO("waiting for " << what << "; got so far:\n" << text_);
      REQUIRE(!ec);
      text_.append(buf, n);
    }
  }

  const std::string& head() const { return head_; }
  const std::string& text() const { return text_; }

 private:
  std::unique_ptr<Api::Stream> stream_;
  std::string text_, head_;
};

std::string newCode(Api& api, const std::string& token, const std::string& deposit) {
  const auto reply =
      api.call(http::verb::post, "/v1/holder/deposits/" + deposit + "/new-code", token);
  INFO(reply.body);
  REQUIRE(reply.status == 201);
  return reply.as<v1::NewCodeResult>().notice_id();
}

v1::CardQueryResult cardQuery(Api& api, const std::string& token, const std::string& body,
                              unsigned want_status = 200) {
  const auto reply = api.call(http::verb::post, "/v1/holder/card-queries", token, body);
  INFO(reply.body);
  REQUIRE(reply.status == want_status);
  return want_status == 200 ? reply.as<v1::CardQueryResult>() : v1::CardQueryResult{};
}

std::int64_t cardIdOf(Api& api, const std::string& holder) {
  return api.query("SELECT id FROM cards WHERE holder_id = '" + holder + "'")[0][0]
      .as<std::int64_t>();
}

void markDelivered(Api& api, const std::string& deposit) {
  api.query(
      "UPDATE notice_outbox SET delivered_at = now(), payload_key_id = NULL, "
      "payload_nonce = NULL, payload_sealed = NULL WHERE deposit_id = '" +
      deposit + "' AND delivered_at IS NULL AND gave_up_at IS NULL");
}

}  // namespace

TEST_CASE("a holder sees their own cards, and anyone sees a box with its map link") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto bob = api.login("bob", "bob-password");

  auto cards = api.call(http::verb::get, "/v1/holder/cards", ada).as<v1::HolderCardList>();
  REQUIRE(cards.cards_size() == 1);
  CHECK(cards.cards(0).last4() == "5556");
  CHECK(cards.cards(0).issuer_id() == "northwind");
  CHECK(cards.cards(0).issuer_name() == "Northwind Bank");
  CHECK(cards.cards(0).enrolled_by() == "issuer");
  CHECK(cards.cards(0).card_id() == cardIdOf(api, "ada"));
  cards = api.call(http::verb::get, "/v1/holder/cards", bob).as<v1::HolderCardList>();
  REQUIRE(cards.cards_size() == 1);
  CHECK(cards.cards(0).last4() == "8210");

  // Not a holder: refused, and audited.
  const auto op = api.login("op1", "op1-password");
  CHECK(api.call(http::verb::get, "/v1/holder/cards", op).status == 403);
  CHECK(api.call(http::verb::get, "/v1/holder/notices", op).status == 403);
  CHECK(api.call(http::verb::get, "/v1/holder/notices/stream", op).status == 403);
  CHECK(api.call(http::verb::get, "/v1/holder/cards").status == 401);

  const auto kiosk = api.call(http::verb::get, "/v1/kiosks/kiosk-1").as<v1::KioskInfo>();
  CHECK(kiosk.name() == "Main Station");
  CHECK(kiosk.address() == "Station Square 1");
  CHECK(kiosk.opening_hours() == "24/7");
  CHECK(kiosk.latitude() == Approx(47.37));
  CHECK(kiosk.map_url().find("https://www.openstreetmap.org/?mlat=47.37") == 0);
  CHECK(api.call(http::verb::get, "/v1/kiosks/nowhere").status == 404);

  // The holder's deposits name their box's place too.
  const auto deposits = api.call(http::verb::get, "/v1/holder/deposits", ada).as<v1::DepositList>();
  REQUIRE(deposits.deposits_size() == 1);
  CHECK(deposits.deposits(0).kiosk().map_url() == kiosk.map_url());
  CHECK(deposits.deposits(0).kiosk().opening_hours() == "24/7");
}

TEST_CASE("is my card in a box: answers only about the asker's own cards") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto ada_card = cardIdOf(api, "ada");
  const auto bob_card = cardIdOf(api, "bob");

  // By card id and by number: her deposit, its place, and the notice already on its way.
  const auto waiting = api.query("SELECT id::text FROM notice_outbox WHERE deposit_id = '" +
                                 std::string(kAdaDeposit) + "'")[0][0]
                           .as<std::string>();
  for (const auto& body : {R"({"card_id": ")" + std::to_string(ada_card) + R"("})",
                           std::string(R"({"number": "4000 0566 5566 5556"})")}) {
    const auto result = cardQuery(api, ada, body);
    CHECK(result.found());
    REQUIRE(result.deposits_size() == 1);
    CHECK(result.deposits(0).deposit_id() == kAdaDeposit);
    CHECK(result.deposits(0).status() == "stored");
    CHECK(result.deposits(0).last4() == "5556");
    CHECK(result.deposits(0).slot_number() == 2);
    CHECK(result.deposits(0).kiosk().name() == "Main Station");
    CHECK(result.deposits(0).notice() == "on_its_way");
    CHECK(result.deposits(0).notice_id() == waiting);
  }

  // Another holder's card: by id 404 (as for no card at all), by number "not found", the same
  // answer as a number nobody enrolled.
  CHECK(
      api.call(http::verb::post, "/v1/holder/card-queries", ada,
               R"({"card_id": ")" + std::to_string(bob_card) + R"("})")
          .body ==
      api.call(http::verb::post, "/v1/holder/card-queries", ada, R"({"card_id": "999999"})").body);
  CHECK(api.call(http::verb::post, "/v1/holder/card-queries", ada,
                 R"({"card_id": ")" + std::to_string(bob_card) + R"("})")
            .status == 404);
  const auto theirs = api.call(http::verb::post, "/v1/holder/card-queries", ada,
                               std::string(R"({"number": ")") + kBobNumber + R"("})");
  const auto nobodys = api.call(http::verb::post, "/v1/holder/card-queries", ada,
                                R"({"number": "4242424242424242"})");
  CHECK(theirs.status == 200);
  CHECK(theirs.body == nobodys.body);
  CHECK_FALSE(theirs.as<v1::CardQueryResult>().found());
  CHECK(theirs.as<v1::CardQueryResult>().deposits_size() == 0);

  // Bad input: clear 400s.
  cardQuery(api, ada, R"({})", 400);
  cardQuery(api, ada, R"({"number": "12ab"})", 400);
  cardQuery(api, ada, R"({"number": "123"})", 400);
  cardQuery(api, ada, R"({"card_id": "1", "number": "4000056655665556"})", 400);

  // Once that notice was delivered, asking again pushes a new one (a new code: the old one is
  // kept only as a hash), and asking once more does not queue a duplicate.
  markDelivered(api, kAdaDeposit);
  const auto pushed = cardQuery(api, ada, R"({"number": "4000056655665556"})");
  REQUIRE(pushed.deposits_size() == 1);
  CHECK(pushed.deposits(0).notice() == "queued");
  CHECK(pushed.deposits(0).notice_id() != waiting);
  const auto again = cardQuery(api, ada, R"({"number": "4000056655665556"})");
  CHECK(again.deposits(0).notice() == "on_its_way");
  CHECK(again.deposits(0).notice_id() == pushed.deposits(0).notice_id());
  CHECK(api.query("SELECT count(*) FROM notice_outbox WHERE deposit_id = '" +
                  std::string(kAdaDeposit) +
                  "' AND delivered_at IS NULL AND gave_up_at IS NULL")[0][0]
            .as<int>() == 1);

  // Audited, never with the number.
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action = 'cards.query'")[0][0].as<int>() >=
        8);
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE detail ~ '[0-9]{8}'")[0][0].as<int>() == 0);
}

TEST_CASE("the inbox lists the holder's own notices, with the code only while it waits") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto bob = api.login("bob", "bob-password");

  auto inbox = api.call(http::verb::get, "/v1/holder/notices", ada).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 1);
  CHECK(inbox.notices(0).deposit_id() == kAdaDeposit);
  CHECK(inbox.notices(0).state() == "waiting");
  const auto& code = inbox.notices(0).notice().pickup_code();
  CHECK(std::count_if(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) == 10);
  CHECK(inbox.notices(0).notice().kiosk().name() == "Main Station");
  CHECK(inbox.notices(0).notice().card_last4() == "5556");
  const auto first = inbox.notices(0).notice_id();

  // Bob's inbox holds only his.
  const auto bobs = api.call(http::verb::get, "/v1/holder/notices", bob).as<v1::HolderNoticeList>();
  REQUIRE(bobs.notices_size() == 1);
  CHECK(bobs.notices(0).deposit_id() == kBobDeposit);

  // Delivered: told again from the rows, without the code (wiped from the outbox).
  markDelivered(api, kAdaDeposit);
  inbox = api.call(http::verb::get, "/v1/holder/notices", ada).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 1);
  CHECK(inbox.notices(0).state() == "delivered");
  CHECK(inbox.notices(0).notice().pickup_code().empty());
  CHECK(inbox.notices(0).notice().slot_number() == 2);
  CHECK(inbox.notices(0).notice().map_url().find("openstreetmap") != std::string::npos);

  // A new code: newest first; the old notice stays delivered.
  const auto second = newCode(api, ada, kAdaDeposit);
  inbox = api.call(http::verb::get, "/v1/holder/notices", ada).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 2);
  CHECK(inbox.notices(0).notice_id() == second);
  CHECK(inbox.notices(0).state() == "waiting");
  CHECK(inbox.notices(1).notice_id() == first);
  // Another new code withdraws the waiting one.
  const auto third = newCode(api, ada, kAdaDeposit);
  inbox = api.call(http::verb::get, "/v1/holder/notices", ada).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 3);
  CHECK(inbox.notices(0).notice_id() == third);
  CHECK(inbox.notices(1).state() == "withdrawn");
  CHECK(inbox.notices(1).notice().pickup_code().empty());
}

TEST_CASE("a new pickup code: only for the holder's own deposit, audited, throttled") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto bob = api.login("bob", "bob-password");

  const auto notice = newCode(api, ada, kAdaDeposit);
  CHECK_FALSE(notice.empty());
  // Another holder's deposit, an unknown one and a malformed id: the same 404.
  const auto others = api.call(
      http::verb::post, std::string("/v1/holder/deposits/") + kAdaDeposit + "/new-code", bob);
  CHECK(others.status == 404);
  CHECK(others.body == api.call(http::verb::post,
                                "/v1/holder/deposits/99999999-9999-4999-8999-999999999999/new-code",
                                bob)
                           .body);
  CHECK(api.call(http::verb::post, "/v1/holder/deposits/nope/new-code", bob).status == 404);
  CHECK(api.call(http::verb::get, "/v1/holder/deposits/x/new-code", bob).status == 405);

  const auto audit = api.query(
      "SELECT result, count(*) FROM audit_log WHERE action = 'pickup.new_code' "
      "GROUP BY result ORDER BY result");
  REQUIRE(audit.size() == 2);
  CHECK(audit[0][0].as<std::string>() == "ok");
  CHECK(audit[0][1].as<int>() == 1);
  CHECK(audit[1][0].as<std::string>() == "refused");

  // Five in an hour (refusals count): the sixth gets 429, an hour later it works again.
  for (int i = 0; i < 4; ++i) {
    newCode(api, ada, kAdaDeposit);
  }
  const auto throttled = api.call(
      http::verb::post, std::string("/v1/holder/deposits/") + kAdaDeposit + "/new-code", ada);
  CHECK(throttled.status == 429);
  CHECK(throttled.error().error() == "too_many_requests");
  api.advance(3601s);
  const auto ada2 = api.login("ada", "ada-password");
  newCode(api, ada2, kAdaDeposit);
}

TEST_CASE("the live inbox sends each new notice of the holder, and resumes with Last-Event-ID") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto bob = api.login("bob", "bob-password");

  std::string first, second;
  {
    asio::io_context io;
    EventStream stream(api, io, ada);
    CHECK(stream.head().find("HTTP/1.1 200") == 0);
    CHECK(stream.head().find("text/event-stream") != std::string::npos);
    stream.waitFor(": stream open");
    // The notice queued before connecting is not sent again.
    CHECK(stream.text().find("id: ") == std::string::npos);

    first = newCode(api, ada, kAdaDeposit);
    stream.waitFor("id: " + first + "\n");
    // Bob's notice is not Ada's: her next one arrives, his never does.
    const auto bobs = newCode(api, bob, kBobDeposit);
    second = newCode(api, ada, kAdaDeposit);
    stream.waitFor("id: " + second + "\n");
    CHECK(stream.text().find(bobs) == std::string::npos);
    CHECK(stream.text().find("\"pickup_code\":\"") != std::string::npos);
    CHECK(stream.text().find("event: notice\ndata: {") != std::string::npos);
  }
  // Resumed after the first: the second is sent again at once (and nothing older).
  asio::io_context io;
  EventStream resumed(api, io, ada, first);
  resumed.waitFor("id: " + second + "\n");
  CHECK(resumed.text().find("id: " + first) == std::string::npos);
}

TEST_CASE("an issuer's card proof is HMAC-SHA256 under a key derived from the card key") {
  const cloud::CardHasher hasher("test-key", std::string(32, 'k'));
  // Computed apart, with Python's hmac module (card_proof.hpp spells out the chain).
  const auto key = cloud::issuerProofKey(hasher, "northwind");
  CHECK(cloud::cardProof(key, "ada", "4000056655665556") ==
        "885075d5dcd03defa378f05df3184fbc4501291f0e756904f63cf4da2890c020");
  CHECK(cloud::checkCardProof(hasher, "northwind", "ada", "4000056655665556",
                              "885075D5DCD03DEFA378F05DF3184FBC4501291F0E756904F63CF4DA2890C020"));
  CHECK_FALSE(cloud::checkCardProof(hasher, "northwind", "bob", "4000056655665556",
                                    cloud::cardProof(key, "ada", "4000056655665556")));
  CHECK_FALSE(cloud::checkCardProof(hasher, "contoso", "ada", "4000056655665556",
                                    cloud::cardProof(key, "ada", "4000056655665556")));
  CHECK_FALSE(cloud::checkCardProof(hasher, "northwind", "ada", "4000056655665556", ""));
  CHECK(cloud::issuerProofKey(hasher, "contoso") != key);
}

TEST_CASE("a holder adds their own card with the issuer's proof, and only then") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const cloud::CardHasher hasher("test-key", std::string(32, 'k'));
  const auto contoso = cloud::issuerProofKey(hasher, "contoso");
  const std::string number = "5555555555554444";
  const auto body = [](const std::string& issuer, const std::string& n, const std::string& proof) {
    return R"({"issuer_id": ")" + issuer + R"(", "number": ")" + n + R"(", "proof": ")" + proof +
           R"("})";
  };

  const auto added =
      api.call(http::verb::post, "/v1/holder/cards", ada,
               body("contoso", "5555 5555 5555 4444", cloud::cardProof(contoso, "ada", number)));
  INFO(added.body);
  REQUIRE(added.status == 201);
  const auto card = added.as<v1::HolderCard>();
  CHECK(card.last4() == "4444");
  CHECK(card.enrolled_by() == "holder");
  CHECK(card.issuer_name() == "Contoso Transit");
  // Again: the same card, nothing changed.
  const auto again = api.call(http::verb::post, "/v1/holder/cards", ada,
                              body("contoso", number, cloud::cardProof(contoso, "ada", number)));
  CHECK(again.status == 200);
  CHECK(again.as<v1::HolderCard>().card_id() == card.card_id());
  const auto cards = api.call(http::verb::get, "/v1/holder/cards", ada).as<v1::HolderCardList>();
  CHECK(cards.cards_size() == 2);

  // Refusals: a proof for someone else, or by another issuer's key; another holder's card (even
  // with a proof for ada); an unknown issuer; a malformed number.
  CHECK(api.call(http::verb::post, "/v1/holder/cards", ada,
                 body("contoso", "4242424242424242",
                      cloud::cardProof(contoso, "bob", "4242424242424242")))
            .status == 403);
  CHECK(api.call(http::verb::post, "/v1/holder/cards", ada,
                 body("northwind", "4242424242424242",
                      cloud::cardProof(contoso, "ada", "4242424242424242")))
            .status == 403);
  CHECK(api.call(http::verb::post, "/v1/holder/cards", ada,
                 body("contoso", kBobNumber, cloud::cardProof(contoso, "ada", kBobNumber)))
            .status == 409);
  CHECK(api.call(http::verb::post, "/v1/holder/cards", ada, body("nobank", number, "00")).status ==
        404);
  CHECK(api.call(http::verb::post, "/v1/holder/cards", ada, body("contoso", "12x4", "00")).status ==
        400);
  CHECK(api.query("SELECT count(*) FROM cards WHERE holder_id = 'ada'")[0][0].as<int>() == 2);
  CHECK(
      api
          .query(
              "SELECT count(*) FROM audit_log WHERE action = 'cards.add' AND result = 'refused'")[0]
                                                                                                 [0]
          .as<int>() == 5);
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE detail ~ '[0-9]{8}'")[0][0].as<int>() == 0);
}

namespace {

// The deposit `id` of a card query's answer (fails the test when it is not there).
v1::FoundDeposit foundDeposit(const v1::CardQueryResult& result, const std::string& id) {
  for (const auto& d : result.deposits()) {
    if (d.deposit_id() == id) {
      return d;
    }
  }
  FAIL("deposit " << id << " is not in the answer");
  return {};
}

}  // namespace

TEST_CASE("a holder is told when their card is with an operator or going back to its issuer") {
  Api api;
  const auto ada = api.login("ada", "ada-password");
  const auto bob = api.login("bob", "bob-password");
  const std::string bob_query = std::string(R"({"number": ")") + kBobNumber + R"("})";

  // Bob's card, decided "store", went to the bin of kiosk-1 (no free slot): an operator's task.
  constexpr const char* kInBin = "44444444-4444-4444-8444-444444444444";
  api.deposit(kInBin, "kiosk-1", cardIdOf(api, "bob"), "8210", std::nullopt);
  auto in_bin = foundDeposit(cardQuery(api, bob, bob_query), kInBin);
  CHECK(in_bin.status() == "with_operator");
  CHECK(in_bin.slot_number() == 0);
  CHECK(in_bin.notice() == "not_in_slot");
  CHECK_THAT(in_bin.message(), Catch::Contains("with the operator of the box \"Main Station\"") &&
                                   Catch::Contains("ending 8210"));
  CHECK(foundDeposit(cardQuery(api, bob, bob_query), kBobDeposit).status() == "stored");

  // The operator empties the bin: the card waits to be put in a slot, still with the operator.
  api.store().setOperatorCode("op1", "1234567890", api.now());
  const auto request = wire::newUuid();
  REQUIRE(api.store().checkOperatorCode("kiosk-1", request, "1234567890", api.now()).result ==
          v1::OPERATOR_AUTH_RESULT_OK);
  CHECK(api.store().recordBinEmptied("kiosk-1", request, {kInBin}, api.now()).collected == 1);
  CHECK(foundDeposit(cardQuery(api, bob, bob_query), kInBin).status() == "with_operator");

  // Put in a slot: the normal path, a notice with a code.
  v1::Location slot;
  slot.set_slot(5);
  CHECK(api.store().recordStored("kiosk-1", kInBin, slot, api.now()).notice_queued);
  const auto restocked = foundDeposit(cardQuery(api, bob, bob_query), kInBin);
  CHECK(restocked.status() == "stored");
  CHECK(restocked.slot_number() == 6);
  CHECK(restocked.notice() == "on_its_way");
  CHECK_THAT(restocked.message(), Catch::Contains("is in slot 6"));

  // Ada's card was not collected in time: it goes back to Northwind; no code will come.
  CHECK(cloud::markUnclaimedForReturn(api.conninfo(), api.now() + std::chrono::hours(24 * 31),
                                      std::chrono::hours(24 * 30)) >= 1);
  const auto returning = cardQuery(api, ada, R"({"number": "4000056655665556"})").deposits(0);
  CHECK(returning.deposit_id() == kAdaDeposit);
  CHECK(returning.status() == "returning_to_issuer");
  CHECK(returning.notice() == "none");
  CHECK(returning.slot_number() == 0);
  CHECK_THAT(returning.message(), Catch::Contains("being returned to Northwind Bank"));
  // Her inbox says so too: the notice was withdrawn, and where the card is now.
  const auto inbox =
      api.call(http::verb::get, "/v1/holder/notices", ada).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 1);
  CHECK(inbox.notices(0).state() == "withdrawn");
  CHECK(inbox.notices(0).card_status() == "returning_to_issuer");
  CHECK(inbox.notices(0).notice().pickup_code().empty());
  CHECK_THAT(inbox.notices(0).notice().message(),
             Catch::Contains("being returned to Northwind Bank") && !Catch::Contains("is in slot"));
}

TEST_CASE("a holder who asks about their card, or for a new code, keeps it from going back") {
  Api api;
  const auto day = std::chrono::hours(24);
  const auto sweep = [&](std::chrono::hours at) {
    return cloud::markUnclaimedForReturn(api.conninfo(), kT0 + at, day * 30);
  };
  const auto status = [&] {
    return api
        .query(std::string("SELECT status FROM deposits WHERE id = '") + kAdaDeposit + "'")[0][0]
        .as<std::string>();
  };

  // Day 29: Ada asks whether a box holds her card. Day 31: bob's and carl's go back, hers stays.
  api.advance(day * 29);
  cardQuery(api, api.login("ada", "ada-password"), R"({"number": "4000056655665556"})");
  CHECK(sweep(day * 31) == 2);
  CHECK(status() == "stored");
  // Day 50: she asks for a new code; day 59 (30 days after her question) it still stays.
  api.advance(day * 21);
  newCode(api, api.login("ada", "ada-password"), kAdaDeposit);
  CHECK(sweep(day * 59) == 0);
  CHECK(status() == "stored");
  // 30 days after her last action, nobody came: it goes back.
  CHECK(sweep(day * 80) == 1);
  CHECK(status() == "to_return");
}
