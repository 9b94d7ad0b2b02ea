// Holders who sign up themselves (holder_contact.hpp), through real TLS sockets, a real
// PostgreSQL, the notice delivery worker and the real lostcard-webhook-sink standing for the
// holder's systems: the code that verifies the webhook is read from what the sink received.
// Notices to an unverified webhook are held, and go out once it is verified; wrong, replaced,
// expired and used codes are refused; a taken login, bad fields and the limits too; a holder
// sees and changes only their own contact.
#include <google/protobuf/struct.pb.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/holder_api.hpp"
#include "lostcard/cloud/holder_contact.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/api_server.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/https_client.hpp"
#include "lostcard/test/manual_clock.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/test/webhook_sink_process.hpp"
#include "lostcard/v1/api.pb.h"

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace lostcard;
using namespace std::chrono_literals;

namespace {

const auto kT0 = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z
constexpr const char* kPassword = "correct horse battery";

const std::string& pkiDir() { return test::testPki("holder_signup_pgtest_pki"); }

// The API with the holder's endpoints and sign-up on 127.0.0.1:<any> over TLS (injected clock),
// a kiosk, an issuer, a holder made by an admin ("ada", verified), the delivery worker (run a
// round at a time with deliver()) and a webhook sink.
class SignupApi {
 public:
  explicit SignupApi(cloud::HolderContactOptions contact_options = {})
      : sink_(test::makeTestDir("holder_signup_sink")),
        store_({.conninfo = db_.conninfo()}),
        accounts_({.conninfo = db_.conninfo()}),
        reader_({.conninfo = db_.conninfo()}),
        keys_({.conninfo = db_.conninfo()}),
        enrollment_({.conninfo = db_.conninfo()}, hasher_),
        holder_data_({.conninfo = db_.conninfo()}, store_, hasher_),
        streams_({.conninfo = db_.conninfo(), .listen_slice = 20ms}),
        contacts_(contactOptions(db_.conninfo(), std::move(contact_options))),
        holder_api_{holder_data_, streams_, &contacts_},
        router_(cloud::makeApiV1Router(
            accounts_, reader_, {keys_, enrollment_}, [this] { return now(); }, &holder_api_)),
        server_(router_, pkiDir()),
        delivery_(
            {.conninfo = db_.conninfo(), .initial_backoff = 1ms, .allow_internal_webhooks = true}) {
    store_.migrate();
    store_.upsertIssuer("northwind", "Northwind Bank");
    store_.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "24/7", 8});
    sink_.addSecret("ada", "ada-secret-0123456789");
    store_.upsertHolder("ada", "Ada", sink_.url("/holders/ada"), "ada-secret-0123456789");
    cloud::AccountSpec ada;
    ada.login = "ada";
    ada.holder_id = "ada";
    accounts_.upsertAccount(ada, kPassword, kT0);
    cloud::AccountSpec op;
    op.login = "op1";
    op.role = cloud::Role::kOperator;
    accounts_.upsertAccount(op, kPassword, kT0);
    server_.start();
  }

  std::chrono::system_clock::time_point now() const { return clock_.now(); }
  void advance(std::chrono::seconds by) { clock_.advance(by); }
  test::HttpsClient& client() { return client_; }
  test::WebhookSinkProcess& sink() { return sink_; }
  cloud::HolderContacts& contacts() { return contacts_; }

  // POST /v1/holder/signup with a JSON body.
  test::HttpsReply signUp(const std::string& login, const std::string& url,
                          const std::string& password = kPassword) {
    return client_.call(http::verb::post, "/v1/holder/signup", "",
                        R"({"login": ")" + login + R"(", "password": ")" + password +
                            R"(", "display_name": "Holder )" + login + R"(", "webhook_url": ")" +
                            url + R"("})");
  }

  // Signs up `login` with a webhook on the sink, which is then told the secret the answer
  // carries (under the login: the sink names a holder by its URL's last segment).
  v1::SignupResponse signUpAtSink(const std::string& login) {
    const auto reply = signUp(login, sink_.url("/holders/" + login));
    INFO(reply.body);
    REQUIRE(reply.status == 201);
    const auto made = reply.as<v1::SignupResponse>();
    sink_.addSecret(login, made.webhook_secret());
    return made;
  }

  int deliver() { return delivery_.deliverDue(); }

  // The codes the sink received at /holders/<name>, oldest first.
  std::vector<std::string> codesFor(const std::string& name) {
    std::vector<std::string> codes;
    for (const auto& line : test::readLines(sink_.outFile())) {
      google::protobuf::Struct parsed;
      REQUIRE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok());
      const auto& fields = parsed.fields();
      if (fields.at("holder_id").string_value() == name && fields.count("contact") != 0) {
        codes.push_back(fields.at("contact").struct_value().fields().at("code").string_value());
      }
    }
    return codes;
  }

  // How many notices the sink received at /holders/<name>.
  int noticesFor(const std::string& name) {
    int n = 0;
    for (const auto& line : test::readLines(sink_.outFile())) {
      if (line.find("\"holder_id\":\"" + name + "\",\"notice\"") != std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  // A card of `holder_id` stored in slot 0 of kiosk-1: its notice is queued.
  void storeCardOf(const std::string& holder_id, const std::string& number,
                   const std::string& deposit_id) {
    cloud::DepositDecision d;
    d.deposit_id = deposit_id;
    d.kiosk_id = "kiosk-1";
    d.store = true;
    d.card_id = store_.enrollCard(hasher_, "northwind", holder_id, number);
    d.last4 = number.substr(number.size() - 4);
    store_.recordDecision(d, now());
    v1::Location slot;
    slot.set_slot(0);
    REQUIRE(store_.recordStored("kiosk-1", deposit_id, slot, now()).ok);
  }

  pqxx::result query(const std::string& sql) { return db_.query(sql); }

 private:
  static cloud::HolderContactOptions contactOptions(const std::string& conninfo,
                                                    cloud::HolderContactOptions options) {
    options.conninfo = conninfo;
    options.code_hash_iterations = 1000;  // the tests make many codes
    return options;
  }

  test::PgTestDb db_;
  test::WebhookSinkProcess sink_;
  const cloud::CardHasher hasher_{"test-key", std::string(32, 'k')};
  cloud::Store store_;
  cloud::AccountStore accounts_;
  cloud::CardDataReader reader_;
  cloud::IssuerKeyStore keys_;
  cloud::CardEnrollment enrollment_;
  cloud::HolderData holder_data_;
  cloud::NoticeStreams streams_;
  cloud::HolderContacts contacts_;
  cloud::HolderApi holder_api_;
  test::ManualClock clock_{kT0};
  cloud::HttpRouter router_;
  test::ApiServer server_;
  cloud::NoticeDelivery delivery_;
  test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return server_.port(); }};
};

cloud::HolderContactOptions allowingHttp() {
  cloud::HolderContactOptions options;
  options.allow_http_webhooks = true;  // the sink speaks plain HTTP
  return options;
}

std::string codeBody(const std::string& code) { return R"({"code": ")" + code + R"("})"; }

}  // namespace

TEST_CASE("a holder signs up; notices wait until the webhook is verified with its code") {
  SignupApi api(allowingHttp());
  const auto made = api.signUpAtSink("grace");
  CHECK(made.login() == "grace");
  CHECK(made.webhook_secret().rfind("lcwh_", 0) == 0);
  CHECK_FALSE(made.contact().verified());
  CHECK_FALSE(made.contact().code_expires_at().empty());
  CHECK(made.contact().code_tries_left() == 5);
  const auto holder = made.holder_id();

  // The code goes to the webhook, signed with the secret the sign-up answered (the sink checks).
  api.deliver();
  const auto codes = api.codesFor("grace");
  REQUIRE(codes.size() == 1);
  CHECK(test::readFile(api.sink().logFile()).find("Code for Holder grace") != std::string::npos);

  // A card of hers is found: the notice is held (not sent, not given up), her inbox shows it.
  const auto token = api.client().login("grace", kPassword);
  api.storeCardOf(holder, "4000056655665556", "44444444-4444-4444-8444-444444444444");
  api.deliver();
  CHECK(api.noticesFor("grace") == 0);
  const auto held = api.query(
      "SELECT attempts, delivered_at IS NULL AND gave_up_at IS NULL "
      "FROM notice_outbox WHERE holder_id = '" +
      holder + "'");
  REQUIRE(held.size() == 1);
  CHECK(held[0][0].as<int>() == 0);
  CHECK(held[0][1].as<bool>());
  const auto inbox =
      api.client().call(http::verb::get, "/v1/holder/notices", token).as<v1::HolderNoticeList>();
  REQUIRE(inbox.notices_size() == 1);
  CHECK(inbox.notices(0).state() == "waiting");

  // A wrong code: refused, one try fewer.
  const std::string wrong = codes[0] == "000-000-0000" ? "111-111-1111" : "000-000-0000";
  auto reply =
      api.client().call(http::verb::post, "/v1/holder/contact/verify", token, codeBody(wrong));
  CHECK(reply.status == 400);
  CHECK(reply.error().reason().find("4 tries left") != std::string::npos);
  auto contact =
      api.client().call(http::verb::get, "/v1/holder/contact", token).as<v1::HolderContact>();
  CHECK_FALSE(contact.verified());
  CHECK(contact.code_tries_left() == 4);
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/contact/verify", token, codeBody("12"))
            .status == 400);

  // The right one: verified, and the held notice goes out.
  reply =
      api.client().call(http::verb::post, "/v1/holder/contact/verify", token, codeBody(codes[0]));
  INFO(reply.body);
  REQUIRE(reply.status == 200);
  CHECK(reply.as<v1::HolderContact>().verified());
  api.deliver();
  CHECK(api.noticesFor("grace") == 1);

  // The used code again: refused.
  reply =
      api.client().call(http::verb::post, "/v1/holder/contact/verify", token, codeBody(codes[0]));
  CHECK(reply.status == 409);

  // Audited as anonymous from the client's address; never the password, the secret or a code.
  const auto audit = api.query(
      "SELECT actor_role, actor_id, result FROM audit_log WHERE action = 'holder.signup'");
  REQUIRE(audit.size() == 1);
  CHECK(audit[0][0].as<std::string>() == "anonymous");
  CHECK(audit[0][1].as<std::string>() == "127.0.0.1");
  CHECK(audit[0][2].as<std::string>() == "ok");
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action LIKE 'contact.%'")[0][0].as<int>() >=
        4);
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE detail LIKE '%" + std::string(kPassword) +
                  "%' OR detail LIKE '%lcwh_%' OR detail ~ '[0-9]{3}-[0-9]{3}'")[0][0]
            .as<int>() == 0);
  // The code is kept only hashed, its message only sealed and wiped once sent.
  CHECK(api.query("SELECT count(*) FROM contact_outbox WHERE payload_sealed IS NOT NULL")[0][0]
            .as<int>() == 0);
  CHECK(api.query("SELECT code_hash LIKE 'pbkdf2-sha256$%' FROM contact_codes")[0][0].as<bool>());
}

TEST_CASE("replaced, expired and used codes are refused; resend and a new webhook") {
  SignupApi api(allowingHttp());
  const auto holder = api.signUpAtSink("hopper").holder_id();
  const auto codesNow = [&] { return api.codesFor("hopper"); };
  const auto token = api.client().login("hopper", kPassword);
  api.deliver();

  // Another code: the first no longer works.
  auto reply = api.client().call(http::verb::post, "/v1/holder/contact/resend", token);
  INFO(reply.body);
  REQUIRE(reply.status == 202);
  api.deliver();
  auto codes = codesNow();
  REQUIRE(codes.size() == 2);
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/contact/verify", token, codeBody(codes[0]))
            .status == 400);

  // Past its expiry (30 minutes): gone.
  api.advance(31min);
  const auto later = api.client().login("hopper", kPassword);
  reply =
      api.client().call(http::verb::post, "/v1/holder/contact/verify", later, codeBody(codes[1]));
  CHECK(reply.status == 410);
  CHECK(reply.error().error() == "gone");

  // A fresh one works once.
  REQUIRE(api.client().call(http::verb::post, "/v1/holder/contact/resend", later).status == 202);
  api.deliver();
  codes = codesNow();
  REQUIRE(codes.size() == 3);
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/contact/verify", later, codeBody(codes[2]))
            .status == 200);
  CHECK(api.client().call(http::verb::post, "/v1/holder/contact/resend", later).status == 409);

  // A new webhook: unverified again, with a code of its own (sent to the new URL); the old
  // code, used, does not verify it.
  const auto url = api.sink().url("/holders/hopper?v=2");
  reply = api.client().call(http::verb::put, "/v1/holder/contact", later,
                            R"({"webhook_url": ")" + url + R"("})");
  INFO(reply.body);
  REQUIRE(reply.status == 202);
  CHECK_FALSE(reply.as<v1::HolderContact>().verified());
  CHECK(reply.as<v1::HolderContact>().webhook_url() == url);
  api.deliver();
  codes = codesNow();
  REQUIRE(codes.size() == 4);
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/contact/verify", later, codeBody(codes[2]))
            .status == 400);
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/contact/verify", later, codeBody(codes[3]))
            .status == 200);
  CHECK(api.client()
            .call(http::verb::put, "/v1/holder/contact", later,
                  R"({"webhook_url": "ftp://example.org/x"})")
            .status == 422);

  // Codes per hour: four sent in the last hour, a fifth may go, the sixth is refused.
  api.query("UPDATE holders SET contact_verified_at = NULL WHERE id = '" + holder + "'");
  REQUIRE(api.client().call(http::verb::post, "/v1/holder/contact/resend", later).status == 202);
  reply = api.client().call(http::verb::post, "/v1/holder/contact/resend", later);
  CHECK(reply.status == 429);
  CHECK(reply.retry_after == "3600");
}

TEST_CASE("sign-up refusals: a taken login, bad fields, an http webhook, the limits") {
  cloud::HolderContactOptions options;
  options.signups_per_ip_per_hour = 6;
  options.signups_per_hour = 3;
  SignupApi api(options);
  const std::string https = "https://app.example/hooks/1";

  // A taken login (an admin's holder): 409, nothing made.
  auto reply = api.signUp("ada", https);
  CHECK(reply.status == 409);
  CHECK(reply.error().error() == "conflict");
  CHECK(api.query("SELECT count(*) FROM holders")[0][0].as<int>() == 1);
  // Missing fields 400; fields that break their rules 422, with the rule.
  CHECK(api.client()
            .call(http::verb::post, "/v1/holder/signup", "", R"({"login": "x1y2z3"})")
            .status == 400);
  reply = api.signUp("Not A Login", https);
  CHECK(reply.status == 422);
  CHECK(reply.error().reason().find("login") != std::string::npos);
  reply = api.signUp("shorty", https, "short");
  CHECK(reply.status == 422);
  CHECK(reply.error().reason().find("12 characters") != std::string::npos);
  reply = api.signUp("plain", "http://app.example/hooks/1");
  CHECK(reply.status == 422);
  CHECK(reply.error().reason().find("https") != std::string::npos);
  CHECK(api.query("SELECT count(*) FROM holders")[0][0].as<int>() == 1);
  CHECK(api.query("SELECT count(*) FROM accounts")[0][0].as<int>() == 2);

  // Per address: six tries an hour, refused ones included; the seventh is 429.
  CHECK(api.signUp("first", https).status == 201);
  reply = api.signUp("second", https);
  CHECK(reply.status == 429);
  CHECK(reply.retry_after == "3600");
  CHECK(reply.error().reason().find("your address") != std::string::npos);

  // Overall: three made an hour, from any address (asked without HTTP, from other addresses).
  v1::SignupRequest request;
  request.set_password(kPassword);
  request.set_display_name("Someone");
  request.set_webhook_url(https);
  for (const auto* login : {"other1", "other2"}) {
    request.set_login(login);
    CHECK(api.contacts()
              .signUp(request, std::string("10.0.0.") + login[5] + ":4000", api.now())
              .access.allowed);
  }
  request.set_login("other3");
  const auto over = api.contacts().signUp(request, "10.0.0.9:4000", api.now());
  CHECK(over.access.status == 429);
  CHECK(over.access.reason.find("too many sign-ups in the last hour") != std::string::npos);
  // An hour later there is room again.
  api.advance(3601s);
  CHECK(api.contacts().signUp(request, "10.0.0.9:4000", api.now()).access.allowed);
  CHECK(api.query("SELECT count(*) FROM audit_log WHERE action = 'holder.signup' "
                  "AND result = 'throttled'")[0][0]
            .as<int>() == 2);
}

TEST_CASE("a holder reads and changes only their own contact") {
  SignupApi api(allowingHttp());
  api.signUpAtSink("lovelace");
  const auto theirs = api.client().login("lovelace", kPassword);
  const auto ada = api.client().login("ada", kPassword);

  // Ada (made by an admin) is verified; each sees their own URL only.
  const auto own =
      api.client().call(http::verb::get, "/v1/holder/contact", ada).as<v1::HolderContact>();
  CHECK(own.verified());
  CHECK(own.webhook_url() == api.sink().url("/holders/ada"));
  const auto other =
      api.client().call(http::verb::get, "/v1/holder/contact", theirs).as<v1::HolderContact>();
  CHECK(other.webhook_url() == api.sink().url("/holders/lovelace"));
  CHECK(api.client().call(http::verb::get, "/v1/holder/contact", theirs).body.find("lcwh_") ==
        std::string::npos);

  // Their change touches their row alone (there is no way to name another holder's).
  const auto url = api.sink().url("/holders/lovelace?new=1");
  REQUIRE(api.client()
              .call(http::verb::put, "/v1/holder/contact", theirs,
                    R"({"webhook_url": ")" + url + R"("})")
              .status == 202);
  CHECK(api.query("SELECT webhook_url FROM holders WHERE id = 'ada'")[0][0].as<std::string>() ==
        api.sink().url("/holders/ada"));
  CHECK(api.query("SELECT contact_verified_at IS NOT NULL FROM holders WHERE id = 'ada'")[0][0]
            .as<bool>());

  // Not a holder, or no token: refused.
  const auto op = api.client().login("op1", kPassword);
  CHECK(api.client().call(http::verb::get, "/v1/holder/contact", op).status == 403);
  CHECK(api.client()
            .call(http::verb::put, "/v1/holder/contact", op, R"({"webhook_url": ")" + url + R"("})")
            .status == 403);
  CHECK(api.client().call(http::verb::post, "/v1/holder/contact/resend", op).status == 403);
  CHECK(api.client().call(http::verb::get, "/v1/holder/contact").status == 401);
  CHECK(
      api.client().call(http::verb::post, "/v1/holder/contact/verify", "", codeBody("1")).status ==
      401);
}
