// Issuers through the real HTTPS API with a real PostgreSQL behind it: API keys (made, used,
// confined to their issuer, revoked, with lostcard-admin too) and bulk enrollment streamed in
// CSV and NDJSON: the exact report, idempotent re-imports, the route's body limit, a large
// import, and no card number anywhere but as its keyed hash.
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
#include "lostcard/cloud/luhn.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/api_server.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/https_client.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/v1/api.pb.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace lostcard;
using namespace std::chrono_literals;

namespace {

constexpr const char* kBobNumber = "5200828282828210";  // contoso's card, enrolled to bob
constexpr std::uint64_t kMaxImport = 4 * 1024 * 1024;

const std::string& pkiDir() { return test::testPki("issuer_api_pgtest_pki"); }

using Reply = test::HttpsReply;

// A 16-digit Visa-like number that passes Luhn, made from n.
std::string luhnNumber(std::uint64_t n) {
  std::string payload = std::to_string(n);
  payload = "4" + std::string(14 - payload.size(), '0') + payload;
  return payload + *cloud::luhnCheckDigit(payload);
}

// Two issuers, three holders, contoso's card enrolled to bob, an API key per issuer, and the API
// on 127.0.0.1:<any> over TLS (bulk enrollment bodies up to kMaxImport, others up to 4 KiB).
class IssuerApiServer {
 public:
  IssuerApiServer()
      : store_({.conninfo = db_.conninfo()}),
        accounts_({.conninfo = db_.conninfo()}),
        reader_({.conninfo = db_.conninfo()}),
        keys_({.conninfo = db_.conninfo()}),
        enrollment_({.conninfo = db_.conninfo(), .batch_rows = 1000}, hasher_),
        router_(cloud::makeApiV1Router(
            accounts_, reader_, {keys_, enrollment_, cloud::defaultCardFormats(), kMaxImport, 1})),
        server_(router_, pkiDir(), serverOptions()) {
    store_.migrate();
    store_.upsertIssuer("northwind", "Northwind Bank");
    store_.upsertIssuer("contoso", "Contoso Transit");
    store_.upsertHolder("ada", "Ada", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    store_.upsertHolder("bob", "Bob", "http://127.0.0.1:9/bob", "bob-secret-0123456789");
    store_.upsertHolder("carl", "Carl", "http://127.0.0.1:9/carl", "carl-secret-0123456789");
    store_.enrollCard(hasher_, "contoso", "bob", kBobNumber);
    northwind_ = keys_.createKey("northwind", std::chrono::system_clock::now());
    contoso_ = keys_.createKey("contoso", std::chrono::system_clock::now());
    server_.start();
  }

  const cloud::NewIssuerKey& northwind() const { return northwind_; }
  const cloud::NewIssuerKey& contoso() const { return contoso_; }
  cloud::IssuerKeyStore& keys() { return keys_; }
  const std::string& conninfo() const { return db_.conninfo(); }

  Reply call(http::verb method, const std::string& target, const std::string& token,
             const std::string& body = "", const std::string& content_type = "text/csv") {
    return client_.call(method, target, token, body, content_type);
  }

  Reply enroll(const std::string& key, const std::string& body,
               const std::string& content_type = "text/csv", const std::string& query = "") {
    return call(http::verb::post, "/v1/issuer/enrollments" + query, key, body, content_type);
  }

  // Raw bytes over TLS, then the answer.
  Reply raw(const std::string& bytes) { return client_.raw(bytes); }

  // An upload begun and left open, with "Expect: 100-continue": the server answers "100
  // Continue" only once the route's handler runs and asks for the body, so when beginUpload()
  // returns, the import is under way (it waits for its body). finishUpload() sends the body and
  // reads the answer.
  struct Upload {
    asio::io_context io;
    std::unique_ptr<test::HttpsClient::Stream> stream;
    beast::flat_buffer buffer;
  };
  std::unique_ptr<Upload> beginUpload(const std::string& key) {
    auto upload = std::make_unique<Upload>();
    upload->stream = client_.connect(upload->io);
    asio::write(*upload->stream,
                asio::buffer("POST /v1/issuer/enrollments HTTP/1.1\r\nHost: localhost\r\n"
                             "Authorization: Bearer " +
                             key +
                             "\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n"
                             "Expect: 100-continue\r\n\r\n"));
    http::response<http::empty_body> interim;
    http::read(*upload->stream, upload->buffer, interim);
    REQUIRE(interim.result() == http::status::continue_);
    return upload;
  }
  Reply finishUpload(Upload& upload) {
    asio::write(*upload.stream, asio::buffer(std::string("11\r\nholder_id,number\n\r\n0\r\n\r\n")));
    return test::HttpsClient::read(*upload.stream, upload.buffer);
  }

  cloud::AccountStore& accounts() { return accounts_; }

  pqxx::result query(const std::string& sql) { return db_.query(sql); }
  // "holder:last4" of the issuer's cards, sorted.
  std::vector<std::string> cardsOf(const std::string& issuer) {
    std::vector<std::string> out;
    for (const auto& r : query("SELECT holder_id || ':' || last4 FROM cards WHERE issuer_id = '" +
                               issuer + "' ORDER BY 1")) {
      out.push_back(r[0].as<std::string>());
    }
    return out;
  }

 private:
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
  cloud::HttpRouter router_;
  test::ApiServer server_;
  cloud::NewIssuerKey northwind_, contoso_;
  // A 60 s deadline: the large imports take a while.
  test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return server_.port(); }, 60s};
};

// "line code last4" per listed rejection.
std::vector<std::string> rejections(const v1::EnrollmentReport& report) {
  std::vector<std::string> out;
  for (const auto& r : report.rejections()) {
    out.push_back(std::to_string(r.line()) + " " + r.code() + " " +
                  (r.last4().empty() ? "-" : r.last4()));
  }
  return out;
}

std::string counts(const v1::EnrollmentReport& report) {
  return "rows=" + std::to_string(report.rows()) +
         " enrolled=" + std::to_string(report.enrolled()) +
         " unchanged=" + std::to_string(report.unchanged()) +
         " rejected=" + std::to_string(report.rejected());
}

const std::string kCsv =
    "holder_id,number\n"         // 1
    "ada,4000 0566 5566 5556\n"  // 2 enrolled
    "carl,4111111111111111\n"    // 3 enrolled
    "zed,5555555555554444\n"     // 4 no such holder
    "bob,5200828282828210\n"     // 5 contoso's card
    "ada,4111111111111112\n"     // 6 Luhn fails
    "ada,4111111111111111\n"     // 7 carl's card (line 3): never moved to ada
    "carl,4111111111111111\n"    // 8 the same card and holder again
    "not a row\n";               // 9 one field

const std::vector<std::string> kCsvRejections = {
    "4 unknown_holder 4444", "5 enrolled_by_another_issuer 8210", "6 check_digit 1112",
    "7 enrolled_to_another_holder 1111", "9 malformed_row -"};

}  // namespace

TEST_CASE("a CSV import enrolls the good rows and reports each bad one by line, never the number") {
  IssuerApiServer api;
  const auto reply = api.enroll(api.northwind().key, kCsv);
  INFO(reply.body);
  REQUIRE(reply.status == 200);
  const auto report = reply.as<v1::EnrollmentReport>();
  CHECK(report.issuer_id() == "northwind");
  CHECK(counts(report) == "rows=8 enrolled=2 unchanged=1 rejected=5");
  CHECK(rejections(report) == kCsvRejections);
  CHECK_FALSE(report.rejections_truncated());
  CHECK(api.cardsOf("northwind") == std::vector<std::string>{"ada:5556", "carl:1111"});
  CHECK(api.cardsOf("contoso") == std::vector<std::string>{"bob:8210"});
  for (const char* number : {"4000056655665556", "4111111111111111", "5555555555554444",
                             "5200828282828210", "4111111111111112"}) {
    CHECK(reply.body.find(number) == std::string::npos);
    CHECK(reply.body.find(std::string(number).substr(0, 8)) == std::string::npos);
  }
  // Audited once, by the key, with the counts; no number in the audit log.
  const auto audit = api.query(
      "SELECT actor_role, actor_id, object_ids[1], result, detail FROM audit_log "
      "WHERE action = 'cards.enroll'");
  REQUIRE(audit.size() == 1);
  CHECK(audit[0][0].as<std::string>() == "issuer_staff");
  CHECK(audit[0][1].as<std::string>() == "key:" + api.northwind().key_id);
  CHECK(audit[0][2].as<std::string>() == "northwind");
  CHECK(audit[0][3].as<std::string>() == "ok");
  CHECK(audit[0][4].as<std::string>() == "rows 8, enrolled 2, unchanged 1, rejected 5");
}

TEST_CASE("re-sending the same file changes nothing and reports the rows as unchanged") {
  IssuerApiServer api;
  REQUIRE(api.enroll(api.northwind().key, kCsv).status == 200);
  const auto cards_before = api.query("SELECT id, holder_id, enrolled_at FROM cards ORDER BY id");
  const auto again = api.enroll(api.northwind().key, kCsv);
  REQUIRE(again.status == 200);
  const auto report = again.as<v1::EnrollmentReport>();
  CHECK(counts(report) == "rows=8 enrolled=0 unchanged=3 rejected=5");
  CHECK(rejections(report) == kCsvRejections);
  const auto cards_after = api.query("SELECT id, holder_id, enrolled_at FROM cards ORDER BY id");
  REQUIRE(cards_after.size() == cards_before.size());
  for (std::size_t i = 0; i < cards_after.size(); ++i) {
    CHECK(cards_after[i][0].as<std::string>() == cards_before[i][0].as<std::string>());
    CHECK(cards_after[i][1].as<std::string>() == cards_before[i][1].as<std::string>());
    CHECK(cards_after[i][2].as<std::string>() == cards_before[i][2].as<std::string>());
  }
}

TEST_CASE("an NDJSON import: one object per line, the same rules") {
  IssuerApiServer api;
  const std::string body = R"({"holder_id": "ada", "number": "4000056655665556"})"
                           "\n"
                           R"({"holder_id": "bob", "number": 5200828282828210})"
                           "\n"
                           "\n"
                           R"({"holder_id": "bob", "number": "5200828282828210"})"
                           "\n"
                           R"({"holder_id": "carl", "number": "41111111"})"
                           "\n"
                           R"({"holder_id": "carl", "number": "4111111111111111", "note": "x"})"
                           "\n"
                           R"({"holder_id": "carl", "number": "4111 1111 1111 1111"})";
  const auto reply = api.enroll(api.northwind().key, body, "application/x-ndjson");
  INFO(reply.body);
  REQUIRE(reply.status == 200);
  const auto report = reply.as<v1::EnrollmentReport>();
  CHECK(counts(report) == "rows=6 enrolled=2 unchanged=0 rejected=4");
  CHECK(rejections(report) == std::vector<std::string>{"2 malformed_row -",
                                                       "4 enrolled_by_another_issuer 8210",
                                                       "5 wrong_length 1111", "6 malformed_row -"});
  CHECK(api.cardsOf("northwind") == std::vector<std::string>{"ada:5556", "carl:1111"});
  CHECK(reply.body.find("5200828282828210") == std::string::npos);
}

TEST_CASE("an issuer key enrolls and reads only its own issuer's cards") {
  IssuerApiServer api;
  const auto& key = api.northwind().key;
  const auto me = api.call(http::verb::get, "/v1/me", key);
  REQUIRE(me.status == 200);
  const auto who = me.as<v1::Me>();
  CHECK(who.role() == "issuer_staff");
  CHECK(who.issuer_id() == "northwind");
  CHECK(who.api_key_id() == api.northwind().key_id);
  CHECK(who.token_expires_at().empty());

  // Into another issuer: refused before a byte of the body is used.
  const auto other = api.enroll(key, kCsv, "text/csv", "?issuer_id=contoso");
  CHECK(other.status == 403);
  CHECK(api.cardsOf("contoso") == std::vector<std::string>{"bob:8210"});
  CHECK(api.call(http::verb::get, "/v1/issuer/cards?issuer_id=contoso", key).status == 403);
  // Its own cards, and only those.
  REQUIRE(api.enroll(key, kCsv).status == 200);
  const auto own = api.call(http::verb::get, "/v1/issuer/cards", key);
  REQUIRE(own.status == 200);
  CHECK(own.as<v1::IssuerCardList>().cards_size() == 2);
  const auto theirs = api.call(http::verb::get, "/v1/issuer/cards", api.contoso().key);
  REQUIRE(theirs.status == 200);
  const auto list = theirs.as<v1::IssuerCardList>();
  REQUIRE(list.cards_size() == 1);
  CHECK(list.cards(0).holder_id() == "bob");
  // A key of the right shape but a wrong secret, and no key at all.
  std::string forged = key;
  forged.back() = forged.back() == '0' ? '1' : '0';
  CHECK(api.call(http::verb::get, "/v1/me", forged).status == 401);
  CHECK(api.enroll("", kCsv).status == 401);
}

TEST_CASE("a revoked key is refused at once; lostcard-admin makes and revokes keys") {
  IssuerApiServer api;
  const std::string admin = test::binDir() + "/lostcard-admin";
  const auto printed =
      test::runProgram({admin, "--db", api.conninfo(), "add-issuer-key", "northwind"});
  REQUIRE(printed.size() > 1);
  const std::string key = printed.substr(0, printed.find('\n'));
  REQUIRE(cloud::IssuerKeyStore::looksLikeKey(key));
  const std::string key_id = key.substr(4, 16);
  CHECK(api.call(http::verb::get, "/v1/me", key).status == 200);
  // Only the hash is kept.
  CHECK(api.query("SELECT 1 FROM issuer_api_keys WHERE key_sha256::text LIKE '%" + key.substr(21) +
                  "%'")
            .empty());
  const auto listed = test::runProgram({admin, "--db", api.conninfo(), "issuer-keys"});
  CHECK(listed.find(key_id + "\tnorthwind\t") != std::string::npos);
  CHECK(listed.find(key.substr(21)) == std::string::npos);

  test::runProgram({admin, "--db", api.conninfo(), "revoke-issuer-key", key_id});
  CHECK(api.call(http::verb::get, "/v1/me", key).status == 401);
  CHECK(api.enroll(key, kCsv).status == 401);
  CHECK(api.cardsOf("northwind").empty());
  // The other keys still work; revoking twice fails.
  CHECK(api.call(http::verb::get, "/v1/me", api.northwind().key).status == 200);
  CHECK_THROWS(test::runProgram({admin, "--db", api.conninfo(), "revoke-issuer-key", key_id}));
  CHECK(api.keys().revokeKey(api.northwind().key_id, std::chrono::system_clock::now()));
  CHECK(api.call(http::verb::get, "/v1/me", api.northwind().key).status == 401);
}

TEST_CASE("an enrollment body over the route's limit gets 413, declared or chunked") {
  IssuerApiServer api;
  // Declared: refused from the header, before any row is read.
  const auto declared =
      api.raw("POST /v1/issuer/enrollments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
              api.northwind().key + "\r\nContent-Type: text/csv\r\nContent-Length: " +
              std::to_string(kMaxImport + 1) + "\r\n\r\nholder_id,number\n");
  CHECK(declared.status == 413);
  // Chunked: refused once the limit is passed, mid-body. (Rows of one field: all refused.)
  std::string request =
      "POST /v1/issuer/enrollments HTTP/1.1\r\nHost: localhost\r\n"
      "Authorization: Bearer " +
      api.northwind().key +
      "\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
      "11\r\nholder_id,number\n\r\n";
  std::string chunk;
  while (chunk.size() < 60 * 1024) {
    chunk += "x\n";
  }
  std::size_t sent = 0;
  while (sent <= kMaxImport + 64 * 1024) {
    char size[16];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    request += size + chunk + "\r\n";
    sent += chunk.size();
  }
  request += "0\r\n\r\n";
  const auto chunked = api.raw(request);
  INFO(chunked.body);
  CHECK(chunked.status == 413);
  CHECK(chunked.body.find("larger than 4194304 bytes") != std::string::npos);
  // The server goes on; the ordinary limit of other routes is unchanged.
  CHECK(api.call(http::verb::get, "/v1/me", api.northwind().key).status == 200);
  CHECK(api.call(http::verb::get, "/v1/me", api.northwind().key, std::string(5000, ' '),
                 "application/json")
            .status == 413);
}

TEST_CASE("a malformed header, a wrong content type and a holder's token are refused whole") {
  IssuerApiServer api;
  const auto header = api.enroll(api.northwind().key, "holder,card\nada,4000056655665556\n");
  CHECK(header.status == 400);
  CHECK(header.body.find("unknown column 'holder'") != std::string::npos);
  CHECK(header.body.find("5556") == std::string::npos);
  CHECK(api.enroll(api.northwind().key, kCsv, "application/json").status == 415);

  cloud::AccountSpec ada;
  ada.login = "ada";
  ada.role = cloud::Role::kHolder;
  ada.holder_id = "ada";
  api.accounts().upsertAccount(ada, "ada-password", std::chrono::system_clock::now());
  const auto login =
      api.call(http::verb::post, "/v1/auth/login", "",
               R"({"login": "ada", "password": "ada-password"})", "application/json");
  REQUIRE(login.status == 200);
  const auto token = login.as<v1::LoginResponse>().token();
  CHECK(api.enroll(token, kCsv, "text/csv", "?issuer_id=northwind").status == 403);
  CHECK(api.cardsOf("northwind").empty());
  std::vector<std::string> audited;
  for (const auto& r : api.query("SELECT actor_role || ' ' || result FROM audit_log "
                                 "WHERE action = 'cards.enroll' ORDER BY id")) {
    audited.push_back(r[0].as<std::string>());
  }
  CHECK(audited == std::vector<std::string>{"issuer_staff refused", "holder refused"});
}

TEST_CASE("one import runs at a time: another one meanwhile gets 429 with Retry-After") {
  IssuerApiServer api;
  const auto first = api.beginUpload(api.northwind().key);  // its import is running
  const auto second = api.enroll(api.contoso().key, "holder_id,number\nbob,5200828282828210\n");
  CHECK(second.status == 429);
  CHECK(second.retry_after == "5");
  const auto done = api.finishUpload(*first);
  REQUIRE(done.status == 200);
  CHECK(done.as<v1::EnrollmentReport>().rows() == 0);
  // Once it is done, the next one runs.
  CHECK(api.enroll(api.contoso().key, "holder_id,number\nbob,5200828282828210\n").status == 200);
}

TEST_CASE("a large import (100,000 rows) streams through in batches") {
  IssuerApiServer api;
  const std::size_t kRows = 100'000;
  const char* holders[] = {"ada", "bob", "carl"};
  std::string body = "holder_id,number\n";
  for (std::size_t i = 0; i < kRows; ++i) {
    body += std::string(holders[i % 3]) + "," + luhnNumber(1'000'000 + i) + "\n";
  }
  REQUIRE(body.size() < kMaxImport);
  const auto reply = api.enroll(api.northwind().key, body);
  INFO(reply.body.substr(0, 500));
  REQUIRE(reply.status == 200);
  const auto report = reply.as<v1::EnrollmentReport>();
  CHECK(counts(report) == "rows=100000 enrolled=100000 unchanged=0 rejected=0");
  CHECK(api.query("SELECT count(*) FROM cards WHERE issuer_id = 'northwind'")[0][0].as<int>() ==
        100'000);
  const auto audit = api.query("SELECT detail FROM audit_log WHERE action = 'cards.enroll'");
  REQUIRE(audit.size() == 1);
  CHECK(audit[0][0].as<std::string>() == "rows 100,000, enrolled 100,000, unchanged 0, rejected 0");
}
