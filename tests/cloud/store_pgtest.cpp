// lostcard_registry's Store against a real PostgreSQL (ctest fixture "pg").
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/migrations.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

constexpr const char* kNumber = "4000056655665556";
constexpr const char* kOtherNumber = "5200828282828210";
const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z

CardHasher testHasher() { return CardHasher("test-key", std::string(32, 'k')); }

// A migrated registry with one issuer, holder, kiosk and enrolled card.
struct Fixture {
  lostcard::test::PgTestDb db;
  Store store{StoreOptions{.conninfo = db.conninfo(), .pool_size = 4}};
  CardHasher hasher = testHasher();
  std::int64_t card_id = 0;

  Fixture() {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", "http://127.0.0.1:9/holders/ada",
                       "ada-secret-0123456789");
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.378177, 8.540192,
                       "Mo-Su 05:00-24:00", 24});
    store.upsertKiosk({"kiosk-2", "Airport", "Arrivals hall", 47.4502, 8.5618, "24/7", 12});
    card_id = store.enrollCard(hasher, "northwind", "ada", kNumber);
  }

  DepositDecision storeDecision(const std::string& deposit_id, const std::string& kiosk_id) {
    DepositDecision d;
    d.deposit_id = deposit_id;
    d.kiosk_id = kiosk_id;
    d.store = true;
    d.card_id = card_id;
    d.last4 = "5556";
    return d;
  }

  pqxx::result query(const std::string& sql) {
    pqxx::connection c(db.conninfo());
    pqxx::read_transaction tx(c);
    return tx.exec(sql);
  }
  int count(const std::string& sql) { return query(sql)[0][0].as<int>(); }
};

std::string asciiHex(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

v1::Location slot(std::uint32_t n) {
  v1::Location l;
  l.set_slot(n);
  return l;
}

v1::Location bin() {
  v1::Location l;
  l.mutable_bin();
  return l;
}

}  // namespace

TEST_CASE("migrating twice is a no-op") {
  lostcard::test::PgTestDb db;
  pqxx::connection c(db.conninfo());
  CHECK(schemaVersion(c) == 0);
  CHECK(applyMigrations(c) == static_cast<int>(registryMigrations().size()));
  CHECK(schemaVersion(c) == registryMigrations().back().version);
  CHECK(applyMigrations(c) == 0);
  Store store({.conninfo = db.conninfo()});
  store.migrate();
  pqxx::read_transaction tx(c);
  CHECK(tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<std::size_t>() ==
        registryMigrations().size());
}

TEST_CASE("nodes migrating at the same time apply each migration once") {
  lostcard::test::PgTestDb db;
  std::atomic<int> applied{0};
  std::vector<std::thread> nodes;
  for (int i = 0; i < 4; ++i) {
    nodes.emplace_back([&] {
      pqxx::connection c(db.conninfo());
      applied += applyMigrations(c);
    });
  }
  for (auto& t : nodes) {
    t.join();
  }
  CHECK(applied == static_cast<int>(registryMigrations().size()));
}

TEST_CASE("enrollment is idempotent and stores no number in clear") {
  Fixture f;
  CHECK(f.store.enrollCard(f.hasher, "northwind", "ada", kNumber) == f.card_id);
  CHECK(f.store.enrollCard(f.hasher, "northwind", "ada", "4000 0566 5566 5556") == f.card_id);
  CHECK(f.count("SELECT count(*) FROM cards") == 1);
  const auto row = f.query("SELECT last4, number_key_id, octet_length(number_hmac) FROM cards");
  CHECK(row[0][0].as<std::string>() == "5556");
  CHECK(row[0][1].as<std::string>() == "test-key");
  CHECK(row[0][2].as<int>() == 32);
  CHECK_THROWS_AS(f.store.enrollCard(f.hasher, "northwind", "ada", "1234567"),
                  std::invalid_argument);
  CHECK_THROWS_AS(f.store.enrollCard(f.hasher, "northwind", "ada", "4000x0566"),
                  std::invalid_argument);
  CHECK_THROWS_AS(f.store.enrollCard(f.hasher, "nobody", "ada", kOtherNumber),
                  pqxx::foreign_key_violation);
}

TEST_CASE("upserts replace the other columns") {
  Fixture f;
  f.store.upsertKiosk({"kiosk-1", "Main Station (moved)", "Track 3", 47.0, 8.0, "", 30});
  const auto k = f.store.findKiosk("kiosk-1");
  REQUIRE(k.has_value());
  CHECK(k->name == "Main Station (moved)");
  CHECK(k->address == "Track 3");
  CHECK(k->latitude == Approx(47.0));
  CHECK(k->slot_count == 30);
  CHECK_FALSE(f.store.findKiosk("kiosk-nope").has_value());
  f.store.upsertHolder("ada", "Ada King", "https://app.example/ada", "new-secret-0123456789");
  CHECK(f.query("SELECT name FROM holders WHERE id = 'ada'")[0][0].as<std::string>() == "Ada King");
}

TEST_CASE("findCardsByHash finds the enrolled card by its keyed hash only") {
  Fixture f;
  const auto owners = f.store.findCardsByHash(f.hasher.keyId(), f.hasher.hash(kNumber));
  REQUIRE(owners.size() == 1);
  CHECK(owners[0].card_id == f.card_id);
  CHECK(owners[0].holder_id == "ada");
  CHECK(owners[0].issuer_id == "northwind");
  CHECK(owners[0].last4 == "5556");
  CHECK(f.store.findCardsByHash(f.hasher.keyId(), f.hasher.hash(kOtherNumber)).empty());
  // The same number under another key is another hash.
  CardHasher other("other-key", std::string(32, 'o'));
  CHECK(f.store.findCardsByHash(other.keyId(), other.hash(kNumber)).empty());
  CHECK(f.store.findCardsByHash("other-key", f.hasher.hash(kNumber)).empty());
}

TEST_CASE("the first decision wins") {
  Fixture f;
  const std::string id = lostcard::wire::newUuid();
  const auto first = f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  CHECK(first.store);
  CHECK(first.card_id == f.card_id);
  CHECK(first.last4 == "5556");

  DepositDecision difficult;
  difficult.deposit_id = id;
  difficult.kiosk_id = "kiosk-1";
  difficult.reason = v1::DIFFICULT_REASON_UNREADABLE;
  difficult.detail = "glare";
  const auto second = f.store.recordDecision(difficult, kNow + 1s);
  CHECK(second.store);
  CHECK(second.card_id == f.card_id);

  const auto found = f.store.findDecision(id);
  REQUIRE(found.has_value());
  CHECK(found->store);
  CHECK_FALSE(f.store.findDecision(lostcard::wire::newUuid()).has_value());
  CHECK_FALSE(f.store.findDecision("not-a-uuid").has_value());
}

TEST_CASE("difficult decisions keep their reason, detail and last four") {
  Fixture f;
  DepositDecision d;
  d.deposit_id = lostcard::wire::newUuid();
  d.kiosk_id = "kiosk-1";
  d.last4 = "0004";
  d.reason = v1::DIFFICULT_REASON_NO_HOLDER;
  d.detail = "read a number that no enrolled card has";
  const auto recorded = f.store.recordDecision(d, kNow);
  CHECK_FALSE(recorded.store);
  CHECK_FALSE(recorded.card_id.has_value());
  CHECK(recorded.reason == v1::DIFFICULT_REASON_NO_HOLDER);
  CHECK(recorded.last4 == "0004");
  CHECK(recorded.detail == d.detail);
}

TEST_CASE("inconsistent decisions are refused") {
  Fixture f;
  auto d = f.storeDecision("not-a-uuid", "kiosk-1");
  CHECK_THROWS_AS(f.store.recordDecision(d, kNow), std::invalid_argument);
  d.deposit_id = lostcard::wire::newUuid();
  d.card_id.reset();
  CHECK_THROWS_AS(f.store.recordDecision(d, kNow), std::invalid_argument);
  d.card_id = f.card_id;
  d.last4 = "12345";
  CHECK_THROWS_AS(f.store.recordDecision(d, kNow), std::invalid_argument);
}

TEST_CASE("recordStored queues exactly one notice, even when repeated") {
  Fixture f;
  const std::string id = lostcard::wire::newUuid();
  f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  const auto first = f.store.recordStored("kiosk-1", id, slot(7), kNow + 2s);
  CHECK(first.ok);
  CHECK(first.notice_queued);
  const auto again = f.store.recordStored("kiosk-1", id, slot(7), kNow + 3s);
  CHECK(again.ok);
  CHECK_FALSE(again.notice_queued);
  CHECK(f.count("SELECT count(*) FROM notice_outbox") == 1);
  CHECK(f.count("SELECT count(*) FROM pickup_codes") == 1);

  const auto deposit = f.query(
      "SELECT status, location_kind, location_slot, stored_at = '2024-05-01T12:00:02Z' "
      "FROM deposits");
  CHECK(deposit[0][0].as<std::string>() == "stored");
  CHECK(deposit[0][1].as<std::string>() == "slot");
  CHECK(deposit[0][2].as<int>() == 7);
  CHECK(deposit[0][3].as<bool>());

  // The notice carries the code whose hash is stored, for this holder, box and slot.
  const auto outbox = f.query(
      "SELECT payload_sealed IS NOT NULL AND payload IS NULL, holder_id, deposit_id::text "
      "FROM notice_outbox");
  CHECK(outbox[0][0].as<bool>());  // sealed (outbox_sealing_pgtest), opened by the store's key
  CHECK(outbox[0][1].as<std::string>() == "ada");
  CHECK(outbox[0][2].as<std::string>() == id);
  const auto notice = f.store.waitingNotice(id);
  REQUIRE(notice.has_value());
  CHECK(notice->deposit_id() == id);
  CHECK(notice->card_last4() == "5556");
  CHECK(notice->holder_name() == "Ada Lovelace");
  CHECK(notice->issuer_name() == "Northwind Bank");
  CHECK(notice->kiosk().name() == "Main Station");
  CHECK(notice->pickup_code_expires_at() == "2024-05-15T12:00:02Z");
  // Slot index 7 is the door labelled 8.
  CHECK_THAT(notice->message(), Catch::Contains("slot 8 opens"));
  const auto code = f.query("SELECT code_hash, tries_left FROM pickup_codes");
  CHECK(verifyCode(notice->pickup_code(), code[0][0].as<std::string>()));
  CHECK(code[0][1].as<int>() == 5);
}

TEST_CASE("recordStored from two threads at once queues one notice") {
  Fixture f;
  for (int round = 0; round < 5; ++round) {
    const std::string id = lostcard::wire::newUuid();
    f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
    std::atomic<int> queued{0};
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        const auto r = f.store.recordStored("kiosk-1", id, slot(3), kNow);
        ok += r.ok ? 1 : 0;
        queued += r.notice_queued ? 1 : 0;
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    CHECK(ok == 2);
    CHECK(queued == 1);
  }
  CHECK(f.count("SELECT count(*) FROM notice_outbox") == 5);
}

TEST_CASE("recordStored refuses unknown deposits and other kiosks' deposits") {
  Fixture f;
  const std::string id = lostcard::wire::newUuid();
  f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  const auto other = f.store.recordStored("kiosk-2", id, slot(1), kNow);
  CHECK_FALSE(other.ok);
  CHECK(other.error == "deposit belongs to another kiosk");
  const auto unknown = f.store.recordStored("kiosk-1", lostcard::wire::newUuid(), slot(1), kNow);
  CHECK_FALSE(unknown.ok);
  CHECK(unknown.error == "unknown deposit");
  CHECK_FALSE(f.store.recordStored("kiosk-1", "nope", slot(1), kNow).ok);
  CHECK_FALSE(f.store.recordStored("kiosk-1", id, v1::Location(), kNow).ok);
  CHECK(f.count("SELECT count(*) FROM notice_outbox") == 0);
  CHECK(f.count("SELECT count(*) FROM deposits WHERE status = 'decided'") == 1);
}

TEST_CASE("no notice for difficult cards or a store card that went to the bin") {
  Fixture f;
  DepositDecision difficult;
  difficult.deposit_id = lostcard::wire::newUuid();
  difficult.kiosk_id = "kiosk-1";
  difficult.reason = v1::DIFFICULT_REASON_UNREADABLE;
  f.store.recordDecision(difficult, kNow);
  const auto d = f.store.recordStored("kiosk-1", difficult.deposit_id, bin(), kNow);
  CHECK(d.ok);
  CHECK_FALSE(d.notice_queued);

  const std::string id = lostcard::wire::newUuid();
  f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  const auto s = f.store.recordStored("kiosk-1", id, bin(), kNow);
  CHECK(s.ok);
  CHECK_FALSE(s.notice_queued);
  // Reported again in a slot later: the first report stands, still no notice.
  CHECK_FALSE(f.store.recordStored("kiosk-1", id, slot(2), kNow).notice_queued);

  CHECK(f.count("SELECT count(*) FROM notice_outbox") == 0);
  CHECK(f.count("SELECT count(*) FROM deposits WHERE location_kind = 'bin'") == 2);

  const auto deposits = f.store.listDeposits("kiosk-1");
  REQUIRE(deposits.size() == 2);
  for (const auto& dep : deposits) {
    CHECK(dep.location == "bin");
    CHECK(dep.status == "stored");
  }
  CHECK(f.store.listDeposits("kiosk-2").empty());
}

TEST_CASE("heartbeats update the kiosk's fill levels") {
  Fixture f;
  v1::Heartbeat hb;
  hb.set_slots_total(24);
  hb.set_slots_used(5);
  hb.set_bin_capacity(200);
  hb.set_bin_count(17);
  f.store.recordHeartbeat("kiosk-1", hb, kNow);
  f.store.recordHeartbeat("kiosk-unknown", hb, kNow);  // ignored
  const auto k = f.query(
      "SELECT slots_used, bin_count, bin_capacity, last_heartbeat_at = '2024-05-01T12:00:00Z' "
      "FROM kiosks WHERE id = 'kiosk-1'");
  CHECK(k[0][0].as<int>() == 5);
  CHECK(k[0][1].as<int>() == 17);
  CHECK(k[0][2].as<int>() == 200);
  CHECK(k[0][3].as<bool>());
}

TEST_CASE("no table holds a full card number in any column") {
  Fixture f;
  f.store.enrollCard(f.hasher, "northwind", "ada", kOtherNumber);
  const std::string id = lostcard::wire::newUuid();
  f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  REQUIRE(f.store.recordStored("kiosk-1", id, slot(4), kNow).notice_queued);

  const auto tables = f.query(
      "SELECT table_name FROM information_schema.tables "
      "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
  REQUIRE(tables.size() >= 8);
  for (const auto& t : tables) {
    const std::string table = t[0].as<std::string>();
    // The text of every row, all columns; bytea shows as hex, so a number kept as bytes would
    // show as the hex of its ASCII digits.
    pqxx::connection c(f.db.conninfo());
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec("SELECT t::text FROM " + tx.quote_name(table) + " t");
    for (const auto& r : rows) {
      const std::string row_text = r[0].as<std::string>();
      for (const std::string number : {kNumber, kOtherNumber}) {
        INFO("table " << table);
        CHECK(row_text.find(number) == std::string::npos);
        CHECK(row_text.find(asciiHex(number)) == std::string::npos);
      }
    }
  }
}

TEST_CASE("listNotices reports what is queued") {
  Fixture f;
  const std::string id = lostcard::wire::newUuid();
  f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow);
  f.store.recordStored("kiosk-1", id, slot(9), kNow);
  const auto notices = f.store.listNotices();
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].deposit_id == id);
  CHECK(notices[0].holder_id == "ada");
  CHECK(notices[0].attempts == 0);
  CHECK_FALSE(notices[0].delivered);
}

TEST_CASE("a call on a broken connection is retried on a new one") {
  Fixture f;
  CHECK(f.store.findKiosk("kiosk-1").has_value());
  // Kill every other backend of this database: the pool's idle connections break.
  {
    pqxx::connection c(f.db.conninfo());
    pqxx::nontransaction tx(c);
    tx.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  }
  CHECK(f.store.findKiosk("kiosk-1").has_value());
  const std::string id = lostcard::wire::newUuid();
  CHECK(f.store.recordDecision(f.storeDecision(id, "kiosk-1"), kNow).store);
}

TEST_CASE("lostcard-admin enrolls, and lists deposits and notices") {
  lostcard::test::PgTestDb db;
  const std::string dir = lostcard::test::makeTestDir("store_pgtest_admin");
  const std::string hex_key(64, 'c');
  std::ofstream(dir + "/card.key") << "# test key\nadmin-key " << hex_key << "\n";
  const std::vector<std::string> admin = {lostcard::test::binDir() + "/lostcard-admin", "--db",
                                          db.conninfo(), "--card-key-file", dir + "/card.key"};
  auto run = [&](std::vector<std::string> args, const std::string& input = {}) {
    std::vector<std::string> argv = admin;
    argv.insert(argv.end(), args.begin(), args.end());
    return lostcard::test::runProgram(argv, input);
  };
  run({"migrate"});
  run({"migrate"});
  run({"add-issuer", "northwind", "Northwind Bank"});
  run({"add-holder", "ada", "Ada Lovelace", "http://127.0.0.1:9/holders/ada", "ada-secret"});
  run({"add-kiosk", "kiosk-1", "--name", "Main Station", "--address", "Station Square 1", "--lat",
       "47.378177", "--lon", "8.540192", "--hours", "Mo-Su 05:00-24:00", "--slots", "24"});
  CHECK(run({"add-cards"}, std::string("northwind\tada\t") + kNumber + "\n# comment\n\n") ==
        "enrolled 1 cards\n");

  // A bad line fails the run, names the line and never echoes the number.
  try {
    run({"add-cards"}, std::string("northwind\tnobody\t") + kOtherNumber + "\n");
    FAIL("add-cards should fail on an unknown holder");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("line 1: unknown issuer or holder"));
    CHECK(std::string(e.what()).find(kOtherNumber) == std::string::npos);
  }
  CHECK_THROWS(run({"add-issuer", "only-an-id"}));
  CHECK_THROWS(run({"frobnicate"}));

  // The card enrolled with the key file is found with the same key.
  Store store({.conninfo = db.conninfo()});
  const auto hasher = CardHasher::fromText("admin-key " + hex_key, ' ');
  const auto owners = store.findCardsByHash(hasher.keyId(), hasher.hash(kNumber));
  REQUIRE(owners.size() == 1);
  DepositDecision d;
  d.deposit_id = lostcard::wire::newUuid();
  d.kiosk_id = "kiosk-1";
  d.store = true;
  d.card_id = owners[0].card_id;
  d.last4 = "5556";
  store.recordDecision(d, kNow);
  REQUIRE(store.recordStored("kiosk-1", d.deposit_id, slot(3), kNow).notice_queued);
  DepositDecision difficult;
  difficult.deposit_id = lostcard::wire::newUuid();
  difficult.kiosk_id = "kiosk-1";
  difficult.reason = v1::DIFFICULT_REASON_UNREADABLE;
  store.recordDecision(difficult, kNow - 1s);

  CHECK(run({"deposits", "--kiosk", "kiosk-1"}) ==
        d.deposit_id + "\tkiosk-1\tstored\tstore\tslot:3\t5556\t-\n" + difficult.deposit_id +
            "\tkiosk-1\tdecided\tdifficult\t-\t-\tunreadable\n");
  CHECK(run({"deposits", "--kiosk", "kiosk-2"}).empty());
  const auto notices = run({"notices"});
  CHECK_THAT(notices, Catch::EndsWith("\t" + d.deposit_id + "\tada\t0\tno\n"));
}
