// Pickup and the operator at the box on real processes: PostgreSQL, lostcard-cloud and the
// lostcard-kiosk daemon on a simulated box that the test drives like the people in front of it
// (typing on the keypad, taking a card or leaving it, a slot door that does not open, a power
// cut while a slot is open, an operator emptying the bin). Every outcome is checked where it
// lives: the simulator's folders, the kiosk's journal, the cloud's deposits and audit log.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>

#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lostcard::test::nonEmptyLines;
using lostcard::test::readFile;

constexpr int kSlots = 6;

// The slots whose door the kiosk unlocked (the simulator keeps the last unlock of each door).
std::vector<int> unlockedSlots(const fs::path& sim_root) {
  std::vector<int> out;
  for (int i = 0; i < kSlots; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "unlocked-slot-%02d", i);
    if (fs::exists(sim_root / "state" / name)) {
      out.push_back(i);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("pickup and the operator at the box, through the real kiosk daemon", "[e2e]") {
  test::PgTestDb db;
  test::BoxSystem sys(test::makeTestDir("box_pickup_e2etest"), db.conninfo());
  const fs::path& dir = sys.dir;
  const std::string& bin = sys.bin;
  sys.makePki({"kiosk-1"});
  sys.makeCards({{"card-marie", "4556737586899855"}, {"card-unknown", "5105105105105100"}});
  sys.addPeople(kSlots);

  pqxx::connection pg(db.conninfo());
  auto q = [&](const std::string& sql) {
    pqxx::read_transaction tx(pg);
    const auto rows = tx.exec(sql);
    return rows.empty() || rows[0][0].is_null() ? std::string() : rows[0][0].as<std::string>();
  };
  auto status = [&](const std::string& deposit) {
    return q("SELECT status FROM deposits WHERE id = '" + deposit + "'");
  };

  auto cloud = sys.startCloud(/*http=*/false);

  const fs::path journal_path = dir / "kiosk-1.journal";
  const fs::path sim_root = dir / "kiosk-1";
  int kiosk_runs = 0;
  auto startKiosk = [&](const std::string& take_ms) {
    const auto argv =
        sys.kioskArgv("kiosk-1", kSlots,
                      {"--pickup-unlock-ms", "100", "--pickup-take-ms", take_ms, "--bin-open-ms",
                       "600000"});
    return std::make_unique<test::ChildProcess>(
        argv, (dir / ("kiosk-1." + std::to_string(++kiosk_runs) + ".log")).string());
  };
  auto kiosk = startKiosk("1500");
  hw::SimBox box({.root = sim_root, .slot_count = kSlots});

  // Three of Marie's cards in three slots, one unknown card in the bin.
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    const std::string name = box.dropCard(dir / "cards/card-marie");
    REQUIRE(test::eventually([&] { return test::inSomeSlot(sim_root, name); }, 120s));
    names.push_back(name);
  }
  const std::string unknown = box.dropCard(dir / "cards/card-unknown");
  REQUIRE(test::eventually([&] { return box.cardsInBin().size() == 1; }, 120s));
  REQUIRE(test::eventually(
      [&] {
        return q("SELECT count(*) FROM deposits WHERE status = 'stored' AND kiosk_id = "
                 "'kiosk-1'") == "4" &&
               q("SELECT count(*) FROM pickup_codes") == "3";
      },
      120s));

  // Each deposit in a slot, its slot, and a code of our own (only its hash is stored).
  struct Waiting {
    std::string deposit;
    int slot = -1;
    std::string code;
    std::string typed() const { return std::to_string(slot + 1) + " " + code; }
  };
  std::vector<Waiting> waiting;
  {
    pqxx::work tx(pg);
    int n = 0;
    for (const auto& row : tx.exec("SELECT id::text, location_slot FROM deposits "
                                   "WHERE location_kind = 'slot' ORDER BY location_slot")) {
      Waiting w{row[0].as<std::string>(), row[1].as<int>(), std::string(10, char('1' + n++))};
      tx.exec_params("UPDATE pickup_codes SET code_hash = $2 WHERE deposit_id = $1::uuid",
                     w.deposit, cloud::hashCode(w.code, 1000));
      waiting.push_back(w);
    }
    tx.commit();
  }
  REQUIRE(waiting.size() == 3);
  const Waiting& a = waiting[0];
  const Waiting& b = waiting[1];
  const Waiting& c = waiting[2];
  auto outcome = [&](const Waiting& w) {
    return q("SELECT done_outcome FROM pickup_attempts WHERE result = 'open' AND deposit_id = '" +
             w.deposit + "' ORDER BY at DESC LIMIT 1");
  };
  auto journalState = [&](const std::string& deposit) {
    for (const auto& line : nonEmptyLines(test::runProgram(
             {bin + "/lostcard-kiosk", "--journal", journal_path.string(), "--print-journal"}))) {
      if (line.rfind(deposit + "\t", 0) == 0) {
        return line;
      }
    }
    return std::string();
  };

  // The box is idle (its last "thank you" is over), so what the display says next is ours.
  REQUIRE(test::eventually([&] { return box.displayText() == "Please insert a found card"; }, 60s));
  {
    // 1. A wrong code opens nothing; the right one then opens that slot only.
    box.type(std::to_string(a.slot + 1) + " 9999999999");
    REQUIRE(test::eventually(
        [&] {
          return q("SELECT count(*) FROM pickup_attempts WHERE result = 'wrong_code'") == "1";
        },
        60s));
    REQUIRE(test::eventually([&] { return box.displayText().find("Wrong code") == 0; }, 30s));
    CHECK(unlockedSlots(sim_root).empty());
    box.type(a.typed());
    REQUIRE(test::eventually([&] { return !unlockedSlots(sim_root).empty(); }, 60s));
    CHECK(unlockedSlots(sim_root) == std::vector<int>{a.slot});
    CHECK(status(a.deposit) == "releasing");
    // Marie takes her card.
    REQUIRE(box.collectFromSlot(a.slot).has_value());
    REQUIRE(test::eventually([&] { return status(a.deposit) == "collected"; }, 60s));
    CHECK(q("SELECT collected_by FROM deposits WHERE id = '" + a.deposit + "'") == "pickup");
    CHECK(outcome(a) == "taken");
    CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'pickup.done' AND result = 'taken'") ==
          "1");
    CHECK_THAT(journalState(a.deposit), Catch::Contains("\tcollected\tcollected\t"));

    // 2. The used code opens nothing any more.
    box.type(a.typed());
    REQUIRE(test::eventually(
        [&] {
          return q("SELECT count(*) FROM pickup_attempts WHERE result = 'no_such_deposit'") == "1";
        },
        60s));
    CHECK(unlockedSlots(sim_root) == std::vector<int>{a.slot});

    // 3. A card not taken: the door locks again, the card stays, the deposit is stored again.
    box.type(b.typed());
    REQUIRE(test::eventually([&] { return outcome(b) == "not_taken"; }, 60s));
    CHECK(status(b.deposit) == "stored");
    CHECK(box.cardInSlot(b.slot).has_value());
    CHECK_THAT(journalState(b.deposit),
               Catch::Contains("\tstored\tslot:" + std::to_string(b.slot)));
    REQUIRE(test::eventually(
        [&] { return box.displayText().find("locked again") != std::string::npos; }, 30s));

    // 4. A slot door that does not open: reported, an alert for operators, the card stays.
    box.setFault(hw::SimFault::kSlotDoorStuck, true);
    box.type(c.typed());
    REQUIRE(test::eventually([&] { return outcome(c) == "door_failed"; }, 60s));
    box.setFault(hw::SimFault::kSlotDoorStuck, false);
    CHECK(status(c.deposit) == "stored");
    CHECK(q("SELECT count(*) FROM kiosk_alerts WHERE deposit_id = '" + c.deposit + "'") == "1");
    CHECK(box.cardInSlot(c.slot).has_value());
    CHECK_THAT(journalState(c.deposit), Catch::Contains("slot's latch did not release"));

    // 5. A power cut while the slot is open. B gets a new code; the kiosk runs with a long hold,
    // is killed once the journal has the door open, and the card is taken meanwhile.
    REQUIRE(kiosk->terminate() == 0);
    kiosk = startKiosk("600000");
    {
      pqxx::work tx(pg);
      tx.exec_params(
          "UPDATE pickup_codes SET code_hash = $2, used_at = NULL, tries_left = 5 "
          "WHERE deposit_id = $1::uuid",
          b.deposit, cloud::hashCode("5550001111", 1000));
      tx.commit();
    }
    box.type(std::to_string(b.slot + 1) + " 5550001111");
    REQUIRE(test::eventually(
        [&] {
          kiosk::Journal journal(journal_path, kiosk::Journal::Mode::kReadOnly);
          const auto open = journal.unfinishedReleases();
          return open.size() == 1 && open[0].state == kiosk::ReleaseState::kOpen &&
                 open[0].deposit_id == b.deposit;
        },
        60s));
    kiosk->kill9();
    REQUIRE(box.collectFromSlot(b.slot).has_value());
    kiosk = startKiosk("1500");
    REQUIRE(test::eventually([&] { return status(b.deposit) == "collected"; }, 60s));
    CHECK(outcome(b) == "taken");
    CHECK_THAT(journalState(b.deposit), Catch::Contains("\tcollected\tcollected\t"));

    // 6. An operator of another kiosk is refused; this kiosk's operator empties the bin.
    box.type("* 2468013579");
    REQUIRE(test::eventually(
        [&] { return q("SELECT count(*) FROM bin_openings WHERE result = 'refused'") == "1"; },
        60s));
    CHECK_FALSE(fs::exists(sim_root / "state/unlocked-bin"));
    box.type("* 1357924680");
    REQUIRE(test::eventually([&] { return fs::exists(sim_root / "state/unlocked-bin"); }, 60s));
    CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'bin.open'") == "1");
    box.setBinDoorOpen(true);
    CHECK(box.emptyBin().size() == 1);
    // The door is shut once the kiosk has seen it open (it says so on the display).
    REQUIRE(test::eventually(
        [&] { return box.displayText().find("Bin door open") != std::string::npos; }, 60s));
    box.setBinDoorOpen(false);
    const std::string bin_deposit = q("SELECT id::text FROM deposits WHERE location_kind = 'bin'");
    REQUIRE(test::eventually([&] { return status(bin_deposit) == "collected"; }, 60s));
    CHECK(q("SELECT collected_by || ':' || a.login FROM deposits d JOIN accounts a ON "
            "a.id = d.collected_by_account WHERE d.id = '" +
            bin_deposit + "'") == "operator:op-east");
    CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'bin.emptied'") == "1");
    CHECK_THAT(journalState(bin_deposit), Catch::Contains("\tcollected\tcollected\t"));

    // The kiosk's inventory and the cloud agree: one card left, in C's slot.
    std::string verdict;
    REQUIRE(test::eventually(
        [&] {
          test::ChildProcess run(sys.adminArgv({"reconcile", "--kiosk", "kiosk-1"}),
                                 (dir / "reconcile.out").string());
          const auto st = run.waitFor(60s);
          verdict = readFile(dir / "reconcile.out");
          return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0 &&
                 verdict.find("slots_used=1 bin=0 disagreements=0") != std::string::npos;
        },
        60s));
    INFO(verdict);
    CHECK_THAT(verdict, Catch::Contains(c.deposit));
  }

  // No code typed ever reaches a log.
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".log") {
      const auto text = readFile(entry.path());
      INFO(entry.path().string());
      for (const auto& w : waiting) {
        CHECK(text.find(w.code) == std::string::npos);
      }
      CHECK(text.find("1357924680") == std::string::npos);
      CHECK(text.find("2468013579") == std::string::npos);
      CHECK(text.find("5550001111") == std::string::npos);
    }
  }
}
