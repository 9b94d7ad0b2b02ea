// reconcileInventory(): the pure comparison behind Store::reconcile, for the cases the database
// test cannot make yet (collected cards) and the ordering of rows.
#include <catch2/catch.hpp>

#include "lostcard/cloud/reconcile.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

const auto kReceived = std::chrono::system_clock::time_point(1714564800s);

InventorySnapshot snapshot() {
  InventorySnapshot s;
  s.inventory.set_journal_seq(9);
  s.inventory.set_slots_total(24);
  s.inventory.set_bin_capacity(10);
  s.received_at = kReceived;
  return s;
}

void addSlot(InventorySnapshot& s, std::uint32_t slot, const std::string& id) {
  auto* c = s.inventory.add_slots();
  c->set_slot(slot);
  c->set_deposit_id(id);
}

}  // namespace

TEST_CASE("a card the cloud has as collected must not be in the box", "[reconcile]") {
  auto s = snapshot();
  addSlot(s, 2, "a");
  const std::vector<CloudDeposit> cloud = {{"a", "collected", "slot:2", "1234"},
                                           {"b", "collected", "slot:3", "9999"}};
  const auto r = reconcileInventory("k", s, cloud, kReceived - 1s, 24);
  REQUIRE(r.rows.size() == 1);  // "b" is gone on both sides: nothing to show
  CHECK(r.rows[0].deposit_id == "a");
  CHECK(r.rows[0].cloud_view == "collected");
  CHECK(r.rows[0].verdict == Verdict::kElsewhere);
  CHECK(r.disagreements == 1);
}

TEST_CASE("a card released for pickup and gone from its slot is in flight, not missing",
          "[reconcile]") {
  auto s = snapshot();
  addSlot(s, 2, "a");
  const std::vector<CloudDeposit> cloud = {{"a", "stored", "slot:2", "1234"},
                                           {"b", "releasing", "slot:3", "9999"},
                                           {"c", "stored", "slot:4", "5555"}};
  const auto r = reconcileInventory("k", s, cloud, kReceived - 1s, 24);
  REQUIRE(r.rows.size() == 3);
  CHECK(r.rows[0].verdict == Verdict::kAgree);
  CHECK(r.rows[1].deposit_id == "b");
  CHECK(r.rows[1].verdict == Verdict::kInFlight);
  CHECK(r.rows[2].deposit_id == "c");
  CHECK(r.rows[2].verdict == Verdict::kMissingAtKiosk);
  CHECK(r.disagreements == 1);
}

TEST_CASE("a card resolved by hand is in flight between the bin and its slot", "[reconcile]") {
  auto s = snapshot();
  addSlot(s, 1, "on-its-way");  // put back in slot 1; its CardStored not yet recorded
  auto* tray = s.inventory.add_tray();
  tray->set_deposit_id("on-the-tray");
  // "with-operator" left the bin with the operator (no place); "in-bin-report-due" is still in
  // the bin by the cloud, but the kiosk's bin was emptied (its BinEmptied on its way).
  const std::vector<CloudDeposit> cloud = {
      {"on-its-way", "awaiting_restock", "", "1111"},
      {"on-the-tray", "awaiting_restock", "bin", "2222"},
      {"with-operator", "awaiting_restock", "", "3333"},
      {"in-bin-report-due", "awaiting_restock", "bin", "4444"}};
  const auto r = reconcileInventory("k", s, cloud, kReceived - 1s, 24);
  REQUIRE(r.rows.size() == 4);
  for (const auto& row : r.rows) {
    INFO(row.deposit_id << ": " << row.note);
    CHECK(row.verdict == Verdict::kInFlight);
  }
  CHECK(r.disagreements == 0);
}

TEST_CASE("rows come by slot index, then bin, tray, uncertain, then placeless", "[reconcile]") {
  auto s = snapshot();
  addSlot(s, 10, "s10");
  addSlot(s, 2, "s2");
  s.inventory.add_bin()->set_deposit_id("b");
  s.inventory.add_tray()->set_deposit_id("t");
  s.inventory.add_uncertain()->set_deposit_id("u");
  const std::vector<CloudDeposit> cloud = {{"s10", "stored", "slot:10", ""},
                                           {"s2", "stored", "slot:2", ""},
                                           {"b", "stored", "bin", ""},
                                           {"t", "decided", "", ""},
                                           {"gone", "decided", "", ""}};
  const auto r = reconcileInventory("k", s, cloud, std::nullopt, 24);
  std::vector<std::string> order;
  for (const auto& row : r.rows) {
    order.push_back(row.deposit_id);
  }
  CHECK(order == std::vector<std::string>{"s2", "s10", "b", "t", "u", "gone"});
  CHECK(r.rows[4].kiosk_view == "unknown (uncertain)");
  CHECK(r.rows[4].cloud_view == "-");
  CHECK(r.slots_used == 2);
  CHECK(r.bin_count == 1);
  CHECK(r.disagreements == 2);  // "u" uncertain, "gone" missing at the kiosk
}

TEST_CASE("a record made at the moment the snapshot arrived does not make it stale",
          "[reconcile]") {
  auto s = snapshot();
  addSlot(s, 0, "a");
  const std::vector<CloudDeposit> cloud = {{"a", "stored", "slot:0", ""}};
  CHECK_FALSE(reconcileInventory("k", s, cloud, kReceived, 24).stale);
  CHECK(reconcileInventory("k", s, cloud, kReceived + 1us, 24).stale);
}

TEST_CASE("verdict names are stable words for scripts", "[reconcile]") {
  CHECK(verdictName(Verdict::kAgree) == "ok");
  CHECK(verdictName(Verdict::kInFlight) == "in-flight");
  CHECK(verdictName(Verdict::kUnknownToCloud) == "unknown-to-cloud");
  CHECK(verdictName(Verdict::kElsewhere) == "elsewhere");
  CHECK(verdictName(Verdict::kNoPlaceInCloud) == "no-place-in-cloud");
  CHECK(verdictName(Verdict::kMissingAtKiosk) == "missing-at-kiosk");
  CHECK(verdictName(Verdict::kUncertain) == "uncertain");
  CHECK(verdictName(Verdict::kUnchecked) == "unchecked");
  CHECK_FALSE(isDisagreement(Verdict::kInFlight));
  CHECK(isDisagreement(Verdict::kUncertain));
}
