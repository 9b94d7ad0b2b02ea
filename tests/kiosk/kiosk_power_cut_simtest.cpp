// A power cut in the middle of a sorter move, made deterministic: the real lostcard-kiosk runs on
// the simulated box, the box's hold-mid-move switch stops the sorter halfway (the journal has the
// move begun, the card has left the tray and is in ROOT/transit/), the test kills the daemon
// with SIGKILL at exactly that instant, lifts the switch and starts the daemon again on the same
// journal and box. Recovery must re-home the sorter, find the card and finish the move: the card
// ends in one known place, and the journal (as --print-journal shows it) agrees with the box.
//
// The kiosk runs offline (its cloud address has nobody listening), which is how it takes cards
// without an answer: a card goes to a slot as "pending" after --offline-timeout-ms, and a card
// the camera cannot photograph goes to the bin at once (or, the bin being full, to a slot as a
// decided card, flagged). Those are the moves the controller makes: to a slot and to the bin (it
// has no move out of a slot: pickup is not handled by the kiosk yet).
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/child_process.hpp"

namespace fs = std::filesystem;
namespace hw = lostcard::hw;
using lostcard::kiosk::Journal;
using lostcard::kiosk::Location;
using lostcard::test::ChildProcess;
using lostcard::test::eventually;
using namespace std::chrono_literals;

namespace {

using lostcard::test::readFile;

constexpr int kSlots = 3;

fs::path makeCard(const fs::path& dir, const std::string& name) {
  const fs::path card = dir / name;
  fs::create_directories(card);
  for (const char* face : {"front", "back"}) {
    cv::Mat image(60, 96, CV_8UC3, cv::Scalar(40, 90, 120));
    cv::putText(image, face, {8, 30}, cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(255, 255, 255));
    REQUIRE(cv::imwrite((card / (std::string(face) + ".jpg")).string(), image));
  }
  return card;
}

struct JournalLine {
  std::string deposit_id;
  std::string state;
  std::string location;
};

// One kiosk on one simulated box and one journal, offline, started and killed at will.
struct OfflineKiosk {
  explicit OfflineKiosk(const std::string& name)
      : dir(lostcard::test::makeTestDir("kiosk_power_cut_simtest/" + name)),
        box({.root = dir / "box", .slot_count = kSlots}) {
    const std::string pki = lostcard::test::sourceDir() + "/tools/pki";
    for (const std::string& args :
         {"init " + (dir / "pki").string(), "kiosk " + (dir / "pki").string() + " kiosk-test"}) {
      REQUIRE(std::system((pki + " " + args + " >/dev/null").c_str()) == 0);
    }
  }

  void start() {
    ++runs;
    daemon = std::make_unique<ChildProcess>(
        std::vector<std::string>{lostcard::test::binDir() + "/lostcard-kiosk",
                                 "--id",
                                 "kiosk-test",
                                 "--cloud",
                                 "127.0.0.1:" + std::to_string(lostcard::test::freeLocalPort()),
                                 "--server-name",
                                 "localhost",
                                 "--ca",
                                 (dir / "pki/ca.crt").string(),
                                 "--cert",
                                 (dir / "pki/kiosks/kiosk-test.crt").string(),
                                 "--key",
                                 (dir / "pki/kiosks/kiosk-test.key").string(),
                                 "--journal",
                                 journal().string(),
                                 "--hw",
                                 "sim",
                                 "--sim-root",
                                 (dir / "box").string(),
                                 "--slots",
                                 std::to_string(kSlots),
                                 "--poll-ms",
                                 "10",
                                 "--offline-timeout-ms",
                                 "1",
                                 "--bin-capacity",
                                 std::to_string(bin_capacity),
                                 "--log-level",
                                 "debug"},
        log(runs).string());
  }

  fs::path journal() const { return dir / "journal.sqlite"; }
  fs::path log(int run) const { return dir / ("kiosk-" + std::to_string(run) + ".log"); }

  std::vector<JournalLine> printJournal() const {
    const std::string text =
        lostcard::test::runProgram({lostcard::test::binDir() + "/lostcard-kiosk", "--journal",
                                    journal().string(), "--print-journal"});
    std::vector<JournalLine> out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      JournalLine j;
      std::getline(fields, j.deposit_id, '\t');
      std::getline(fields, j.state, '\t');
      std::getline(fields, j.location, '\t');
      out.push_back(j);
    }
    return out;
  }

  // Every card the box physically holds, by place ("tray", "transit", "jam", "slot:N", "bin").
  std::multimap<std::string, std::string> physical() const {
    std::multimap<std::string, std::string> out;
    for (const auto& c : box.cardsInIntake()) {
      out.emplace("tray", c);
    }
    for (const auto& c : box.cardsInTransit()) {
      out.emplace("transit", c);
    }
    for (const auto& c : box.cardsJammed()) {
      out.emplace("jam", c);
    }
    for (int i = 0; i < kSlots; ++i) {
      if (auto c = box.cardInSlot(i)) {
        out.emplace(Location::inSlot(i).text(), *c);
      }
    }
    for (const auto& c : box.cardsInBin()) {
      out.emplace("bin", c);
    }
    return out;
  }

  fs::path dir;
  hw::SimBox box;
  std::unique_ptr<ChildProcess> daemon;
  int runs = 0;
  int bin_capacity = 100;
};

// Drops `card`, lets the daemon sort it with the sorter held mid-move, kills it there, lifts the
// hold and restarts it. Returns the deposit id the journal gave the card.
std::string killMidMove(OfflineKiosk& kiosk, const std::string& card, const Location& expected_to) {
  kiosk.box.holdMidMove();
  kiosk.box.dropCard(makeCard(kiosk.dir / "cards", card));
  REQUIRE(eventually([&] { return kiosk.box.moveHeld(); }, 60s));

  // The instant of the cut: the journal has the move begun, the card is in neither place.
  kiosk.daemon->kill9();
  CHECK(kiosk.box.cardsInTransit() == std::vector<std::string>{card});
  CHECK(kiosk.box.cardsInIntake().empty());
  std::string id;
  {
    Journal journal(kiosk.journal(), Journal::Mode::kReadOnly);
    const auto open = journal.openMoves();
    REQUIRE(open.size() == 1);
    CHECK(open[0].from == Location::tray());
    CHECK(open[0].to == expected_to);
    id = open[0].deposit_id;
  }

  kiosk.box.setFault(hw::SimFault::kHoldMidMove, false);
  kiosk.start();
  return id;
}

// The card is in `place` in the box and the journal, the journal's every location matches what
// the box holds, and nothing is left on the tray, in the sorter or jammed.
void checkAccounted(OfflineKiosk& kiosk, const std::string& id, const std::string& card,
                    const std::string& place, const std::string& state) {
  REQUIRE(eventually(
      [&] {
        try {
          for (const auto& j : kiosk.printJournal()) {
            if (j.deposit_id == id) {
              return j.location == place && j.state == state;
            }
          }
        } catch (const std::runtime_error&) {
          // the daemon holds the journal for a moment: look again
        }
        return false;
      },
      60s));
  const auto physical = kiosk.physical();
  CHECK(physical.count("tray") == 0);
  CHECK(physical.count("transit") == 0);
  CHECK(physical.count("jam") == 0);
  const auto at = physical.equal_range(place);
  bool found = false;
  for (auto it = at.first; it != at.second; ++it) {
    found = found || it->second == card;
  }
  CHECK(found);
  CHECK_FALSE(kiosk.box.moveHeld());

  // The journal's accounting and the box's: as many cards in each place.
  std::multimap<std::string, std::string> journaled;
  for (const auto& j : kiosk.printJournal()) {
    journaled.emplace(j.location, j.deposit_id);
  }
  for (const auto& where :
       {std::string("bin"), std::string("tray"), std::string("jam"), std::string("unknown"),
        Location::inSlot(0).text(), Location::inSlot(1).text(), Location::inSlot(2).text()}) {
    INFO("place " << where);
    CHECK(journaled.count(where) == physical.count(where));
  }
}

}  // namespace

TEST_CASE("kill -9 mid-move to a slot: the restarted kiosk re-homes and stores the card",
          "[daemon][sim][recovery]") {
  OfflineKiosk kiosk("slot");
  kiosk.start();
  const std::string id = killMidMove(kiosk, "card-a", Location::inSlot(0));
  checkAccounted(kiosk, id, "card-a", "slot:0", "pending");

  const std::string log = readFile(kiosk.log(2));
  CHECK_THAT(log, Catch::Contains("homing brought card card-a back to the tray"));
  CHECK_THAT(log, Catch::Contains("deposit " + id + " still on the tray"));
  CHECK(kiosk.printJournal().size() == 1);  // the same deposit, not a new one

  // The box goes on taking cards: the next one goes to the next slot.
  kiosk.box.dropCard(makeCard(kiosk.dir / "cards", "card-b"));
  REQUIRE(eventually([&] { return kiosk.box.cardInSlot(1).has_value(); }, 60s));
  const int status = kiosk.daemon->terminate();
  CHECK(WIFEXITED(status));
  const auto journal = kiosk.printJournal();
  REQUIRE(journal.size() == 2);
  CHECK(journal[1].location == "slot:1");
}

TEST_CASE("kill -9 mid-move to the bin: the card is not assumed there, it is put there",
          "[daemon][sim][recovery]") {
  OfflineKiosk kiosk("bin");
  // A card the camera cannot photograph goes to the bin without waiting for the cloud.
  kiosk.box.setFault(hw::SimFault::kCameraFailure, true);
  kiosk.start();
  const std::string id = killMidMove(kiosk, "card-c", Location::bin());
  kiosk.box.setFault(hw::SimFault::kCameraFailure, false);
  checkAccounted(kiosk, id, "card-c", "bin", "stored");
  CHECK_THAT(readFile(kiosk.log(2)), Catch::Contains("homing brought card card-c back"));
  CHECK(kiosk.printJournal().size() == 1);
}

TEST_CASE("kill -9 mid-move after earlier cards: the Nth move is held, the rest stay put",
          "[daemon][sim][recovery]") {
  OfflineKiosk kiosk("nth");
  kiosk.start();
  kiosk.box.holdMidMove(2);
  kiosk.box.dropCard(makeCard(kiosk.dir / "cards", "card-d"));
  REQUIRE(eventually([&] { return kiosk.box.cardInSlot(0).has_value(); }, 60s));
  CHECK_FALSE(kiosk.box.moveHeld());
  kiosk.box.dropCard(makeCard(kiosk.dir / "cards", "card-e"));
  REQUIRE(eventually([&] { return kiosk.box.moveHeld(); }, 60s));
  kiosk.daemon->kill9();
  CHECK(kiosk.box.cardsInTransit() == std::vector<std::string>{"card-e"});
  kiosk.box.setFault(hw::SimFault::kHoldMidMove, false);
  kiosk.start();

  std::string id;
  REQUIRE(eventually(
      [&] {
        try {
          const auto journal = kiosk.printJournal();
          if (journal.size() == 2 && journal[1].location == "slot:1") {
            id = journal[1].deposit_id;
            return true;
          }
        } catch (const std::runtime_error&) {
        }
        return false;
      },
      60s));
  checkAccounted(kiosk, id, "card-e", "slot:1", "pending");
  CHECK(kiosk.box.cardInSlot(0) == std::optional<std::string>("card-d"));
}

TEST_CASE("kill -9 mid-move of a decided card to a slot: stored there and reported",
          "[daemon][sim][recovery]") {
  OfflineKiosk kiosk("decided-slot");
  kiosk.bin_capacity = 1;
  kiosk.box.setFault(hw::SimFault::kCameraFailure, true);
  kiosk.start();
  // The first unreadable card fills the bin; the next one goes to a slot, flagged.
  kiosk.box.dropCard(makeCard(kiosk.dir / "cards", "card-f"));
  REQUIRE(eventually([&] { return kiosk.box.cardsInBin().size() == 1; }, 60s));
  const std::string id = killMidMove(kiosk, "card-g", Location::inSlot(0));
  kiosk.box.setFault(hw::SimFault::kCameraFailure, false);
  checkAccounted(kiosk, id, "card-g", "slot:0", "stored");
  {
    Journal journal(kiosk.journal(), Journal::Mode::kReadOnly);
    CHECK(journal.deposit(id)->flagged);  // a difficult card in a slot, for the operator
    bool reported = false;
    for (const auto& env : journal.unackedOutbox()) {
      reported = reported || (env.has_card_stored() && env.card_stored().deposit_id() == id);
    }
    CHECK(reported);  // CardStored waits in the outbox for the cloud
  }
  CHECK(kiosk.printJournal().size() == 2);
}
