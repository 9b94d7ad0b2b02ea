// Journal::inventory(): what the journal says each place holds, as the Inventory message the
// kiosk sends the cloud for reconciliation.
#include <algorithm>
#include <catch2/catch.hpp>

#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::kiosk;
namespace v1 = lostcard::v1;

namespace {

std::string freshJournalPath(const std::string& name) {
  return lostcard::test::makeTestDir("journal_inventory_test/" + name) + "/journal.sqlite";
}

void capture(Journal& journal, const std::string& deposit_id, std::int64_t now_ms) {
  auto env = lostcard::wire::makeEnvelope(now_ms);
  env.mutable_card_captured()->set_deposit_id(deposit_id);
  journal.recordCapture(env, now_ms);
}

// A card taken, decided and moved from the tray to `to`.
void store(Journal& journal, const std::string& deposit_id, const Location& to,
           std::int64_t now_ms) {
  capture(journal, deposit_id, now_ms);
  journal.recordDisposition(deposit_id, Decision::store("1234"), now_ms);
  journal.beginMove(deposit_id, Location::tray(), to, "", now_ms);
  journal.finishMove(deposit_id, to, now_ms);
}

const std::string kA = "aaaaaaaa-0000-4000-8000-000000000001";
const std::string kB = "bbbbbbbb-0000-4000-8000-000000000002";
const std::string kC = "cccccccc-0000-4000-8000-000000000003";
const std::string kD = "dddddddd-0000-4000-8000-000000000004";
const std::string kE = "eeeeeeee-0000-4000-8000-000000000005";
const std::string kF = "ffffffff-0000-4000-8000-000000000006";

}  // namespace

TEST_CASE("an empty journal's inventory lists nothing but the box's size", "[journal]") {
  Journal journal(freshJournalPath("empty"));
  const auto inv = journal.inventory(24, 100, 5000);
  CHECK(inv.slots_total() == 24);
  CHECK(inv.bin_capacity() == 100);
  CHECK(inv.taken_at_ms() == 5000);
  CHECK(inv.journal_seq() == 0);
  CHECK(inv.slots_size() == 0);
  CHECK(inv.bin_size() == 0);
  CHECK(inv.tray_size() == 0);
  CHECK(inv.uncertain_size() == 0);
}

TEST_CASE("the inventory puts every deposit in its place", "[journal]") {
  Journal journal(freshJournalPath("places"));
  store(journal, kA, Location::inSlot(5), 1000);
  store(journal, kB, Location::inSlot(1), 1100);
  store(journal, kC, Location::bin(), 1200);
  journal.flag(kC, "kept for an operator");
  capture(journal, kD, 1300);  // on the tray, no decision yet
  // Stored while the cloud was away: in a slot, no decision.
  capture(journal, kE, 1400);
  journal.beginMove(kE, Location::tray(), Location::inSlot(2), "offline", 1400);
  journal.finishMove(kE, Location::inSlot(2), 1450);
  // A failed move: the card jammed.
  capture(journal, kF, 1500);
  journal.recordDisposition(kF, Decision::difficult("unreadable"), 1500);
  journal.beginMove(kF, Location::tray(), Location::bin(), "", 1500);
  journal.failMove(kF, Location::jam(), "sorter stuck", 1550);

  const auto inv = journal.inventory(6, 10, 2000);
  REQUIRE(inv.slots_size() == 3);
  // Ascending by slot index.
  CHECK(inv.slots(0).slot() == 1);
  CHECK(inv.slots(0).deposit_id() == kB);
  CHECK_FALSE(inv.slots(0).pending());
  CHECK(inv.slots(1).slot() == 2);
  CHECK(inv.slots(1).deposit_id() == kE);
  CHECK(inv.slots(1).pending());
  CHECK(inv.slots(2).slot() == 5);
  CHECK(inv.slots(2).deposit_id() == kA);
  REQUIRE(inv.bin_size() == 1);
  CHECK(inv.bin(0).deposit_id() == kC);
  CHECK(inv.bin(0).flagged());
  REQUIRE(inv.tray_size() == 1);
  CHECK(inv.tray(0).deposit_id() == kD);
  REQUIRE(inv.uncertain_size() == 1);
  CHECK(inv.uncertain(0).deposit_id() == kF);
  CHECK(inv.uncertain(0).last_known() == "jam");
  CHECK_THAT(inv.uncertain(0).detail(), Catch::Contains("sorter stuck"));
  CHECK(inv.journal_updated_at_ms() == 1550);
}

TEST_CASE("a move begun and not finished makes its card uncertain", "[journal]") {
  Journal journal(freshJournalPath("open-move"));
  capture(journal, kA, 1000);
  journal.recordDisposition(kA, Decision::store("1234"), 1000);
  journal.beginMove(kA, Location::tray(), Location::inSlot(3), "", 1100);

  const auto inv = journal.inventory(6, 10, 2000);
  CHECK(inv.slots_size() == 0);
  CHECK(inv.tray_size() == 0);
  REQUIRE(inv.uncertain_size() == 1);
  CHECK(inv.uncertain(0).deposit_id() == kA);
  CHECK(inv.uncertain(0).last_known() == "tray");
  CHECK(inv.uncertain(0).detail() == "move from tray to slot:3 not finished");
}

TEST_CASE("the journal sequence grows with every move begun and ended", "[journal]") {
  Journal journal(freshJournalPath("seq"));
  capture(journal, kA, 1000);
  const auto before = journal.inventory(6, 10, 1000).journal_seq();
  journal.recordDisposition(kA, Decision::store("1234"), 1000);
  journal.beginMove(kA, Location::tray(), Location::inSlot(0), "", 1100);
  const auto begun = journal.inventory(6, 10, 1100).journal_seq();
  journal.finishMove(kA, Location::inSlot(0), 1200);
  const auto done = journal.inventory(6, 10, 1200).journal_seq();
  CHECK(before < begun);
  CHECK(begun < done);
  // Reading changes nothing.
  CHECK(journal.inventory(6, 10, 1300).journal_seq() == done);
}

TEST_CASE("a read-only journal gives the same inventory", "[journal]") {
  const auto path = freshJournalPath("read-only");
  {
    Journal journal(path);
    store(journal, kA, Location::inSlot(4), 1000);
  }
  Journal reader(path, Journal::Mode::kReadOnly);
  const auto inv = reader.inventory(6, 10, 2000);
  REQUIRE(inv.slots_size() == 1);
  CHECK(inv.slots(0).deposit_id() == kA);
  CHECK(inv.slots(0).slot() == 4);
}
