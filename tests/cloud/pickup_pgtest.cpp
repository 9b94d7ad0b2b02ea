// Redeeming pickup codes against a real PostgreSQL (ctest fixture "pg"), with injected time:
// every rule of pickup_rules.hpp as Store::redeemPickupCode applies it, and new codes.
#include <atomic>
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z

StoreOptions options(const std::string& conninfo) {
  StoreOptions o;
  o.conninfo = conninfo;
  o.pool_size = 4;
  o.pickup_code_ttl = std::chrono::hours(48);
  o.pickup_code_tries = 5;
  o.pickup_limits.kiosk_wrong_tries = 20;
  o.pickup_limits.kiosk_window = 15min;
  return o;
}

// A migrated registry with two holders (each one card) and two kiosks.
struct Fixture {
  explicit Fixture(int kiosk_wrong_tries = 20) : store(makeOptions(db, kiosk_wrong_tries)) {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    store.upsertHolder("bob", "Bob Babbage", "http://127.0.0.1:9/bob", "bob-secret-0123456789");
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "24/7", 24});
    store.upsertKiosk({"kiosk-2", "Airport", "Arrivals hall", 47.45, 8.56, "24/7", 12});
    const CardHasher hasher("test-key", std::string(32, 'k'));
    ada_card = store.enrollCard(hasher, "northwind", "ada", "4000056655665556");
    bob_card = store.enrollCard(hasher, "northwind", "bob", "5200828282828210");
  }

  static StoreOptions makeOptions(lostcard::test::PgTestDb& db, int kiosk_wrong_tries) {
    auto o = options(db.conninfo());
    o.pickup_limits.kiosk_wrong_tries = kiosk_wrong_tries;
    return o;
  }

  // A card of `card_id` decided "store" and stored in `slot` of `kiosk` at kNow: its deposit id.
  std::string storeCard(const std::string& kiosk, std::uint32_t slot, std::int64_t card_id = 0) {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card_id != 0 ? card_id : ada_card;
    d.last4 = card_id == bob_card ? "8210" : "5556";
    store.recordDecision(d, kNow);
    v1::Location location;
    location.set_slot(slot);
    REQUIRE(store.recordStored(kiosk, d.deposit_id, location, kNow).notice_queued);
    return d.deposit_id;
  }

  // The code in the deposit's newest notice, as its holder reads it (the outbox holds it sealed).
  std::string code(const std::string& deposit_id) {
    const auto notice = store.waitingNotice(deposit_id);
    REQUIRE(notice.has_value());
    return notice->pickup_code();
  }

  PickupOutcome redeem(const std::string& kiosk, std::uint32_t slot, const std::string& typed,
                       std::chrono::system_clock::time_point at = kNow + 1h) {
    return store.redeemPickupCode({kiosk, lostcard::wire::newUuid(), slot, typed}, at);
  }

  pqxx::row query1(const std::string& sql) {
    pqxx::connection c(db.conninfo());
    pqxx::read_transaction tx(c);
    return tx.exec1(sql);
  }
  std::string status(const std::string& deposit_id) {
    return query1("SELECT status FROM deposits WHERE id = '" + deposit_id + "'")[0]
        .as<std::string>();
  }
  int triesLeft(const std::string& deposit_id) {
    return query1("SELECT tries_left FROM pickup_codes WHERE deposit_id = '" + deposit_id + "'")[0]
        .as<int>();
  }

  lostcard::test::PgTestDb db;
  Store store;
  std::int64_t ada_card = 0, bob_card = 0;
};

// The same code with its last digit changed.
std::string wrong(const std::string& code) {
  std::string w = code;
  w.back() = w.back() == '9' ? '0' : static_cast<char>(w.back() + 1);
  return w;
}

}  // namespace

TEST_CASE("the right code opens its slot once; a used code never opens again", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 3);
  const std::string code = f.code(deposit);

  const auto open = f.redeem("kiosk-1", 3, code);
  CHECK(open.verdict.result == v1::PICKUP_RESULT_OPEN);
  CHECK(open.deposit_id == deposit);
  CHECK(open.slot == 3);
  CHECK_FALSE(open.repeated);
  CHECK(f.status(deposit) == "releasing");
  CHECK(f.query1("SELECT used_at IS NOT NULL AND released_at IS NOT NULL FROM pickup_codes p "
                 "JOIN deposits d ON d.id = p.deposit_id")[0]
            .as<bool>());

  // Typed again (a new request): nothing waits in that slot any more.
  const auto again = f.redeem("kiosk-1", 3, code, kNow + 2h);
  CHECK(again.verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  CHECK(f.status(deposit) == "releasing");
}

TEST_CASE("a request sent again gets the first answer without a second check", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 0);
  const PickupAttempt attempt{"kiosk-1", lostcard::wire::newUuid(), 0, f.code(deposit)};
  const auto first = f.store.redeemPickupCode(attempt, kNow + 1h);
  REQUIRE(first.verdict.result == v1::PICKUP_RESULT_OPEN);
  // The kiosk lost the answer with the link and resends the same request: it opens again.
  const auto resent = f.store.redeemPickupCode(attempt, kNow + 1h + 30s);
  CHECK(resent.repeated);
  CHECK(resent.verdict.result == v1::PICKUP_RESULT_OPEN);
  CHECK(resent.deposit_id == deposit);
  CHECK(resent.slot == 0);
  CHECK(f.query1("SELECT count(*) FROM pickup_attempts")[0].as<int>() == 1);

  // A wrong code resent does not use a second try.
  const auto other = f.storeCard("kiosk-1", 1);
  const PickupAttempt bad{"kiosk-1", lostcard::wire::newUuid(), 1, wrong(f.code(other))};
  CHECK(f.store.redeemPickupCode(bad, kNow + 1h).verdict.tries_left == 4);
  const auto bad_again = f.store.redeemPickupCode(bad, kNow + 1h);
  CHECK(bad_again.repeated);
  CHECK(bad_again.verdict.result == v1::PICKUP_RESULT_WRONG_CODE);
  CHECK(f.triesLeft(other) == 4);

  CHECK_THROWS_AS(f.store.redeemPickupCode({"kiosk-1", "not-a-uuid", 1, "1"}, kNow),
                  std::invalid_argument);
}

TEST_CASE("five wrong codes lock the deposit, even against the right code", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 5);
  const std::string code = f.code(deposit);
  for (int i = 1; i <= 5; ++i) {
    const auto r = f.redeem("kiosk-1", 5, wrong(code), kNow + std::chrono::minutes(i));
    CHECK(r.verdict.result == v1::PICKUP_RESULT_WRONG_CODE);
    CHECK(r.verdict.tries_left == 5 - i);
    CHECK(r.deposit_id == deposit);
  }
  CHECK(f.triesLeft(deposit) == 0);
  const auto locked = f.redeem("kiosk-1", 5, code, kNow + 10min);
  CHECK(locked.verdict.result == v1::PICKUP_RESULT_LOCKED);
  CHECK(f.status(deposit) == "stored");
  // A locked code is not checked, so it does not count against the kiosk either.
  CHECK(f.query1("SELECT count(*) FROM pickup_attempts WHERE result = 'wrong_code'")[0].as<int>() ==
        5);
}

TEST_CASE("a new code replaces the old one, resets the tries and comes in a new notice",
          "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 2);
  const std::string old_code = f.code(deposit);
  for (int i = 0; i < 5; ++i) {
    f.redeem("kiosk-1", 2, wrong(old_code), kNow + 1min);
  }
  REQUIRE(f.redeem("kiosk-1", 2, old_code, kNow + 2min).verdict.result == v1::PICKUP_RESULT_LOCKED);

  SECTION("only the card's holder may ask") {
    const auto refused = f.store.issueNewPickupCode(deposit, "bob", kNow + 3min);
    CHECK_FALSE(refused.ok);
    CHECK(refused.error == "no such deposit of this holder");
    CHECK(f.store.issueNewPickupCode(lostcard::wire::newUuid(), "ada", kNow).error ==
          refused.error);
    CHECK(f.store.issueNewPickupCode("nope", "ada", kNow).error == refused.error);
    CHECK(f.triesLeft(deposit) == 0);
  }

  const auto fresh = f.store.issueNewPickupCode(deposit, "ada", kNow + 3min);
  REQUIRE(fresh.ok);
  CHECK(f.triesLeft(deposit) == 5);
  const std::string new_code = f.code(deposit);
  CHECK(new_code != old_code);
  const auto notices = f.query1(
      "SELECT count(*), max(notice_seq), "
      "       count(*) FILTER (WHERE gave_up_at IS NOT NULL AND payload_sealed IS NULL) "
      "FROM notice_outbox WHERE deposit_id = '" +
      deposit + "'");
  CHECK(notices[0].as<int>() == 2);
  CHECK(notices[1].as<int>() == 2);
  CHECK(notices[2].as<int>() == 1);  // the first, undelivered, withdrawn with its payload wiped
  const auto notice = f.store.waitingNotice(deposit);
  REQUIRE(notice.has_value());
  CHECK(notice->notice_id() == fresh.notice_id);
  CHECK(notice->pickup_code_expires_at() == "2024-05-03T12:03:00Z");  // 48 h from the request
  CHECK(notice->slot_number() == 3);

  // The old code is just a wrong code now; the new one opens.
  const auto old_try = f.redeem("kiosk-1", 2, old_code, kNow + 4min);
  CHECK(old_try.verdict.result == v1::PICKUP_RESULT_WRONG_CODE);
  CHECK(old_try.verdict.tries_left == 4);
  const auto open = f.redeem("kiosk-1", 2, new_code, kNow + 5min);
  CHECK(open.verdict.result == v1::PICKUP_RESULT_OPEN);
  CHECK(open.deposit_id == deposit);

  // Once released, no new code.
  const auto late = f.store.issueNewPickupCode(deposit, "ada", kNow + 6min);
  CHECK_FALSE(late.ok);
  CHECK_THAT(late.error, Catch::Contains("not waiting in a slot"));
}

TEST_CASE("a code expires after pickup_code_ttl; a new one works again", "[pickup]") {
  Fixture f;  // ttl 48 h from kNow
  const auto deposit = f.storeCard("kiosk-1", 4);
  const std::string code = f.code(deposit);
  CHECK(f.redeem("kiosk-1", 4, code, kNow + 48h).verdict.result == v1::PICKUP_RESULT_EXPIRED);
  CHECK(f.redeem("kiosk-1", 4, wrong(code), kNow + 49h).verdict.result ==
        v1::PICKUP_RESULT_EXPIRED);
  CHECK(f.triesLeft(deposit) == 5);  // not checked: no try used
  REQUIRE(f.store.issueNewPickupCode(deposit, "ada", kNow + 50h).ok);
  CHECK(f.redeem("kiosk-1", 4, f.code(deposit), kNow + 51h).verdict.result ==
        v1::PICKUP_RESULT_OPEN);

  // Just before its expiry, a code still opens.
  const auto other = f.storeCard("kiosk-1", 6);
  CHECK(f.redeem("kiosk-1", 6, f.code(other), kNow + 48h - 1s).verdict.result ==
        v1::PICKUP_RESULT_OPEN);
}

TEST_CASE("wrong codes across a kiosk's slots throttle that kiosk until the window passes",
          "[pickup]") {
  Fixture f(6);  // at most 6 wrong codes per kiosk per 15 minutes
  const auto a = f.storeCard("kiosk-1", 1);
  const auto b = f.storeCard("kiosk-1", 2);
  const auto c = f.storeCard("kiosk-2", 1);
  const auto t0 = kNow + 1h;
  // Someone tries codes in turn on two slots: three each (each deposit keeps 2 tries).
  for (int i = 0; i < 3; ++i) {
    CHECK(
        f.redeem("kiosk-1", 1, wrong(f.code(a)), t0 + std::chrono::seconds(2 * i)).verdict.result ==
        v1::PICKUP_RESULT_WRONG_CODE);
    CHECK(f.redeem("kiosk-1", 2, wrong(f.code(b)), t0 + std::chrono::seconds(2 * i + 1))
              .verdict.result == v1::PICKUP_RESULT_WRONG_CODE);
  }
  // Now every pickup at kiosk-1 is refused, the right code too, and no try is used.
  const auto throttled = f.redeem("kiosk-1", 1, f.code(a), t0 + 10s);
  CHECK(throttled.verdict.result == v1::PICKUP_RESULT_KIOSK_THROTTLED);
  CHECK(throttled.verdict.retry_after == 15min - 10s);  // until the first wrong try is 15 min old
  CHECK(f.redeem("kiosk-1", 9, "000-000-0000", t0 + 11s).verdict.result ==
        v1::PICKUP_RESULT_KIOSK_THROTTLED);
  CHECK(f.triesLeft(a) == 2);
  CHECK(f.triesLeft(b) == 2);

  // Another kiosk is not affected.
  CHECK(f.redeem("kiosk-2", 1, f.code(c), t0 + 12s).verdict.result == v1::PICKUP_RESULT_OPEN);

  // Once the oldest wrong try is older than the window, kiosk-1 takes codes again.
  CHECK(f.redeem("kiosk-1", 1, f.code(a), t0 + 15min - 1s).verdict.result ==
        v1::PICKUP_RESULT_KIOSK_THROTTLED);
  const auto open = f.redeem("kiosk-1", 1, f.code(a), t0 + 15min);
  CHECK(open.verdict.result == v1::PICKUP_RESULT_OPEN);
  CHECK(open.deposit_id == a);
}

TEST_CASE("a kiosk can open only its own deposits", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 3);
  const std::string code = f.code(deposit);
  // kiosk-2 has a slot 3 too, but the card is in kiosk-1.
  const auto other = f.redeem("kiosk-2", 3, code);
  CHECK(other.verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  CHECK(other.deposit_id.empty());
  CHECK(f.triesLeft(deposit) == 5);
  CHECK(f.status(deposit) == "stored");
  // Nor through another slot of the right kiosk.
  CHECK(f.redeem("kiosk-1", 4, code).verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  CHECK(f.redeem("kiosk-1", 3, code).verdict.result == v1::PICKUP_RESULT_OPEN);
}

TEST_CASE("what is not a code uses no try", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 0);
  const auto r = f.redeem("kiosk-1", 0, "12345");
  CHECK(r.verdict.result == v1::PICKUP_RESULT_INVALID_CODE);
  CHECK(r.verdict.tries_left == 5);
  CHECK(f.triesLeft(deposit) == 5);
}

TEST_CASE("two kiosks' worth of the right code at once: one opens", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 7);
  const std::string code = f.code(deposit);
  std::atomic<int> opened{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      const auto r = f.redeem("kiosk-1", 7, code);
      (r.verdict.result == v1::PICKUP_RESULT_OPEN ? opened : refused)++;
      if (r.verdict.result != v1::PICKUP_RESULT_OPEN) {
        CHECK(r.verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(opened == 1);
  CHECK(refused == 2);
}

TEST_CASE("every attempt is recorded and audited, never with the code", "[pickup]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 1);
  const std::string code = f.code(deposit);
  f.redeem("kiosk-1", 1, wrong(code));
  f.redeem("kiosk-1", 1, code);
  f.redeem("kiosk-1", 2, code);
  REQUIRE(f.store.issueNewPickupCode(f.storeCard("kiosk-1", 4), "ada", kNow).ok);

  const auto audit = f.query1(
      "SELECT count(*) FILTER (WHERE action = 'pickup.attempt'), "
      "       count(*) FILTER (WHERE action = 'pickup.attempt' AND result = 'wrong_code' "
      "                        AND object_ids = ARRAY['" +
      deposit +
      "']), "
      "       count(*) FILTER (WHERE action = 'pickup.attempt' AND result = 'open' "
      "                        AND actor_role = 'kiosk' AND actor_id = 'kiosk-1'), "
      "       count(*) FILTER (WHERE action = 'pickup.new_code' AND actor_id = 'ada') "
      "FROM audit_log");
  CHECK(audit[0].as<int>() == 3);
  CHECK(audit[1].as<int>() == 1);
  CHECK(audit[2].as<int>() == 1);
  CHECK(audit[3].as<int>() == 1);

  const std::string digits = normalizePickupCode(code);
  for (const char* table : {"audit_log", "pickup_attempts", "pickup_codes", "deposits"}) {
    const auto leak =
        f.query1(std::string("SELECT count(*) FROM ") + table + " t WHERE t::text LIKE '%" +
                 digits + "%' OR t::text LIKE '%" + code + "%'");
    CHECK(leak[0].as<int>() == 0);
  }
}
