// Reconciliation against a real PostgreSQL (ctest fixture "pg"): Store::recordInventory keeps
// each kiosk's latest Inventory, Store::reconcile compares it with the deposits table.
#include <algorithm>
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "lostcard/cloud/store.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

constexpr const char* kNumber = "4000056655665556";
const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z

// A migrated registry with one issuer, holder, enrolled card and two kiosks.
struct Fixture {
  lostcard::test::PgTestDb db;
  Store store{StoreOptions{.conninfo = db.conninfo(), .pool_size = 2}};
  CardHasher hasher{"test-key", std::string(32, 'k')};
  std::int64_t card_id = 0;

  Fixture() {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", "http://127.0.0.1:9/holders/ada",
                       "ada-secret-0123456789");
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "", 12});
    store.upsertKiosk({"kiosk-2", "Airport", "Arrivals hall", 47.45, 8.56, "", 12});
    card_id = store.enrollCard(hasher, "northwind", "ada", kNumber);
  }

  // A deposit decided at `at`: "store" (for Ada's card) or difficult.
  std::string decided(bool store_it, std::chrono::system_clock::time_point at,
                      const std::string& kiosk = "kiosk-1") {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = kiosk;
    d.store = store_it;
    if (store_it) {
      d.card_id = card_id;
      d.last4 = "5556";
    } else {
      d.reason = v1::DIFFICULT_REASON_UNREADABLE;
    }
    store.recordDecision(d, at);
    return d.deposit_id;
  }
  // A deposit decided and then stored at `where` ("bin" or a slot index).
  std::string storedIn(std::optional<std::uint32_t> slot, std::chrono::system_clock::time_point at,
                       const std::string& kiosk = "kiosk-1") {
    const auto id = decided(slot.has_value(), at, kiosk);
    v1::Location l;
    if (slot) {
      l.set_slot(*slot);
    } else {
      l.mutable_bin();
    }
    REQUIRE(store.recordStored(kiosk, id, l, at).ok);
    return id;
  }
};

struct InventoryBuilder {
  v1::Inventory inv;
  InventoryBuilder(std::uint64_t seq = 1, std::int64_t taken_at_ms = 1000) {
    inv.set_journal_seq(seq);
    inv.set_taken_at_ms(taken_at_ms);
    inv.set_slots_total(12);
    inv.set_bin_capacity(50);
  }
  InventoryBuilder& slot(std::uint32_t index, const std::string& id, bool pending = false) {
    auto* c = inv.add_slots();
    c->set_slot(index);
    c->set_deposit_id(id);
    c->set_pending(pending);
    return *this;
  }
  InventoryBuilder& bin(const std::string& id) {
    inv.add_bin()->set_deposit_id(id);
    return *this;
  }
  InventoryBuilder& tray(const std::string& id) {
    inv.add_tray()->set_deposit_id(id);
    return *this;
  }
  InventoryBuilder& uncertain(const std::string& id, const std::string& last_known) {
    auto* u = inv.add_uncertain();
    u->set_deposit_id(id);
    u->set_last_known(last_known);
    u->set_detail("move failed: sorter stuck");
    return *this;
  }
};

const ReconcileRow* rowOf(const Reconciliation& r, const std::string& deposit_id) {
  const auto it = std::find_if(r.rows.begin(), r.rows.end(),
                               [&](const auto& row) { return row.deposit_id == deposit_id; });
  return it == r.rows.end() ? nullptr : &*it;
}

}  // namespace

TEST_CASE("an inventory that matches the cloud's records has no disagreement", "[reconcile]") {
  Fixture f;
  const auto in_slot = f.storedIn(3, kNow);
  const auto in_bin = f.storedIn(std::nullopt, kNow + 1s);
  const auto on_tray = f.decided(true, kNow + 2s);   // decided, not yet moved
  const auto offline = f.decided(false, kNow + 3s);  // stored offline, decision on its way
  const auto other_kiosk = f.storedIn(1, kNow + 4s, "kiosk-2");

  REQUIRE(f.store.recordInventory("kiosk-1",
                                  InventoryBuilder()
                                      .slot(3, in_slot)
                                      .slot(7, offline, /*pending=*/true)
                                      .bin(in_bin)
                                      .tray(on_tray)
                                      .inv,
                                  kNow + 10s));
  const auto r = f.store.reconcile("kiosk-1");
  CHECK(r.has_inventory);
  CHECK_FALSE(r.stale);
  CHECK(r.journal_seq == 1);
  CHECK(r.slots_total == 12);
  CHECK(r.bin_capacity == 50);
  CHECK(r.slots_used == 2);
  CHECK(r.bin_count == 1);
  CHECK(r.disagreements == 0);
  REQUIRE(r.rows.size() == 4);
  CHECK(rowOf(r, other_kiosk) == nullptr);

  // Slots first by index, then the bin, then the tray.
  CHECK(r.rows[0].deposit_id == in_slot);
  CHECK(r.rows[0].place == "slot:3");
  CHECK(r.rows[0].kiosk_view == "slot:3");
  CHECK(r.rows[0].cloud_view == "slot:3");
  CHECK(r.rows[0].last4 == "5556");
  CHECK(r.rows[0].status == "stored");
  CHECK(r.rows[0].verdict == Verdict::kAgree);
  CHECK(r.rows[1].deposit_id == offline);
  CHECK(r.rows[1].verdict == Verdict::kInFlight);
  CHECK(r.rows[1].pending);
  CHECK(r.rows[2].deposit_id == in_bin);
  CHECK(r.rows[2].place == "bin");
  CHECK(r.rows[2].verdict == Verdict::kAgree);
  CHECK(r.rows[3].deposit_id == on_tray);
  CHECK(r.rows[3].cloud_view == "no place yet");
  CHECK(r.rows[3].verdict == Verdict::kInFlight);
}

TEST_CASE("each kind of disagreement is flagged", "[reconcile]") {
  Fixture f;
  const auto never_heard = lostcard::wire::newUuid();
  const auto elsewhere = f.storedIn(2, kNow);
  const auto missing_from_slot = f.storedIn(6, kNow);
  const auto missing_from_bin = f.storedIn(std::nullopt, kNow);
  const auto no_place = f.decided(true, kNow);     // the kiosk says stored, the cloud has no place
  const auto not_listed = f.decided(false, kNow);  // the cloud decided it, the kiosk forgot it
  const auto uncertain = f.storedIn(9, kNow);
  const auto taken_over = f.storedIn(10, kNow);  // the kiosk has another card in slot 10

  REQUIRE(f.store.recordInventory("kiosk-1",
                                  InventoryBuilder()
                                      .slot(0, never_heard)
                                      .slot(4, elsewhere)
                                      .slot(8, no_place)
                                      .slot(10, elsewhere)
                                      .uncertain(uncertain, "jam")
                                      .inv,
                                  kNow + 10s));
  const auto r = f.store.reconcile("kiosk-1");
  REQUIRE_FALSE(r.stale);

  const auto* unknown = rowOf(r, never_heard);
  REQUIRE(unknown != nullptr);
  CHECK(unknown->verdict == Verdict::kUnknownToCloud);
  CHECK(unknown->cloud_view == "-");
  CHECK(unknown->status == "-");

  // `elsewhere` is listed twice by this (broken) kiosk: slot 4 and slot 10; both rows disagree.
  const auto elsewhere_rows = std::count_if(r.rows.begin(), r.rows.end(), [&](const auto& row) {
    return row.deposit_id == elsewhere && row.verdict == Verdict::kElsewhere;
  });
  CHECK(elsewhere_rows == 2);

  const auto* slot_gone = rowOf(r, missing_from_slot);
  REQUIRE(slot_gone != nullptr);
  CHECK(slot_gone->verdict == Verdict::kMissingAtKiosk);
  CHECK(slot_gone->place == "slot:6");
  CHECK(slot_gone->kiosk_view == "-");
  CHECK_THAT(slot_gone->note, Catch::Contains("slot:6 is empty"));

  const auto* bin_gone = rowOf(r, missing_from_bin);
  REQUIRE(bin_gone != nullptr);
  CHECK(bin_gone->verdict == Verdict::kMissingAtKiosk);
  CHECK(bin_gone->place == "bin");

  const auto* placeless = rowOf(r, no_place);
  REQUIRE(placeless != nullptr);
  CHECK(placeless->verdict == Verdict::kNoPlaceInCloud);
  CHECK(placeless->kiosk_view == "slot:8");
  CHECK(placeless->cloud_view == "no place yet");

  const auto* forgotten = rowOf(r, not_listed);
  REQUIRE(forgotten != nullptr);
  CHECK(forgotten->verdict == Verdict::kMissingAtKiosk);

  const auto* unsure = rowOf(r, uncertain);
  REQUIRE(unsure != nullptr);
  CHECK(unsure->verdict == Verdict::kUncertain);
  CHECK(unsure->kiosk_view == "jam (uncertain)");
  CHECK(unsure->cloud_view == "slot:9");
  CHECK(unsure->note == "move failed: sorter stuck");

  const auto* replaced = rowOf(r, taken_over);
  REQUIRE(replaced != nullptr);
  CHECK(replaced->verdict == Verdict::kMissingAtKiosk);
  CHECK_THAT(replaced->note, Catch::Contains("slot:10 holds " + elsewhere));

  // unknown + 2 elsewhere + slot gone + bin gone + no place + not listed + uncertain + replaced
  CHECK(r.disagreements == 9);
  for (const auto& row : r.rows) {
    CHECK(isDisagreement(row.verdict));
  }
}

TEST_CASE("a snapshot older than the cloud's latest record is stale, not a disagreement",
          "[reconcile]") {
  Fixture f;
  const auto first = f.storedIn(1, kNow);
  REQUIRE(f.store.recordInventory("kiosk-1", InventoryBuilder(1).slot(1, first).inv, kNow + 5s));
  CHECK(f.store.reconcile("kiosk-1").disagreements == 0);

  // A card decided and stored after the snapshot arrived: the snapshot cannot know it.
  const auto later = f.storedIn(2, kNow + 6s);
  auto r = f.store.reconcile("kiosk-1");
  CHECK(r.stale);
  REQUIRE(r.latest_record_at);
  CHECK(*r.latest_record_at == kNow + 6s);
  CHECK(r.disagreements == 0);
  const auto* row = rowOf(r, later);
  REQUIRE(row != nullptr);
  CHECK(row->verdict == Verdict::kMissingAtKiosk);  // shown, but not counted

  // The next inventory brings the two sides together again.
  REQUIRE(f.store.recordInventory("kiosk-1", InventoryBuilder(3).slot(1, first).slot(2, later).inv,
                                  kNow + 7s));
  r = f.store.reconcile("kiosk-1");
  CHECK_FALSE(r.stale);
  CHECK(r.disagreements == 0);
  CHECK(r.slots_used == 2);
}

TEST_CASE("an older inventory does not replace a newer one", "[reconcile]") {
  Fixture f;
  const auto a = f.storedIn(1, kNow);
  REQUIRE(f.store.recordInventory("kiosk-1", InventoryBuilder(5, 2000).slot(1, a).inv, kNow + 1s));
  // Taken earlier, fewer moves: an old message that arrived late.
  CHECK_FALSE(f.store.recordInventory("kiosk-1", InventoryBuilder(4, 1000).inv, kNow + 2s));
  auto r = f.store.reconcile("kiosk-1");
  CHECK(r.journal_seq == 5);
  CHECK(r.received_at == kNow + 1s);
  CHECK(r.slots_used == 1);

  // The same journal state sent again after a reconnect refreshes the time it was received.
  CHECK(f.store.recordInventory("kiosk-1", InventoryBuilder(5, 2500).slot(1, a).inv, kNow + 3s));
  CHECK(f.store.reconcile("kiosk-1").received_at == kNow + 3s);

  // A fresh journal starts its sequence again; its later clock says it is newer.
  CHECK(f.store.recordInventory("kiosk-1", InventoryBuilder(0, 3000).inv, kNow + 4s));
  r = f.store.reconcile("kiosk-1");
  CHECK(r.journal_seq == 0);
  CHECK(r.disagreements == 1);  // and the cloud notices that slot 1's card is gone
}

TEST_CASE("without an inventory the cloud's records are shown unchecked", "[reconcile]") {
  Fixture f;
  const auto a = f.storedIn(4, kNow);
  const auto b = f.storedIn(std::nullopt, kNow);
  const auto r = f.store.reconcile("kiosk-1");
  CHECK_FALSE(r.has_inventory);
  CHECK(r.slots_total == 12);
  CHECK(r.slots_used == 1);
  CHECK(r.bin_count == 1);
  CHECK(r.disagreements == 0);
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].deposit_id == a);
  CHECK(r.rows[0].verdict == Verdict::kUnchecked);
  CHECK(r.rows[1].deposit_id == b);
}

TEST_CASE("inventories are checked and kept readable", "[reconcile]") {
  Fixture f;
  CHECK_THROWS_AS(
      f.store.recordInventory("kiosk-1", InventoryBuilder().slot(0, "not-a-uuid").inv, kNow),
      std::invalid_argument);
  CHECK_THROWS_AS(f.store.recordInventory("kiosk-1", InventoryBuilder().bin("x").inv, kNow),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      f.store.recordInventory("kiosk-1", InventoryBuilder().uncertain("x", "jam").inv, kNow),
      std::invalid_argument);
  CHECK_THROWS_AS(f.store.recordInventory("kiosk-9", InventoryBuilder().inv, kNow),
                  pqxx::foreign_key_violation);

  const auto a = f.storedIn(1, kNow);
  REQUIRE(f.store.recordInventory("kiosk-1", InventoryBuilder(7).slot(1, a).inv, kNow + 1s));
  // Operators can read the snapshot with psql.
  pqxx::connection c(f.db.conninfo());
  pqxx::read_transaction tx(c);
  const auto row = tx.exec1(
      "SELECT inventory->'slots'->0->>'deposit_id', journal_seq FROM kiosk_inventories "
      "WHERE kiosk_id = 'kiosk-1'");
  CHECK(row[0].as<std::string>() == a);
  CHECK(row[1].as<int>() == 7);

  CHECK(f.store.listKioskIds() == std::vector<std::string>{"kiosk-1", "kiosk-2"});
}
