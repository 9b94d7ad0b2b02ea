// Operators and issuers through the real HTTPS API with a real PostgreSQL behind it (issue 6):
// the fleet and its alerts, difficult cards (list, redacted photos, manual resolution), the
// collection list, cards unclaimed for too long, and issuers' webhooks delivered by the notice
// worker to the real lostcard-webhook-sink, signed and retried. With the refusals: an operator of
// another kiosk, holders and issuer staff, another issuer.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <thread>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/cloud/operator_api.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/cloud/unclaimed.hpp"
#include "lostcard/test/api_server.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/https_client.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/test/webhook_sink_process.hpp"
#include "lostcard/v1/api.pb.h"
#include "lostcard/wire/envelope.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace lostcard;
using namespace std::chrono_literals;
using cloud::Role;

namespace {

constexpr const char* kAdaNumber = "4000056655665556";     // northwind's card, enrolled to ada
constexpr const char* kBobNumber = "5200828282828210";     // contoso's card, enrolled to bob
constexpr const char* kNobodyNumber = "4242424242424242";  // passes Luhn, enrolled by nobody
constexpr const char* kFront = "\xff\xd8 front photo, redacted";
constexpr const char* kBack = "\xff\xd8 back photo, redacted";

const std::string& pkiDir() { return test::testPki("operator_api_pgtest_pki"); }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

using Reply = test::HttpsReply;

// Two issuers, two holders with a card each, two kiosks, an operator per kiosk, an admin, a
// holder and issuer staff; the v1 API with the operators' endpoints over TLS.
class OpsServer {
 public:
  // `resolve_tries`: numbers an operator may type within an hour to resolve difficult cards.
  explicit OpsServer(int resolve_tries = 20)
      : store_({.conninfo = db_.conninfo()}),
        accounts_({.conninfo = db_.conninfo()}),
        reader_({.conninfo = db_.conninfo()}),
        keys_({.conninfo = db_.conninfo()}),
        enrollment_({.conninfo = db_.conninfo()}, hasher_),
        vault_({{"i1", std::string(32, 'v')}}),
        ops_({.conninfo = db_.conninfo(),
              .thresholds = {.bin_percent = 80, .slots_percent = 90, .online_within = 1h},
              .card_hasher = &hasher_,
              .image_vault = &vault_,
              .resolve_tries = resolve_tries,
              .resolve_window = 1h}),
        router_(cloud::makeApiV1Router(accounts_, reader_, {keys_, enrollment_})),
        server_(router_, pkiDir(), serverOptions()) {
    ops_.addRoutes(router_);
    store_.migrate();
    store_.upsertIssuer("northwind", "Northwind Bank");
    store_.upsertIssuer("contoso", "Contoso Transit");
    store_.upsertHolder("ada", "Ada", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    store_.upsertHolder("bob", "Bob", "http://127.0.0.1:9/bob", "bob-secret-0123456789");
    ada_card_ = store_.enrollCard(hasher_, "northwind", "ada", kAdaNumber);
    bob_card_ = store_.enrollCard(hasher_, "contoso", "bob", kBobNumber);
    for (const char* id : {"k1", "k2"}) {
      store_.upsertKiosk({id, std::string("Box ") + id, "Street 1", 52.5, 13.4, "", 10});
    }
    account("op1", Role::kOperator, "", "", {"k1"});
    account("op2", Role::kOperator, "", "", {"k2"});
    account("root", Role::kAdmin, "", "", {});
    account("ada", Role::kHolder, "ada", "", {});
    account("nw-staff", Role::kIssuerStaff, "", "northwind", {});
    server_.start();
  }

  std::string login(const std::string& who) {
    const auto session = accounts_.login(who, who + "-password", std::chrono::system_clock::now());
    REQUIRE(session.session.has_value());
    return session.token;
  }

  Reply call(http::verb method, const std::string& target, const std::string& token,
             const std::string& body = "") {
    return client_.call(method, target, token, body);
  }
  Reply get(const std::string& target, const std::string& token) {
    return call(http::verb::get, target, token);
  }
  Reply post(const std::string& target, const std::string& token, const std::string& body) {
    return call(http::verb::post, target, token, body);
  }

  // A difficult card decided at `kiosk` with two kept photos, stored in its bin.
  std::string difficultInBin(const std::string& kiosk) {
    cloud::DepositDecision d;
    d.deposit_id = wire::newUuid();
    d.kiosk_id = kiosk;
    d.reason = v1::DIFFICULT_REASON_UNREADABLE;
    std::vector<cloud::DifficultImage> images;
    int i = 0;
    for (const char* photo : {kFront, kBack}) {
      cloud::DifficultImage image;
      image.deposit_id = d.deposit_id;
      image.face = i++ == 0 ? "front" : "back";
      image.straightened = true;
      image.blacked_out = true;
      const auto sealed = vault_.seal(photo, d.deposit_id);
      image.key_id = sealed.key_id;
      image.nonce = sealed.nonce;
      image.ciphertext = sealed.ciphertext;
      images.push_back(image);
    }
    store_.recordDecision(d, std::chrono::system_clock::now(), images);
    v1::Location bin;
    bin.mutable_bin();
    REQUIRE(store_.recordStored(kiosk, d.deposit_id, bin, std::chrono::system_clock::now()).ok);
    return d.deposit_id;
  }

  // A card of `card_id` decided "store" and put in `slot` of `kiosk` at `at`.
  std::string storedInSlot(const std::string& kiosk, std::int64_t card_id, std::uint32_t slot,
                           std::chrono::system_clock::time_point at) {
    cloud::DepositDecision d;
    d.deposit_id = wire::newUuid();
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card_id;
    d.last4 = card_id == bob_card_ ? "8210" : "5556";
    store_.recordDecision(d, at);
    v1::Location location;
    location.set_slot(slot);
    REQUIRE(store_.recordStored(kiosk, d.deposit_id, location, at).notice_queued);
    return d.deposit_id;
  }

  pqxx::result query(const std::string& sql) { return db_.query(sql); }
  std::string status(const std::string& deposit) {
    return query("SELECT status FROM deposits WHERE id = '" + deposit + "'")[0][0]
        .as<std::string>();
  }
  // "kind:issuer" of the deposit's queued issuer events, sorted.
  std::vector<std::string> events(const std::string& deposit) {
    std::vector<std::string> out;
    for (const auto& r : query("SELECT kind || ':' || issuer_id FROM issuer_event_outbox "
                               "WHERE deposit_id = '" +
                               deposit + "' ORDER BY 1")) {
      out.push_back(r[0].as<std::string>());
    }
    return out;
  }

  cloud::Store& store() { return store_; }
  const std::string& conninfo() const { return db_.conninfo(); }
  std::int64_t adaCard() const { return ada_card_; }
  std::int64_t bobCard() const { return bob_card_; }

 private:
  void account(const std::string& login, Role role, const std::string& holder,
               const std::string& issuer, std::vector<std::string> kiosks) {
    cloud::AccountSpec spec;
    spec.login = login;
    spec.role = role;
    spec.holder_id = holder;
    spec.issuer_id = issuer;
    spec.kiosk_ids = std::move(kiosks);
    accounts_.upsertAccount(spec, login + "-password", std::chrono::system_clock::now());
  }

  static cloud::HttpServerOptions serverOptions() {
    cloud::HttpServerOptions options;
    options.max_body_bytes = 4096;
    options.read_timeout = 10s;
    return options;
  }

  test::PgTestDb db_;
  const cloud::CardHasher hasher_{"test-key", std::string(32, 'k')};
  cloud::Store store_;
  cloud::AccountStore accounts_;
  cloud::CardDataReader reader_;
  cloud::IssuerKeyStore keys_;
  cloud::CardEnrollment enrollment_;
  cloud::ImageVault vault_;
  cloud::OperatorApi ops_;
  cloud::HttpRouter router_;
  test::ApiServer server_;
  std::int64_t ada_card_ = 0, bob_card_ = 0;
  test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return server_.port(); }, 60s};
};

std::vector<std::string> kindsOf(const google::protobuf::RepeatedPtrField<v1::KioskAlert>& alerts) {
  std::vector<std::string> out;
  for (const auto& a : alerts) {
    out.push_back(a.kiosk_id() + ":" + a.kind());
  }
  return out;
}

// The alerts of `list` that a kiosk raised (those with an id).
std::vector<v1::KioskAlert> raisedAlerts(const v1::AlertList& list) {
  std::vector<v1::KioskAlert> out;
  for (const auto& a : list.alerts()) {
    if (!a.alert_id().empty()) {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the fleet: an operator sees their own kiosks with alerts, an admin every one") {
  OpsServer api;
  const auto now = std::chrono::system_clock::now();
  v1::Heartbeat full;
  full.set_slots_used(9);  // of 10: 90 %
  full.set_bin_count(8);
  full.set_bin_capacity(10);  // 80 %
  api.store().recordHeartbeat("k1", full, now);
  v1::Heartbeat quiet;
  quiet.set_slots_used(8);  // 80 %: below the slots' threshold
  quiet.set_bin_count(7);
  quiet.set_bin_capacity(10);                           // 70 %: below the bin's
  api.store().recordHeartbeat("k2", quiet, now - 24h);  // a day ago: offline

  const auto op1 = api.login("op1");
  const auto fleet = api.get("/v1/operator/kiosks", op1);
  REQUIRE(fleet.status == 200);
  const auto list = fleet.as<v1::KioskStatusList>();
  REQUIRE(list.kiosks_size() == 1);
  const auto& k1 = list.kiosks(0);
  CHECK(k1.kiosk_id() == "k1");
  CHECK(k1.online());
  CHECK(k1.slots_used() == 9);
  CHECK(k1.slot_count() == 10);
  CHECK(k1.bin_count() == 8);
  CHECK(k1.bin_capacity() == 10);
  CHECK_FALSE(k1.last_heartbeat_at().empty());
  CHECK(kindsOf(k1.alerts()) ==
        std::vector<std::string>{"k1:bin_nearly_full", "k1:slots_nearly_full"});
  CHECK(kindsOf(api.get("/v1/operator/alerts", op1).as<v1::AlertList>().alerts()) ==
        std::vector<std::string>{"k1:bin_nearly_full", "k1:slots_nearly_full"});

  const auto op2 = api.get("/v1/operator/kiosks", api.login("op2")).as<v1::KioskStatusList>();
  REQUIRE(op2.kiosks_size() == 1);
  CHECK(op2.kiosks(0).kiosk_id() == "k2");
  CHECK_FALSE(op2.kiosks(0).online());
  CHECK(kindsOf(op2.kiosks(0).alerts()) == std::vector<std::string>{"k2:offline"});

  const auto root = api.login("root");
  CHECK(api.get("/v1/operator/kiosks", root).as<v1::KioskStatusList>().kiosks_size() == 2);
  CHECK(kindsOf(api.get("/v1/operator/alerts", root).as<v1::AlertList>().alerts()) ==
        std::vector<std::string>{"k1:bin_nearly_full", "k1:slots_nearly_full", "k2:offline"});

  CHECK(api.get("/v1/operator/kiosks", api.login("ada")).status == 403);
  CHECK(api.get("/v1/operator/alerts", api.login("nw-staff")).status == 403);
  CHECK(api.get("/v1/operator/kiosks", "lc_not-a-token").status == 401);
}

TEST_CASE(
    "difficult cards: listed and their redacted photos shown to the operators of their kiosk "
    "only") {
  OpsServer api;
  const auto deposit = api.difficultInBin("k1");
  const auto op1 = api.login("op1");
  const auto op2 = api.login("op2");

  const auto list = api.get("/v1/operator/difficult", op1).as<v1::DifficultCardList>();
  REQUIRE(list.cards_size() == 1);
  CHECK(list.cards(0).deposit_id() == deposit);
  CHECK(list.cards(0).kiosk_id() == "k1");
  CHECK(list.cards(0).reason() == "unreadable");
  CHECK(list.cards(0).location() == "bin");
  CHECK(list.cards(0).images() == 2);
  CHECK(api.get("/v1/operator/difficult", op2).as<v1::DifficultCardList>().cards_size() == 0);
  CHECK(api.get("/v1/operator/difficult", api.login("ada")).status == 403);

  const auto front = api.get("/v1/operator/difficult/" + deposit + "/images/0", op1);
  REQUIRE(front.status == 200);
  CHECK(front.content_type == "image/jpeg");
  CHECK(front.body == kFront);
  CHECK(api.get("/v1/operator/difficult/" + deposit + "/images/1", op1).body == kBack);
  CHECK(api.get("/v1/operator/difficult/" + deposit + "/images/2", op1).status == 404);
  CHECK(api.get("/v1/operator/difficult/" + deposit + "/images/x", op1).status == 400);
  // Another kiosk's operator: the same 404 as for a deposit that does not exist.
  const auto other = api.get("/v1/operator/difficult/" + deposit + "/images/0", op2);
  const auto none = api.get("/v1/operator/difficult/" + wire::newUuid() + "/images/0", op2);
  CHECK(other.status == 404);
  CHECK(other.body == none.body);
  CHECK(api.get("/v1/operator/difficult/not-a-uuid/images/0", op2).status == 404);
  CHECK(api.get("/v1/operator/difficult/" + deposit + "/images/0", api.login("nw-staff")).status ==
        403);
  CHECK(api.get("/v1/operator/difficult/" + deposit + "/images/0", api.login("root")).status ==
        200);

  // Every photo handed out, and every refusal, is in the audit log.
  const auto audit = api.query(
      "SELECT result, count(*) FROM audit_log WHERE action = 'difficult_images.read' "
      "GROUP BY result ORDER BY result");
  REQUIRE(audit.size() == 2);
  CHECK(audit[0][0].as<std::string>() == "ok");
  CHECK(audit[0][1].as<int>() == 3);
  CHECK(audit[1][0].as<std::string>() == "refused");
  CHECK(audit[1][1].as<int>() == 4);
}

TEST_CASE("resolving a difficult card by hand: the right number, a wrong one, return to issuer") {
  OpsServer api;
  const auto deposit = api.difficultInBin("k1");
  const auto op1 = api.login("op1");
  const auto op2 = api.login("op2");
  const std::string resolve = "/v1/operator/difficult/" + deposit + "/resolve";
  const auto unchanged = [&] {
    const auto r = api.query("SELECT status, decision, card_id IS NULL FROM deposits WHERE id = '" +
                             deposit + "'")[0];
    return r[0].as<std::string>() == "stored" && r[1].as<std::string>() == "difficult" &&
           r[2].as<bool>() && api.events(deposit).empty();
  };

  // Refusals change nothing.
  CHECK(api.post(resolve, op2, std::string(R"({"number":")") + kAdaNumber + "\"}").status == 404);
  CHECK(api.post(resolve, api.login("ada"), R"({"return_to_issuer":true})").status == 403);
  CHECK(api.post(resolve, op1, "{}").status == 400);
  const auto malformed = api.post(resolve, op1, R"({"number":"4000 0566 5566 5557"})");
  CHECK(malformed.status == 422);  // fails Luhn
  const auto nobody = api.post(resolve, op1, std::string(R"({"number":")") + kNobodyNumber + "\"}");
  CHECK(nobody.status == 422);
  CHECK_THAT(nobody.body, Catch::Contains("no enrolled card") && Catch::Contains("4242"));
  CHECK(unchanged());

  // The right number: the deposit names ada's card and waits to be put in a slot.
  const auto done = api.post(resolve, op1, std::string(R"({"number":")") + kAdaNumber + "\"}");
  REQUIRE(done.status == 200);
  const auto resolved = done.as<v1::Deposit>();
  CHECK(resolved.status() == "awaiting_restock");
  CHECK(resolved.decision() == "store");
  CHECK(resolved.last4() == "5556");
  CHECK(resolved.location() == "bin");
  CHECK(resolved.restock_number() == 1);  // the lowest free at k1
  CHECK(api.query("SELECT card_id FROM deposits WHERE id = '" + deposit + "'")[0][0]
            .as<std::int64_t>() == api.adaCard());
  CHECK(api.events(deposit) == std::vector<std::string>{"found:northwind"});
  CHECK(api.post(resolve, op1, R"({"return_to_issuer":true})").status == 409);  // done already

  // The collection list tells op1 to take it out of the bin and put it in a slot.
  const auto collection =
      api.get("/v1/operator/kiosks/k1/collection", op1).as<v1::CollectionList>();
  REQUIRE(collection.items_size() == 1);
  CHECK(collection.items(0).deposit_id() == deposit);
  CHECK(collection.items(0).action() == "restock");
  CHECK(collection.items(0).location() == "bin");
  CHECK(collection.items(0).restock_number() == 1);
  CHECK(api.get("/v1/operator/kiosks/k1/collection", op2).status == 403);

  // Once the kiosk reports it in a slot, the normal path: pickup code and notice to ada.
  CHECK_FALSE(api.store().waitingNotice(deposit).has_value());
  v1::Location slot;
  slot.set_slot(4);
  CHECK(api.store()
            .recordStored("k1", deposit, slot, std::chrono::system_clock::now())
            .notice_queued);
  CHECK(api.status(deposit) == "stored");
  const auto notice = api.store().waitingNotice(deposit);
  REQUIRE(notice.has_value());
  CHECK(notice->slot_number() == 5);
  CHECK(api.get("/v1/operator/kiosks/k1/collection", op1).as<v1::CollectionList>().items_size() ==
        0);

  // Return to the issuer alone (nothing identifies the card: no issuer to tell), and with a
  // number that names the card and so its issuer.
  const auto unknown = api.difficultInBin("k1");
  const auto returned = api.post("/v1/operator/difficult/" + unknown + "/resolve", op1,
                                 R"({"return_to_issuer":true})");
  REQUIRE(returned.status == 200);
  CHECK(returned.as<v1::Deposit>().status() == "to_return");
  CHECK(api.events(unknown).empty());
  const auto bobs = api.difficultInBin("k1");
  REQUIRE(api.post("/v1/operator/difficult/" + bobs + "/resolve", op1,
                   std::string(R"({"return_to_issuer":true,"number":")") + kBobNumber + "\"}")
              .status == 200);
  CHECK(api.status(bobs) == "to_return");
  CHECK(api.events(bobs) ==
        std::vector<std::string>{"found:contoso", "returned_to_issuer:contoso"});
  const auto list = api.get("/v1/operator/kiosks/k1/collection", op1).as<v1::CollectionList>();
  REQUIRE(list.items_size() == 2);
  CHECK(list.items(0).action() == "return_to_issuer");
  CHECK(list.items(1).action() == "return_to_issuer");

  // No number anywhere in the audit log or the outbox, only last fours.
  const auto everything = api.query(
                                 "SELECT string_agg(a::text, '|') FROM (SELECT "
                                 "row_to_json(l)::text AS a FROM audit_log l "
                                 "UNION ALL SELECT payload::text FROM issuer_event_outbox) t")[0][0]
                              .as<std::string>();
  for (const char* number : {kAdaNumber, kBobNumber, kNobodyNumber}) {
    CHECK(everything.find(std::string(number).substr(0, 12)) == std::string::npos);
  }
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action = 'difficult.resolve' "
                  "AND result = 'refused'")[0][0]
            .as<int>() == 5);
}

TEST_CASE("cards unclaimed for too long are marked for return, their codes stop working") {
  OpsServer api;
  const auto now = std::chrono::system_clock::now();
  const auto old = api.storedInSlot("k1", api.bobCard(), 2, now - 24h * 40);
  const auto recent = api.storedInSlot("k1", api.adaCard(), 3, now - 24h);
  const std::string code = api.store().waitingNotice(old)->pickup_code();

  CHECK(cloud::markUnclaimedForReturn(api.conninfo(), now, 24h * 30) == 1);
  CHECK(cloud::markUnclaimedForReturn(api.conninfo(), now, 24h * 30) == 0);
  CHECK(api.status(old) == "to_return");
  CHECK(api.status(recent) == "stored");
  CHECK(api.events(old) == std::vector<std::string>{"found:contoso", "returned_to_issuer:contoso"});
  // The notice still waiting is withdrawn; the code no longer opens the slot.
  CHECK_FALSE(api.store().waitingNotice(old).has_value());
  const auto pickup = api.store().redeemPickupCode({"k1", wire::newUuid(), 2, code}, now + 1min);
  CHECK(pickup.verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);

  const auto list =
      api.get("/v1/operator/kiosks/k1/collection", api.login("op1")).as<v1::CollectionList>();
  REQUIRE(list.items_size() == 1);
  CHECK(list.items(0).deposit_id() == old);
  CHECK(list.items(0).action() == "return_to_issuer");
  CHECK(list.items(0).location() == "slot:2");
  CHECK(list.items(0).issuer_id() == "contoso");
  CHECK(list.items(0).last4() == "8210");

  // By hand, with lostcard-admin.
  const auto out = test::runProgram({test::binDir() + "/lostcard-admin", "--db", api.conninfo(),
                                     "sweep-unclaimed", "--days", "0"});
  CHECK_THAT(out, Catch::Contains("marked 1 card(s)"));
  CHECK(api.status(recent) == "to_return");
}

TEST_CASE(
    "issuer webhooks: signed, retried, delivered to their issuer only (lostcard-webhook-sink)") {
  OpsServer api;
  const std::string nw_secret = "northwind-secret-0123456789abcdef";
  test::WebhookSinkProcess sink(test::makeTestDir("operator_api_sink"));
  sink.addSecret("issuer:northwind", nw_secret);
  sink.addSecret("issuer:contoso", "contoso-secret-0123456789abcd");
  const std::string base = sink.url("");

  // lostcard-admin makes the secret and prints it once; contoso points at the sink.
  const auto printed =
      test::runProgram({test::binDir() + "/lostcard-admin", "--db", api.conninfo(),
                        "set-issuer-webhook", "contoso", base + "/issuers/contoso"});
  CHECK(std::regex_match(printed, std::regex("[0-9a-f]{64}\n")));
  REQUIRE(cloud::setIssuerWebhook(api.conninfo(), "contoso", base + "/issuers/contoso",
                                  "contoso-secret-0123456789abcd"));
  // Northwind's endpoint is down at first.
  REQUIRE(
      cloud::setIssuerWebhook(api.conninfo(), "northwind", "http://127.0.0.1:9/down", nw_secret));
  CHECK_FALSE(cloud::setIssuerWebhook(api.conninfo(), "nobody", base, nw_secret));

  const auto deposit = api.storedInSlot("k1", api.adaCard(), 1, std::chrono::system_clock::now());
  cloud::NoticeDelivery delivery(
      {.conninfo = api.conninfo(), .request_timeout = 5000ms, .allow_internal_webhooks = true});
  delivery.deliverDue();
  auto row = api.query(
      "SELECT attempts, delivered_at IS NULL, last_error FROM issuer_event_outbox "
      "WHERE deposit_id = '" +
      deposit + "'")[0];
  CHECK(row[0].as<int>() == 1);
  CHECK(row[1].as<bool>());
  CHECK_FALSE(row[2].is_null());

  // The endpoint comes back; the retry (made due now) is delivered, signed with its secret.
  REQUIRE(
      cloud::setIssuerWebhook(api.conninfo(), "northwind", base + "/issuers/northwind", nw_secret));
  api.query("UPDATE issuer_event_outbox SET next_attempt_at = now()");
  REQUIRE(test::eventually(
      [&] {
        delivery.deliverDue();
        return !api.query("SELECT 1 FROM issuer_event_outbox WHERE deposit_id = '" + deposit +
                          "' AND delivered_at IS NOT NULL")
                    .empty();
      },
      30s));
  row = api.query("SELECT attempts, id::text FROM issuer_event_outbox WHERE deposit_id = '" +
                  deposit + "'")[0];
  CHECK(row[0].as<int>() == 2);
  const std::string event_id = row[1].as<std::string>();

  const std::string lines = readFile(sink.outFile());
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
  CHECK(lines.rfind("{\"issuer_id\":\"northwind\",\"event\":{", 0) == 0);
  CHECK_THAT(lines, Catch::Contains("\"event_id\":\"" + event_id + "\""));
  CHECK_THAT(lines, Catch::Contains("\"type\":\"card.found\""));
  CHECK_THAT(lines, Catch::Contains("\"last4\":\"5556\""));
  CHECK_THAT(lines, Catch::Contains("\"kiosk_id\":\"k1\""));
  CHECK(lines.find("contoso") == std::string::npos);  // the other issuer got nothing
  CHECK(lines.find(std::string(kAdaNumber).substr(0, 12)) == std::string::npos);

  // A contoso card's events go to contoso alone.
  const auto bobs = api.storedInSlot("k2", api.bobCard(), 1, std::chrono::system_clock::now());
  REQUIRE(test::eventually(
      [&] {
        delivery.deliverDue();
        return readFile(sink.outFile()).find(bobs) != std::string::npos;
      },
      30s));
  const std::string after = readFile(sink.outFile());
  CHECK(std::count(after.begin(), after.end(), '\n') == 2);
  CHECK_THAT(after, Catch::Contains("{\"issuer_id\":\"contoso\",\"event\":{"));
  const int status = sink.terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("alerts a kiosk raised: listed for its operators, acknowledged by one of them") {
  OpsServer api;
  const auto now = std::chrono::system_clock::now();
  // A pickup whose slot door did not open (Store::recordPickupDone, as the gateway records it).
  const auto deposit = api.storedInSlot("k1", api.adaCard(), 2, now);
  const auto request = wire::newUuid();
  const auto code = api.store().waitingNotice(deposit)->pickup_code();
  REQUIRE(api.store().redeemPickupCode({"k1", request, 2, code}, now).verdict.result ==
          v1::PICKUP_RESULT_OPEN);
  REQUIRE(api.store()
              .recordPickupDone(
                  {"k1", request, deposit, v1::PICKUP_OUTCOME_DOOR_FAILED, "latch of slot 3 stuck"},
                  now)
              .ok);

  const auto op1 = api.login("op1");
  const auto op2 = api.login("op2");
  auto raised = raisedAlerts(api.get("/v1/operator/alerts", op1).as<v1::AlertList>());
  REQUIRE(raised.size() == 1);
  const auto alert = raised[0];
  CHECK(alert.kiosk_id() == "k1");
  CHECK(alert.kind() == "slot_door_failed");
  CHECK(alert.deposit_id() == deposit);
  CHECK(alert.detail() == "latch of slot 3 stuck");
  CHECK_FALSE(alert.at().empty());
  CHECK(alert.acknowledged_at().empty());
  CHECK_THAT(alert.message(), Catch::Contains("slot 3"));
  // Only k1's operators (and admins) see it.
  CHECK(raisedAlerts(api.get("/v1/operator/alerts", op2).as<v1::AlertList>()).empty());
  CHECK(
      raisedAlerts(api.get("/v1/operator/alerts", api.login("root")).as<v1::AlertList>()).size() ==
      1);

  // Refusals: another kiosk's operator and an unknown or malformed id get the same 404; a holder
  // 403. Nothing changes.
  const std::string ack = "/v1/operator/alerts/" + alert.alert_id() + "/ack";
  const auto others = api.post(ack, op2, "");
  CHECK(others.status == 404);
  const auto unknown = api.post("/v1/operator/alerts/999999/ack", op1, "");
  CHECK(unknown.status == 404);
  CHECK(unknown.body == others.body);
  CHECK(api.post("/v1/operator/alerts/abc/ack", op1, "").status == 404);
  CHECK(api.post(ack, api.login("ada"), "").status == 403);
  CHECK(raisedAlerts(api.get("/v1/operator/alerts", op1).as<v1::AlertList>()).size() == 1);

  // k1's operator acknowledges it: it leaves the list; a repeat answers the same.
  const auto done = api.post(ack, op1, "");
  REQUIRE(done.status == 200);
  const auto acknowledged = done.as<v1::KioskAlert>();
  CHECK(acknowledged.alert_id() == alert.alert_id());
  CHECK_FALSE(acknowledged.acknowledged_at().empty());
  CHECK(raisedAlerts(api.get("/v1/operator/alerts", op1).as<v1::AlertList>()).empty());
  const auto again = api.post(ack, op1, "");
  REQUIRE(again.status == 200);
  CHECK(again.as<v1::KioskAlert>().acknowledged_at() == acknowledged.acknowledged_at());
  CHECK(api.query("SELECT a.login FROM kiosk_alerts k JOIN accounts a "
                  "ON a.id = k.resolved_by_account WHERE k.id = " +
                  alert.alert_id())[0][0]
            .as<std::string>() == "op1");
  const auto audit = api.query(
      "SELECT result, count(*) FROM audit_log WHERE action = 'alert.ack' "
      "GROUP BY result ORDER BY result");
  REQUIRE(audit.size() == 2);
  CHECK(audit[0][0].as<std::string>() == "ok");
  CHECK(audit[0][1].as<int>() == 2);
  CHECK(audit[1][0].as<std::string>() == "refused");
  CHECK(audit[1][1].as<int>() == 4);
}

TEST_CASE("a holder's card emptied from the bin is to restock, then takes the normal path") {
  OpsServer api;
  const auto now = std::chrono::system_clock::now();
  // Ada's card decided "store" but reported in the bin (no free slot), beside a difficult card.
  cloud::DepositDecision d;
  d.deposit_id = wire::newUuid();
  d.kiosk_id = "k1";
  d.store = true;
  d.card_id = api.adaCard();
  d.last4 = "5556";
  api.store().recordDecision(d, now);
  v1::Location bin;
  bin.mutable_bin();
  const auto in_bin = api.store().recordStored("k1", d.deposit_id, bin, now);
  REQUIRE(in_bin.ok);
  CHECK_FALSE(in_bin.notice_queued);
  const auto difficult = api.difficultInBin("k1");

  // op1 empties the bin at the box.
  api.store().setOperatorCode("op1", "1234567890", now);
  const auto request = wire::newUuid();
  REQUIRE(api.store().checkOperatorCode("k1", request, "1234567890", now).result ==
          v1::OPERATOR_AUTH_RESULT_OK);
  CHECK(api.store().recordBinEmptied("k1", request, {d.deposit_id, difficult}, now).collected == 2);
  CHECK(api.status(d.deposit_id) == "awaiting_restock");
  CHECK(api.status(difficult) == "collected");

  // The collection list tells op1 to put it in a slot; the difficult card is done with.
  const auto op1 = api.login("op1");
  auto list = api.get("/v1/operator/kiosks/k1/collection", op1).as<v1::CollectionList>();
  REQUIRE(list.items_size() == 1);
  CHECK(list.items(0).deposit_id() == d.deposit_id);
  CHECK(list.items(0).action() == "restock");
  CHECK(list.items(0).last4() == "5556");

  // Put in slot 4: a pickup code and a notice, as for a card stored there at once.
  v1::Location slot;
  slot.set_slot(4);
  CHECK(api.store().recordStored("k1", d.deposit_id, slot, now).notice_queued);
  CHECK(api.status(d.deposit_id) == "stored");
  CHECK(
      api.query("SELECT collected_at IS NULL FROM deposits WHERE id = '" + d.deposit_id + "'")[0][0]
          .as<bool>());
  const auto notice = api.store().waitingNotice(d.deposit_id);
  REQUIRE(notice.has_value());
  CHECK(notice->slot_number() == 5);
  CHECK(api.get("/v1/operator/kiosks/k1/collection", op1).as<v1::CollectionList>().items_size() ==
        0);
}

TEST_CASE("numbers typed to resolve difficult cards are limited per operator") {
  OpsServer api(3);
  const auto at_k1 = api.difficultInBin("k1");
  const auto at_k2 = api.difficultInBin("k2");
  const auto op1 = api.login("op1");
  const std::string nobody = std::string(R"({"number":")") + kNobodyNumber + "\"}";
  const std::string resolve_k1 = "/v1/operator/difficult/" + at_k1 + "/resolve";

  // Each answer says whether a number is enrolled: three, then 429 (even for a right number).
  for (int i = 0; i < 3; ++i) {
    CHECK(api.post(resolve_k1, op1, nobody).status == 422);
  }
  const auto throttled =
      api.post(resolve_k1, op1, std::string(R"({"number":")") + kAdaNumber + "\"}");
  CHECK(throttled.status == 429);
  CHECK_THAT(throttled.body, Catch::Contains("too_many_requests"));
  CHECK(api.status(at_k1) == "stored");
  // Returning a card to its issuer types no number: not limited.
  CHECK(api.post(resolve_k1, op1, R"({"return_to_issuer":true})").status == 200);
  // Another operator is not held back by op1's tries.
  CHECK(api.post("/v1/operator/difficult/" + at_k2 + "/resolve", api.login("op2"),
                 std::string(R"({"number":")") + kBobNumber + "\"}")
            .status == 200);
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action = 'difficult.resolve' "
                  "AND detail LIKE 'throttled%'")[0][0]
            .as<int>() == 1);
}
