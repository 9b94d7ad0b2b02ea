// Doors opened at the box (issue 6) against a real PostgreSQL, with injected time: what the
// store does with a kiosk's PickupDone (taken, not taken, door failed, repeated, refused) and
// with an operator's box code and the BinEmptied that follows, and the check of the number typed
// for a card put back at the box (a RestockCheck, through the DepositService).
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z

struct Fixture {
  Fixture() : store(makeOptions(db)) {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", "http://127.0.0.1:9/ada", "ada-secret-0123456789");
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "24/7", 24});
    store.upsertKiosk({"kiosk-2", "Airport", "Arrivals hall", 47.45, 8.56, "24/7", 12});
    const CardHasher hasher("test-key", std::string(32, 'k'));
    card = store.enrollCard(hasher, "northwind", "ada", "4000056655665556");
  }

  static StoreOptions makeOptions(lostcard::test::PgTestDb& db) {
    StoreOptions o;
    o.conninfo = db.conninfo();
    o.operator_code_tries = 3;
    o.operator_code_window = 15min;
    return o;
  }

  // Ada's card, recognized and put at `location` of `kiosk`.
  std::string holderCard(const std::string& kiosk, const v1::Location& location) {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = kiosk;
    d.store = true;
    d.card_id = card;
    d.last4 = "5556";
    store.recordDecision(d, kNow);
    REQUIRE(store.recordStored(kiosk, d.deposit_id, location, kNow).ok);
    return d.deposit_id;
  }

  std::string storeCard(const std::string& kiosk, std::uint32_t slot) {
    v1::Location location;
    location.set_slot(slot);
    return holderCard(kiosk, location);
  }

  // A known holder's card that went to the bin: no free slot when it was dropped, say.
  std::string holderCardInBin(const std::string& kiosk) {
    v1::Location bin;
    bin.mutable_bin();
    return holderCard(kiosk, bin);
  }

  std::string difficultInBin(const std::string& kiosk) {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = kiosk;
    d.reason = v1::DIFFICULT_REASON_UNREADABLE;
    store.recordDecision(d, kNow);
    v1::Location location;
    location.mutable_bin();
    REQUIRE(store.recordStored(kiosk, d.deposit_id, location, kNow).ok);
    return d.deposit_id;
  }

  // Opens the deposit's slot with its code: the request id of the OPEN answer.
  std::string open(const std::string& kiosk, std::uint32_t slot, const std::string& deposit_id) {
    const auto notice = store.waitingNotice(deposit_id);
    REQUIRE(notice.has_value());
    const std::string request_id = lostcard::wire::newUuid();
    const auto o =
        store.redeemPickupCode({kiosk, request_id, slot, notice->pickup_code()}, kNow + 1h);
    REQUIRE(o.verdict.result == v1::PICKUP_RESULT_OPEN);
    return request_id;
  }

  std::int64_t addOperator(const std::string& login, const std::string& kiosk) {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    const auto id = tx.exec_params1(
                          "INSERT INTO accounts (login, role, password_hash, created_at) "
                          "VALUES ($1, 'operator', '$argon2id$test', now()) RETURNING id",
                          login)[0]
                        .as<std::int64_t>();
    tx.exec_params("INSERT INTO operator_kiosks (account_id, kiosk_id) VALUES ($1, $2)", id, kiosk);
    tx.commit();
    return id;
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
  int count(const std::string& sql) { return query1(sql)[0].as<int>(); }
  void exec(const std::string& sql) {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    tx.exec(sql);
    tx.commit();
  }

  lostcard::test::PgTestDb db;
  Store store;
  std::int64_t card = 0;
};

PickupReport report(const std::string& request_id, const std::string& deposit_id,
                    v1::PickupOutcome outcome) {
  return {"kiosk-1", request_id, deposit_id, outcome, "test"};
}

}  // namespace

TEST_CASE("TAKEN collects the deposit once; a resend changes nothing", "[box]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 2);
  const auto request = f.open("kiosk-1", 2, deposit);
  CHECK(f.status(deposit) == "releasing");

  const auto done =
      f.store.recordPickupDone(report(request, deposit, v1::PICKUP_OUTCOME_TAKEN), kNow + 2h);
  CHECK(done.ok);
  CHECK_FALSE(done.repeated);
  CHECK(done.collected == 1);
  CHECK(f.status(deposit) == "collected");
  CHECK(f.query1("SELECT collected_by FROM deposits")[0].as<std::string>() == "pickup");
  CHECK(f.query1("SELECT collected_at = '2024-05-01T14:00:00Z' FROM deposits")[0].as<bool>());
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'pickup.done' AND result = "
                "'taken'") == 1);

  const auto again =
      f.store.recordPickupDone(report(request, deposit, v1::PICKUP_OUTCOME_TAKEN), kNow + 3h);
  CHECK(again.ok);
  CHECK(again.repeated);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'pickup.done'") == 1);
  CHECK(f.query1("SELECT collected_at = '2024-05-01T14:00:00Z' FROM deposits")[0].as<bool>());
}

TEST_CASE("NOT_TAKEN puts the deposit back in its slot; the used code stays used", "[box]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 4);
  const auto code = f.store.waitingNotice(deposit)->pickup_code();
  const auto request = f.open("kiosk-1", 4, deposit);
  // The notice still on its way carries the used code: withdrawn, so no one counts on it.
  CHECK_FALSE(f.store.waitingNotice(deposit).has_value());
  CHECK(f.count("SELECT count(*) FROM notice_outbox WHERE last_error LIKE 'withdrawn%' "
                "AND payload_sealed IS NULL") == 1);
  REQUIRE(
      f.store.recordPickupDone(report(request, deposit, v1::PICKUP_OUTCOME_NOT_TAKEN), kNow + 2h)
          .ok);
  CHECK(f.status(deposit) == "stored");
  // The old code opens nothing; a new one does.
  const auto old =
      f.store.redeemPickupCode({"kiosk-1", lostcard::wire::newUuid(), 4, code}, kNow + 3h);
  CHECK(old.verdict.result == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  REQUIRE(f.store.issueNewPickupCode(deposit, "ada", kNow + 3h).ok);
  const auto fresh = f.store.redeemPickupCode(
      {"kiosk-1", lostcard::wire::newUuid(), 4, f.store.waitingNotice(deposit)->pickup_code()},
      kNow + 4h);
  CHECK(fresh.verdict.result == v1::PICKUP_RESULT_OPEN);
}

TEST_CASE("DOOR_FAILED puts the deposit back and raises an alert for operators", "[box]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 1);
  const auto request = f.open("kiosk-1", 1, deposit);
  auto r = report(request, deposit, v1::PICKUP_OUTCOME_DOOR_FAILED);
  r.detail = "the slot's latch did not release";
  REQUIRE(f.store.recordPickupDone(r, kNow + 2h).ok);
  CHECK(f.status(deposit) == "stored");
  CHECK(f.count("SELECT count(*) FROM kiosk_alerts WHERE kind = 'slot_door_failed' AND "
                "deposit_id = '" +
                deposit + "' AND resolved_at IS NULL") == 1);
  CHECK(f.query1("SELECT done_outcome FROM pickup_attempts WHERE result = 'open'")[0]
            .as<std::string>() == "door_failed");
}

TEST_CASE("a pickup report is refused without an OPEN answer for that deposit", "[box]") {
  Fixture f;
  const auto deposit = f.storeCard("kiosk-1", 0);
  const auto other = f.storeCard("kiosk-1", 5);
  // No request ever opened it.
  const auto none = f.store.recordPickupDone(
      report(lostcard::wire::newUuid(), deposit, v1::PICKUP_OUTCOME_TAKEN), kNow + 2h);
  CHECK_FALSE(none.ok);
  CHECK(f.status(deposit) == "stored");
  const auto request = f.open("kiosk-1", 0, deposit);
  // The request opened `deposit`, not `other`.
  CHECK_FALSE(
      f.store.recordPickupDone(report(request, other, v1::PICKUP_OUTCOME_TAKEN), kNow + 2h).ok);
  // Another kiosk cannot report this kiosk's request.
  auto foreign = report(request, deposit, v1::PICKUP_OUTCOME_TAKEN);
  foreign.kiosk_id = "kiosk-2";
  CHECK_FALSE(f.store.recordPickupDone(foreign, kNow + 2h).ok);
  CHECK(f.status(deposit) == "releasing");
  CHECK(f.status(other) == "stored");
  CHECK_THROWS_AS(
      f.store.recordPickupDone(report("not-a-uuid", deposit, v1::PICKUP_OUTCOME_TAKEN), kNow),
      std::invalid_argument);
}

TEST_CASE("an operator's box code opens only their kiosks' bins; the bin's cards are collected",
          "[box]") {
  Fixture f;
  const auto east = f.addOperator("op-east", "kiosk-1");
  f.addOperator("op-west", "kiosk-2");
  f.store.setOperatorCode("op-east", "111-222-3333", kNow);
  f.store.setOperatorCode("op-west", "4445556666", kNow);
  CHECK_THROWS_AS(f.store.setOperatorCode("op-east", "12345", kNow), std::invalid_argument);
  CHECK_THROWS_AS(f.store.setOperatorCode("nobody", "1112223333", kNow), std::invalid_argument);
  CHECK(f.count("SELECT count(*) FROM operator_box_codes WHERE code_hash LIKE '%1112223333%'") ==
        0);
  const auto in_bin = f.difficultInBin("kiosk-1");
  const auto other_bin = f.difficultInBin("kiosk-2");
  // A difficult card an operator marked for return to its issuer still lies in the bin too.
  const auto returning = f.difficultInBin("kiosk-1");
  f.exec(
      "UPDATE deposits SET status = 'to_return', return_reason = 'operator', "
      "return_marked_at = now() WHERE id = '" +
      returning + "'");

  // The operator of another kiosk.
  const auto west_here =
      f.store.checkOperatorCode("kiosk-1", lostcard::wire::newUuid(), "4445556666", kNow);
  CHECK(west_here.result == v1::OPERATOR_AUTH_RESULT_REFUSED);
  CHECK(west_here.account_id.empty());

  const std::string request = lostcard::wire::newUuid();
  const auto ok = f.store.checkOperatorCode("kiosk-1", request, "1112223333", kNow + 1min);
  CHECK(ok.result == v1::OPERATOR_AUTH_RESULT_OK);
  CHECK(ok.account_id == std::to_string(east));
  // A resend gets the first answer.
  const auto resent = f.store.checkOperatorCode("kiosk-1", request, "", kNow + 2min);
  CHECK(resent.repeated);
  CHECK(resent.result == v1::OPERATOR_AUTH_RESULT_OK);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'bin.open'") == 1);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'bin.open_refused'") == 1);

  // Refused before any OK opening of that request; the other kiosk's deposit is not touched.
  CHECK_FALSE(
      f.store.recordBinEmptied("kiosk-1", lostcard::wire::newUuid(), {in_bin}, kNow + 3min).ok);
  CHECK_FALSE(f.store.recordBinEmptied("kiosk-2", request, {other_bin}, kNow + 3min).ok);
  const auto emptied =
      f.store.recordBinEmptied("kiosk-1", request, {in_bin, returning, other_bin}, kNow + 5min);
  CHECK(emptied.ok);
  CHECK(emptied.collected == 2);
  CHECK(f.status(in_bin) == "collected");
  CHECK(f.status(returning) == "collected");
  CHECK(f.status(other_bin) == "stored");
  CHECK(f.query1("SELECT collected_by || ':' || collected_by_account FROM deposits WHERE id = '" +
                 in_bin + "'")[0]
            .as<std::string>() == "operator:" + std::to_string(east));
  const auto again = f.store.recordBinEmptied("kiosk-1", request, {in_bin}, kNow + 6min);
  CHECK(again.ok);
  CHECK(again.repeated);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'bin.emptied'") == 1);
}

TEST_CASE("refused operator codes throttle the kiosk, the right code too", "[box]") {
  Fixture f;
  f.addOperator("op-east", "kiosk-1");
  f.store.setOperatorCode("op-east", "1112223333", kNow);
  for (int i = 0; i < 3; ++i) {
    const auto wrong = f.store.checkOperatorCode("kiosk-1", lostcard::wire::newUuid(), "9998887777",
                                                 kNow + std::chrono::seconds(i));
    CHECK(wrong.result == v1::OPERATOR_AUTH_RESULT_REFUSED);
  }
  const auto throttled =
      f.store.checkOperatorCode("kiosk-1", lostcard::wire::newUuid(), "1112223333", kNow + 10s);
  CHECK(throttled.result == v1::OPERATOR_AUTH_RESULT_THROTTLED);
  CHECK(throttled.retry_after_ms == (15min - 10s).count() * 1000);
  // Another kiosk is not throttled by this one's wrong codes (no operator there: refused).
  CHECK(f.store.checkOperatorCode("kiosk-2", lostcard::wire::newUuid(), "1112223333", kNow + 10s)
            .result == v1::OPERATOR_AUTH_RESULT_REFUSED);
  // Once the oldest wrong code leaves the window, the right code opens.
  CHECK(
      f.store
          .checkOperatorCode("kiosk-1", lostcard::wire::newUuid(), "1112223333", kNow + 15min + 1s)
          .result == v1::OPERATOR_AUTH_RESULT_OK);
}

TEST_CASE(
    "an operator's session lists this kiosk's return slots and cards to restock; the "
    "cards taken from return slots are collected",
    "[box]") {
  Fixture f;
  const auto east = f.addOperator("op-east", "kiosk-1");
  f.store.setOperatorCode("op-east", "1112223333", kNow);
  const auto returning = f.storeCard("kiosk-1", 4);
  const auto staying = f.storeCard("kiosk-1", 5);
  const auto other_returning = f.storeCard("kiosk-2", 4);
  for (const auto& id : {returning, other_returning}) {
    f.exec(
        "UPDATE deposits SET status = 'to_return', return_reason = 'unclaimed', "
        "return_marked_at = now() WHERE id = '" +
        id + "'");
  }
  // A card resolved by hand, taken out of the bin by the operator: waiting to be restocked.
  const auto resolved = f.difficultInBin("kiosk-1");
  f.exec("UPDATE deposits SET status = 'awaiting_restock', decision = 'store', card_id = " +
         std::to_string(f.card) +
         ", last4 = '5556', difficult_reason = NULL, restock_number = 3, collected_at = now() "
         "WHERE id = '" +
         resolved + "'");

  const std::string request = lostcard::wire::newUuid();
  REQUIRE(f.store.checkOperatorCode("kiosk-1", request, "1112223333", kNow).result ==
          v1::OPERATOR_AUTH_RESULT_OK);
  v1::OperatorAuthAnswer answer;
  f.store.fillOperatorSession("kiosk-1", answer);
  REQUIRE(answer.return_slots_size() == 1);  // not the other kiosk's, not a stored card
  CHECK(answer.return_slots(0).slot() == 4);
  CHECK(answer.return_slots(0).deposit_id() == returning);
  REQUIRE(answer.restock_size() == 1);
  CHECK(answer.restock(0).restock_number() == 3);
  CHECK(answer.restock(0).deposit_id() == resolved);
  CHECK(answer.restock(0).last4() == "5556");

  // Refused without an OK opening of that request at that kiosk.
  CHECK_FALSE(
      f.store.recordReturnCollected("kiosk-1", lostcard::wire::newUuid(), {returning}, kNow + 1min)
          .ok);
  CHECK_FALSE(f.store.recordReturnCollected("kiosk-2", request, {other_returning}, kNow).ok);
  CHECK_FALSE(f.store.recordReturnCollected("kiosk-1", request, {"not-a-uuid"}, kNow).ok);
  // Only a card to return, in a slot, of this kiosk, is collected.
  const auto taken = f.store.recordReturnCollected(
      "kiosk-1", request, {returning, staying, other_returning}, kNow + 2min);
  CHECK(taken.ok);
  CHECK(taken.collected == 1);
  CHECK(f.status(returning) == "collected");
  CHECK(f.status(staying) == "stored");
  CHECK(f.status(other_returning) == "to_return");
  CHECK(f.query1("SELECT collected_by || ':' || collected_by_account FROM deposits WHERE id = '" +
                 returning + "'")[0]
            .as<std::string>() == "operator:" + std::to_string(east));
  const auto again = f.store.recordReturnCollected("kiosk-1", request, {returning}, kNow + 3min);
  CHECK(again.ok);
  CHECK(again.repeated);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'return.collected'") == 1);

  // Put back in a slot, the resolved card is stored again, no longer collected, and its holder's
  // notice is queued.
  v1::Location slot;
  slot.set_slot(7);
  REQUIRE(f.store.recordStored("kiosk-1", resolved, slot, kNow + 4min).ok);
  CHECK(f.status(resolved) == "stored");
  CHECK(f.count("SELECT count(*) FROM deposits WHERE collected_at IS NULL AND id = '" + resolved +
                "'") == 1);
  CHECK(f.count("SELECT count(*) FROM notice_outbox WHERE deposit_id = '" + resolved + "'") == 1);
  v1::OperatorAuthAnswer after;
  f.store.fillOperatorSession("kiosk-1", after);
  CHECK(after.restock_size() == 0);
  CHECK(after.return_slots_size() == 0);
}

TEST_CASE(
    "a holder's card emptied from the bin gets a restock number; with all 999 taken it "
    "waits and gets the first one freed",
    "[box]") {
  Fixture f;
  f.addOperator("op-east", "kiosk-1");
  f.store.setOperatorCode("op-east", "1112223333", kNow);
  // 998 cards resolved by hand earlier wait with the operator, numbered 1..998.
  f.exec(
      "INSERT INTO deposits (id, kiosk_id, status, decision, card_id, last4, location_kind, "
      "  decided_at, stored_at, collected_at, restock_number) "
      "SELECT gen_random_uuid(), 'kiosk-1', 'awaiting_restock', 'store', " +
      std::to_string(f.card) +
      ", '5556', 'bin', now(), now(), now(), n FROM generate_series(1, 998) n");
  // Two of a known holder's cards went to the bin.
  const auto first = f.holderCardInBin("kiosk-1");
  const auto second = f.holderCardInBin("kiosk-1");

  const std::string request = lostcard::wire::newUuid();
  REQUIRE(f.store.checkOperatorCode("kiosk-1", request, "1112223333", kNow + 1min).result ==
          v1::OPERATOR_AUTH_RESULT_OK);
  REQUIRE(f.store.recordBinEmptied("kiosk-1", request, {first, second}, kNow + 2min).collected ==
          2);
  const auto number = [&](const std::string& id) {
    return f.query1("SELECT coalesce(restock_number, 0) FROM deposits WHERE id = '" + id + "'")[0]
        .as<int>();
  };
  CHECK(f.status(first) == "awaiting_restock");
  CHECK(f.status(second) == "awaiting_restock");
  // One gets the last number; the other (emptied at the same moment) waits for one.
  const auto numbered = number(first) == 999 ? first : second;
  const auto waiting = numbered == first ? second : first;
  CHECK(number(numbered) == 999);
  CHECK(number(waiting) == 0);
  v1::OperatorAuthAnswer full;
  f.store.fillOperatorSession("kiosk-1", full);
  CHECK(full.restock_size() == 999);

  // Card #5 is put back in a slot: its number is free, and the waiting card gets it with the
  // next operator session's list.
  const auto fifth =
      f.query1("SELECT id::text FROM deposits WHERE restock_number = 5")[0].as<std::string>();
  v1::Location slot;
  slot.set_slot(2);
  REQUIRE(f.store.recordStored("kiosk-1", fifth, slot, kNow + 3min).ok);
  v1::OperatorAuthAnswer after;
  f.store.fillOperatorSession("kiosk-1", after);
  CHECK(number(waiting) == 5);
  REQUIRE(after.restock_size() == 999);
  CHECK(after.restock(4).restock_number() == 5);
  CHECK(after.restock(4).deposit_id() == waiting);
}

// ---- A card put back at the box: its number is checked against the deposit's card ----

namespace {

constexpr const char* kAdaNumber = "4000 0566 5566 5556";
constexpr const char* kMarieNumber = "4556737586899855";  // another holder's, valid

// A difficult card of `kiosk` resolved by hand to Ada's card: awaiting restock with `number`.
std::string resolvedToAda(Fixture& f, const std::string& kiosk, int number) {
  const auto id = f.difficultInBin(kiosk);
  f.exec("UPDATE deposits SET status = 'awaiting_restock', decision = 'store', card_id = " +
         std::to_string(f.card) + ", last4 = '5556', difficult_reason = NULL, restock_number = " +
         std::to_string(number) + ", collected_at = now() WHERE id = '" + id + "'");
  return id;
}

v1::RestockCheck restockCheck(const std::string& deposit_id, const std::string& number,
                              const std::string& request_id = lostcard::wire::newUuid()) {
  v1::RestockCheck check;
  check.set_request_id(request_id);
  check.set_deposit_id(deposit_id);
  check.set_number(number);
  return check;
}

v1::RestockCheckAnswer answerOf(const std::variant<v1::RestockCheckAnswer, Refusal>& result) {
  REQUIRE(std::holds_alternative<v1::RestockCheckAnswer>(result));
  return std::get<v1::RestockCheckAnswer>(result);
}

struct RestockFixture : Fixture {
  RestockFixture() : service(store, hasher, {}, {}) {
    store.upsertHolder("marie", "Marie Curie", "http://127.0.0.1:9/marie",
                       "marie-secret-0123456789");
    store.enrollCard(hasher, "northwind", "marie", kMarieNumber);
  }
  v1::RestockCheckAnswer check(const std::string& kiosk, const std::string& deposit_id,
                               const std::string& number, std::chrono::system_clock::time_point at,
                               const std::string& request_id = lostcard::wire::newUuid()) {
    return answerOf(
        service.handleRestockCheck(kiosk, restockCheck(deposit_id, number, request_id), at));
  }
  const CardHasher hasher{"test-key", std::string(32, 'k')};
  DepositService service;
};

}  // namespace

TEST_CASE("a restock check answers OK only for the deposit's own card number", "[box][restock]") {
  RestockFixture f;
  const auto resolved = resolvedToAda(f, "kiosk-1", 1);
  const auto others = resolvedToAda(f, "kiosk-2", 1);
  const auto stored = f.storeCard("kiosk-1", 3);

  // Another holder's valid number: a mismatch, and nothing about the deposit changes.
  const auto mismatch = f.check("kiosk-1", resolved, kMarieNumber, kNow);
  CHECK(mismatch.result() == v1::RESTOCK_CHECK_RESULT_MISMATCH);
  CHECK_FALSE(mismatch.message().empty());
  CHECK(f.status(resolved) == "awaiting_restock");
  CHECK(f.count("SELECT restock_number FROM deposits WHERE id = '" + resolved + "'") == 1);
  CHECK(f.count("SELECT count(*) FROM notice_outbox WHERE deposit_id = '" + resolved + "'") == 0);

  // The deposit's own number, typed with spaces: OK (and still nothing changes until the kiosk
  // reports the card in a slot).
  const auto ok = f.check("kiosk-1", resolved, kAdaNumber, kNow + 1s);
  CHECK(ok.result() == v1::RESTOCK_CHECK_RESULT_OK);
  CHECK(f.status(resolved) == "awaiting_restock");

  // Another kiosk's deposit, and a card already in a slot, are not this kiosk's to restock.
  CHECK(f.check("kiosk-1", others, kAdaNumber, kNow + 2s).result() ==
        v1::RESTOCK_CHECK_RESULT_NOT_WAITING);
  CHECK(f.check("kiosk-1", stored, kAdaNumber, kNow + 3s).result() ==
        v1::RESTOCK_CHECK_RESULT_NOT_WAITING);
  CHECK(f.check("kiosk-1", lostcard::wire::newUuid(), kAdaNumber, kNow + 4s).result() ==
        v1::RESTOCK_CHECK_RESULT_NOT_WAITING);
  // Not a card number (bad check digit): refused, but not counted against the kiosk.
  CHECK(f.check("kiosk-1", resolved, "4000056655665557", kNow + 5s).result() ==
        v1::RESTOCK_CHECK_RESULT_MISMATCH);

  // Malformed ids are refused (an error Ack), with nothing recorded.
  CHECK(std::holds_alternative<Refusal>(
      f.service.handleRestockCheck("kiosk-1", restockCheck(resolved, kAdaNumber, "x"), kNow)));
  CHECK(std::holds_alternative<Refusal>(
      f.service.handleRestockCheck("kiosk-1", restockCheck("not-a-uuid", kAdaNumber), kNow)));

  // Audited, the number never.
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'restock.check'") == 6);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'restock.check' AND "
                "result = 'mismatch'") == 1);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE detail LIKE '%5556%' OR "
                "detail LIKE '%9855%' OR detail LIKE '%4000%'") == 0);

  // The kiosk's next report of the card in a slot resumes its path (pickup code, notice).
  v1::Location slot;
  slot.set_slot(5);
  REQUIRE(f.store.recordStored("kiosk-1", resolved, slot, kNow + 1min).ok);
  CHECK(f.check("kiosk-1", resolved, kAdaNumber, kNow + 2min).result() ==
        v1::RESTOCK_CHECK_RESULT_NOT_WAITING);
}

TEST_CASE("a holder's card taken out of the bin is checked against the card it was decided for",
          "[box][restock]") {
  RestockFixture f;
  f.addOperator("op-east", "kiosk-1");
  f.store.setOperatorCode("op-east", "1112223333", kNow);
  // Ada's card, recognized, that went to the bin (no free slot, say), then left it.
  const std::string deposit = f.holderCardInBin("kiosk-1");
  const std::string request = lostcard::wire::newUuid();
  REQUIRE(f.store.checkOperatorCode("kiosk-1", request, "1112223333", kNow).result ==
          v1::OPERATOR_AUTH_RESULT_OK);
  REQUIRE(f.store.recordBinEmptied("kiosk-1", request, {deposit}, kNow + 1min).ok);
  REQUIRE(f.status(deposit) == "awaiting_restock");

  CHECK(f.check("kiosk-1", deposit, kMarieNumber, kNow + 2min).result() ==
        v1::RESTOCK_CHECK_RESULT_MISMATCH);
  CHECK(f.check("kiosk-1", deposit, kAdaNumber, kNow + 3min).result() ==
        v1::RESTOCK_CHECK_RESULT_OK);
}

TEST_CASE(
    "mismatches throttle the kiosk's restock checks, the right number too; a resend gets "
    "the first answer",
    "[box][restock]") {
  RestockFixture f;
  const auto resolved = resolvedToAda(f, "kiosk-1", 1);
  const auto elsewhere = resolvedToAda(f, "kiosk-2", 1);
  const std::string first = lostcard::wire::newUuid();
  for (int i = 0; i < 3; ++i) {  // operator_code_tries = 3
    CHECK(f.check("kiosk-1", resolved, kMarieNumber, kNow + std::chrono::seconds(i),
                  i == 0 ? first : lostcard::wire::newUuid())
              .result() == v1::RESTOCK_CHECK_RESULT_MISMATCH);
  }
  const auto throttled = f.check("kiosk-1", resolved, kAdaNumber, kNow + 10s);
  CHECK(throttled.result() == v1::RESTOCK_CHECK_RESULT_THROTTLED);
  CHECK(throttled.retry_after_ms() == (15min - 10s).count() * 1000);
  // A resend of the first check is answered as the first time, without being counted again.
  CHECK(f.check("kiosk-1", resolved, kAdaNumber, kNow + 11s, first).result() ==
        v1::RESTOCK_CHECK_RESULT_MISMATCH);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'restock.check' AND "
                "result = 'mismatch'") == 3);
  // Another kiosk is not throttled by this one's mismatches.
  CHECK(f.check("kiosk-2", elsewhere, kAdaNumber, kNow + 12s).result() ==
        v1::RESTOCK_CHECK_RESULT_OK);
  // Once the oldest mismatch leaves the window, the right number is accepted.
  CHECK(f.check("kiosk-1", resolved, kAdaNumber, kNow + 15min + 1s).result() ==
        v1::RESTOCK_CHECK_RESULT_OK);
  CHECK(f.status(resolved) == "awaiting_restock");
}
