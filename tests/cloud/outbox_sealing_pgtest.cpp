// The notice outbox never holds a pickup code in clear (issue 5, item 3): Store seals each notice
// with the notice key (AES-256-GCM, delivery.hpp), NoticeDelivery opens it to send it to the
// holder's webhook (a real lostcard-webhook-sink) and wipes it once sent. Against a real
// PostgreSQL (ctest fixture "pg").
#include <spdlog/sinks/ostream_sink.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>

#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
using lostcard::test::eventually;
using lostcard::test::readFile;

namespace {

constexpr const char* kAdaSecret = "ada-webhook-secret-0123456789";
constexpr const char* kMallorySecret = "mallory-webhook-secret-012345";

StoreOptions storeOptions(const std::string& conninfo, const ImageVault* vault) {
  StoreOptions o;
  o.conninfo = conninfo;
  o.pool_size = 2;
  o.notice_vault = vault;
  return o;
}

ImageVault vaultOf(const std::string& id, char fill) {
  return ImageVault({{id, std::string(ImageVault::kKeyBytes, fill)}});
}

// lostcard-webhook-sink, the holders' phones: what it received is in notices.jsonl, every
// request it got (even refused ones) in raw.tsv.
class Sink {
 public:
  explicit Sink(const std::string& name)
      : dir_(lostcard::test::makeTestDir(name)), process_(start(dir_), dir_ + "/sink.log") {
    std::smatch match;
    const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
    std::string log;
    REQUIRE(eventually(
        [&] {
          log = readFile(dir_ + "/sink.log");
          return std::regex_search(log, match, listening);
        },
        30s));
    base_ = "http://127.0.0.1:" + match[1].str();
  }
  ~Sink() { process_.terminate(); }

  std::string url(const std::string& holder) const { return base_ + "/holders/" + holder; }
  std::vector<std::string> notices() const {
    return lostcard::test::readLines(dir_ + "/notices.jsonl");
  }
  std::vector<std::string> requests() const { return lostcard::test::readLines(dir_ + "/raw.tsv"); }

 private:
  static std::vector<std::string> start(const std::string& dir) {
    std::ofstream(dir + "/secrets.tsv")
        << "ada\t" << kAdaSecret << "\nmallory\t" << kMallorySecret << "\n";
    return {lostcard::test::binDir() + "/lostcard-webhook-sink",
            "--listen",
            "127.0.0.1:0",
            "--secrets",
            dir + "/secrets.tsv",
            "--out",
            dir + "/notices.jsonl",
            "--raw-log",
            dir + "/raw.tsv"};
  }

  std::string dir_;
  lostcard::test::ChildProcess process_;
  std::string base_;
};

// The lines the "cloud.delivery" logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    logger_->sinks().push_back(sink_);
  }
  ~CapturedLog() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() {
    logger_->flush();
    return out_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> logger_ = lostcard::wire::componentLogger("cloud.delivery");
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// A registry whose Store seals notices with `vault`; Ada's card enrolled, her webhook `url`.
struct Fixture {
  Fixture(const ImageVault& vault, const std::string& ada_url)
      : store(storeOptions(db.conninfo(), &vault)) {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", ada_url, kAdaSecret);
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.378177, 8.540192,
                       "Mo-Su 05:00-24:00", 24});
    const CardHasher hasher("test-key", std::string(32, 'k'));
    card_id = store.enrollCard(hasher, "northwind", "ada", "4000056655665556");
  }

  // Ada's card stored in `slot`, its notice queued (sealed): the deposit id.
  std::string queueNotice(std::uint32_t slot) {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = "kiosk-1";
    d.store = true;
    d.card_id = card_id;
    d.last4 = "5556";
    const auto now = std::chrono::system_clock::now();
    store.recordDecision(d, now);
    lostcard::v1::Location location;
    location.set_slot(slot);
    REQUIRE(store.recordStored("kiosk-1", d.deposit_id, location, now).notice_queued);
    return d.deposit_id;
  }

  pqxx::row query1(const std::string& sql, const std::string& deposit_id) {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    auto row = tx.exec_params1(sql, deposit_id);
    tx.commit();
    return row;
  }
  void exec(const std::string& sql, const std::string& deposit_id) {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    tx.exec_params(sql, deposit_id);
    tx.commit();
  }

  // Every byte the deposit's outbox rows hold: each whole row as PostgreSQL prints it, and each
  // column's raw bytes (bytea decoded, not hex).
  std::string outboxBytes(const std::string& deposit_id) {
    pqxx::connection c(db.conninfo());
    pqxx::read_transaction tx(c);
    std::string all;
    for (const auto& r : tx.exec_params(
             "SELECT o::text, convert_to(o::text, 'UTF8'), payload::text, payload_key_id, "
             "       payload_nonce, payload_sealed, last_error "
             "FROM notice_outbox o WHERE deposit_id = $1::uuid",
             deposit_id)) {
      all += r[0].as<std::string>() + '\n';
      all += pqxx::binarystring(r[1]).str() + '\n';
      for (int i : {2, 3, 6}) {
        all += r[i].is_null() ? std::string() : r[i].as<std::string>() + '\n';
      }
      for (int i : {4, 5}) {
        all += r[i].is_null() ? std::string() : pqxx::binarystring(r[i]).str() + '\n';
      }
    }
    return all;
  }

  // delivered, gave up, attempts, payload all wiped, payload sealed, last_error
  pqxx::row outbox(const std::string& deposit_id) {
    return query1(
        "SELECT delivered_at IS NOT NULL, gave_up_at IS NOT NULL, attempts, "
        "       payload IS NULL AND payload_key_id IS NULL AND payload_nonce IS NULL "
        "         AND payload_sealed IS NULL, "
        "       payload_sealed IS NOT NULL, coalesce(last_error, '') "
        "FROM notice_outbox WHERE deposit_id = $1::uuid",
        deposit_id);
  }

  lostcard::test::PgTestDb db;
  Store store;
  std::int64_t card_id = 0;
};

// The pickup code in a notice the sink recorded ("" when none).
std::string codeIn(const std::string& line) {
  std::smatch match;
  static const std::regex code("\"pickupCode\":\"([0-9-]+)\"");
  return std::regex_search(line, match, code) ? match[1].str() : std::string();
}

}  // namespace

TEST_CASE(
    "a waiting notice is sealed: its code is nowhere in the outbox row, then sent and "
    "wiped") {
  Sink sink("outbox_sealed");
  const auto vault = vaultOf("notice-1", 'n');
  Fixture f(vault, sink.url("ada"));
  const std::string deposit = f.queueNotice(4);

  // The code the holder will get: the one whose slow hash the deposit keeps.
  const auto waiting = f.store.waitingNotice(deposit);
  REQUIRE(waiting.has_value());
  const std::string code = waiting->pickup_code();
  REQUIRE(normalizePickupCode(code).size() == 10);
  CHECK(verifyCode(
      code, f.query1("SELECT code_hash FROM pickup_codes WHERE deposit_id = $1::uuid", deposit)[0]
                .as<std::string>()));

  // Neither the code (as shown or as typed) nor the rest of the notice is in the row's bytes.
  const std::string bytes = f.outboxBytes(deposit);
  REQUIRE(bytes.size() > 100);
  CHECK(bytes.find(code) == std::string::npos);
  CHECK(bytes.find(normalizePickupCode(code)) == std::string::npos);
  CHECK(bytes.find("Ada Lovelace") == std::string::npos);
  CHECK(bytes.find("Station Square") == std::string::npos);
  const auto sealed = f.query1(
      "SELECT payload IS NULL, payload_key_id, octet_length(payload_nonce), "
      "       octet_length(payload_sealed) FROM notice_outbox WHERE deposit_id = $1::uuid",
      deposit);
  CHECK(sealed[0].as<bool>());
  CHECK(sealed[1].as<std::string>() == "notice-1");  // the key's id, for rotation
  CHECK(sealed[2].as<int>() == 12);
  CHECK(sealed[3].as<int>() > 100);

  NoticeDelivery delivery(
      {.conninfo = f.db.conninfo(), .notice_vault = &vault, .allow_internal_webhooks = true});
  delivery.start();
  REQUIRE(eventually([&] { return f.outbox(deposit)[0].as<bool>(); }, 30s));
  delivery.stop();

  // Ada got the right code.
  const auto notices = sink.notices();
  REQUIRE(notices.size() == 1);
  CHECK(codeIn(notices[0]) == code);
  CHECK_THAT(notices[0], Catch::Contains("\"depositId\":\"" + deposit + "\""));

  // Sent: the payload is wiped, the row's metadata stays.
  const auto row = f.outbox(deposit);
  CHECK_FALSE(row[1].as<bool>());
  CHECK(row[2].as<int>() == 1);
  CHECK(row[3].as<bool>());
  CHECK_FALSE(f.store.waitingNotice(deposit).has_value());
  const auto listed = f.store.listNotices();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].deposit_id == deposit);
  CHECK(listed[0].holder_id == "ada");
  CHECK(listed[0].delivered);
  CHECK(f.outboxBytes(deposit).find(code) == std::string::npos);
}

TEST_CASE("a notice that does not open is not sent, is logged, and waits for the right key") {
  Sink sink("outbox_wrong_key");
  const auto vault = vaultOf("notice-1", 'n');
  Fixture f(vault, sink.url("ada"));
  const std::string deposit = f.queueNotice(9);
  const std::string code = f.store.waitingNotice(deposit)->pickup_code();
  CapturedLog log;

  SECTION("the same key id with other bytes: the notice does not authenticate") {
    const auto other = vaultOf("notice-1", 'x');
    NoticeDelivery wrong({.conninfo = f.db.conninfo(),
                          .initial_backoff = 1ms,
                          .notice_vault = &other,
                          .allow_internal_webhooks = true});
    CHECK(wrong.deliverDue() == 1);
    CHECK_THAT(f.outbox(deposit)[5].as<std::string>(), Catch::Contains("does not authenticate"));
  }
  SECTION("a key id this worker does not hold") {
    const auto other = vaultOf("notice-0", 'n');
    NoticeDelivery wrong({.conninfo = f.db.conninfo(),
                          .initial_backoff = 1ms,
                          .notice_vault = &other,
                          .allow_internal_webhooks = true});
    CHECK(wrong.deliverDue() == 1);
    CHECK_THAT(f.outbox(deposit)[5].as<std::string>(),
               Catch::Contains("sealed with key 'notice-1'"));
  }

  // Nothing reached the holder; the attempt failed with a clear error, logged; the sealed notice
  // is kept (not delivered, not given up) for another try.
  CHECK(sink.requests().empty());
  CHECK(sink.notices().empty());
  auto row = f.outbox(deposit);
  CHECK_FALSE(row[0].as<bool>());
  CHECK_FALSE(row[1].as<bool>());
  CHECK(row[2].as<int>() == 1);
  CHECK(row[4].as<bool>());
  CHECK_THAT(row[5].as<std::string>(), Catch::StartsWith("the sealed notice does not open"));
  const std::string logged = log.text();
  CHECK_THAT(logged, Catch::Contains("[error]"));
  CHECK_THAT(logged,
             Catch::Contains("notice") && Catch::Contains(deposit) && Catch::Contains("not sent"));
  CHECK(logged.find(code) == std::string::npos);

  // After a rotation the worker holds the new key (it seals) and the old one (it still opens):
  // the notice goes out with its code.
  const ImageVault rotated({{"notice-2", std::string(ImageVault::kKeyBytes, 'm')},
                            {"notice-1", std::string(ImageVault::kKeyBytes, 'n')}});
  NoticeDelivery right(
      {.conninfo = f.db.conninfo(), .notice_vault = &rotated, .allow_internal_webhooks = true});
  REQUIRE(eventually(
      [&] {
        right.deliverDue();
        return f.outbox(deposit)[0].as<bool>();
      },
      30s));
  const auto notices = sink.notices();
  REQUIRE(notices.size() == 1);
  CHECK(codeIn(notices[0]) == code);
  row = f.outbox(deposit);
  CHECK(row[2].as<int>() == 2);
  CHECK(row[3].as<bool>());
}

TEST_CASE("a sealed notice moved to another holder's row does not open there") {
  Sink sink("outbox_moved");
  const auto vault = vaultOf("notice-1", 'n');
  Fixture f(vault, sink.url("ada"));
  f.store.upsertHolder("mallory", "Mallory", sink.url("mallory"), kMallorySecret);
  const std::string deposit = f.queueNotice(2);
  // Someone who can write to the database points Ada's notice at Mallory.
  f.exec("UPDATE notice_outbox SET holder_id = 'mallory' WHERE deposit_id = $1::uuid", deposit);

  NoticeDelivery delivery(
      {.conninfo = f.db.conninfo(), .notice_vault = &vault, .allow_internal_webhooks = true});
  CHECK(delivery.deliverDue() == 1);
  CHECK(sink.requests().empty());
  const auto row = f.outbox(deposit);
  CHECK_FALSE(row[0].as<bool>());
  CHECK_THAT(row[5].as<std::string>(), Catch::Contains("does not authenticate"));
}

TEST_CASE("a notice queued in clear before migration 6 is sealed by migrate, then sent") {
  Sink sink("outbox_legacy");
  const auto vault = vaultOf("notice-1", 'n');
  Fixture f(vault, sink.url("ada"));
  const std::string deposit = f.queueNotice(6);
  const auto notice = f.store.waitingNotice(deposit);
  REQUIRE(notice.has_value());
  const std::string code = notice->pickup_code();
  // The row as the code before migration 6 wrote it: the notice as jsonb, in clear.
  {
    pqxx::connection c(f.db.conninfo());
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE notice_outbox SET payload = $2::jsonb, payload_key_id = NULL, "
        "payload_nonce = NULL, payload_sealed = NULL WHERE deposit_id = $1::uuid",
        deposit, noticeToJson(*notice));
    tx.commit();
  }
  REQUIRE(f.outboxBytes(deposit).find(code) != std::string::npos);

  // Not sent in clear, and not sealed by a store that has no key of its own (one made for its
  // process would seal it for good).
  NoticeDelivery delivery(
      {.conninfo = f.db.conninfo(), .notice_vault = &vault, .allow_internal_webhooks = true});
  CHECK(delivery.deliverDue() == 0);
  Store keyless(storeOptions(f.db.conninfo(), nullptr));
  keyless.migrate();
  CHECK(f.outboxBytes(deposit).find(code) != std::string::npos);

  // A node with the notice key seals it when it migrates; then it is sent as any other.
  f.store.migrate();
  CHECK(f.outboxBytes(deposit).find(code) == std::string::npos);
  CHECK(f.outbox(deposit)[4].as<bool>());
  REQUIRE(eventually(
      [&] {
        delivery.deliverDue();
        return f.outbox(deposit)[0].as<bool>();
      },
      30s));
  const auto notices = sink.notices();
  REQUIRE(notices.size() == 1);
  CHECK(codeIn(notices[0]) == code);
  CHECK(f.outbox(deposit)[3].as<bool>());
}

TEST_CASE("the notice key comes from its file, else the environment, else the card key") {
  const CardHasher card_key("card-7", std::string(32, 'c'));
  const std::string ad = noticeAssociatedData("n", "d", "h");
  ::unsetenv(kNoticeKeyEnvVar);

  // Derived from the card key: every node with that card key opens what another sealed.
  const auto derived = loadNoticeVault("", card_key);
  CHECK(derived.keyId() == "card-card-7");
  CHECK(noticeKeySource("") == "card key");
  const auto sealed = derived.seal("{\"pickupCode\":\"123-456-7890\"}", ad);
  CHECK(loadNoticeVault("", CardHasher("card-7", std::string(32, 'c'))).open(sealed, ad));
  std::string why;
  CHECK_FALSE(
      loadNoticeVault("", CardHasher("card-7", std::string(32, 'd'))).open(sealed, ad, &why));
  CHECK_THAT(why, Catch::Contains("does not authenticate"));
  // Not the card key itself, nor the card hash of anything a card could be.
  CHECK_FALSE(ImageVault({{"card-card-7", std::string(32, 'c')}}).open(sealed, ad));

  // $LOSTCARD_NOTICE_KEY, then a key file, win over the card key.
  ::setenv(kNoticeKeyEnvVar, ("env-1:" + std::string(64, 'a')).c_str(), 1);
  CHECK(loadNoticeVault("", card_key).keyId() == "env-1");
  CHECK(noticeKeySource("") == "env");
  const std::string dir = lostcard::test::makeTestDir("outbox_key_file");
  std::ofstream(dir + "/notice.key") << "# new key first\nfile-2 " << std::string(64, 'b')
                                     << "\nfile-1 " << std::string(64, 'a') << "\n";
  const auto from_file = loadNoticeVault(dir + "/notice.key", card_key);
  CHECK(from_file.keyId() == "file-2");
  CHECK(noticeKeySource(dir + "/notice.key") == "file");
  ::unsetenv(kNoticeKeyEnvVar);
  CHECK_THROWS(loadNoticeVault(dir + "/missing.key", card_key));
}
