// A full disk under the kiosk's journal, made deterministic with a SQLite VFS that models a small
// disk (small_disk_vfs.hpp): the journal spends its reserve on the record in hand, the box stops
// taking cards (shutter closed, "out of service"), a write that fails even so holds back every
// action after it (no move before its record), nothing recorded is lost, and the box takes cards
// again by itself once there is room. The controller runs in-process on the simulated box with an
// injected clock; the test plays the cloud by calling onMessage().
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/controller.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"
#include "small_disk_vfs.hpp"

namespace fs = std::filesystem;
namespace hw = lostcard::hw;
namespace v1 = lostcard::v1;
using namespace lostcard::kiosk;
using lostcard::kiosk::test::SmallDisk;
using namespace std::chrono_literals;

namespace {

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

Journal::Options onSmallDisk(std::int64_t reserve_bytes) {
  Journal::Options options;
  options.reserve_bytes = reserve_bytes;
  options.vfs = SmallDisk::kVfsName;
  return options;
}

v1::Envelope storeDisposition(const std::string& deposit_id, const std::string& last4) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_disposition()->set_deposit_id(deposit_id);
  env.mutable_disposition()->mutable_store()->set_last4(last4);
  return env;
}

// One kiosk: the simulated box, the journal on the small disk (in its own folder, so the disk
// holds only the journal's files), the controller with a clock the test moves.
struct Kiosk {
  Kiosk(const std::string& name, std::int64_t reserve_bytes)
      : dir(lostcard::test::makeTestDir("journal_disk_full_simtest/" + name)),
        box(hw::SimBoxOptions{.root = dir / "box", .slot_count = 4, .bin_capacity = 10}) {
    SmallDisk::install();
    SmallDisk::setCapacity(SmallDisk::kUnlimited);
    fs::create_directories(disk());
    journal.emplace(disk() / "journal.sqlite", onSmallDisk(reserve_bytes));
    startController();
  }
  ~Kiosk() { SmallDisk::setCapacity(SmallDisk::kUnlimited); }

  void startController() {
    controller.emplace(
        box.devices(), *journal, IntakeConfig{.bin_capacity = 10, .capture_retry_ms = 0},
        [this] { return clock_ms; }, [this](const v1::Envelope& env) { sent.push_back(env); });
    controller->start();
  }

  fs::path disk() const { return dir / "disk"; }
  void diskFullNow() { SmallDisk::setCapacity(SmallDisk::usedBytes(disk())); }
  void roomAgain() { SmallDisk::setCapacity(SmallDisk::kUnlimited); }

  // A few polls, `step_ms` apart on the kiosk's clock.
  void poll(int times = 3, std::int64_t step_ms = 10) {
    for (int i = 0; i < times; ++i) {
      clock_ms += step_ms;
      controller->poll();
    }
  }
  // Enough time for the controller to try its journal again.
  void pollAfterRetryInterval() { poll(2, Controller::kJournalRetryMs); }

  std::vector<v1::Envelope> all(v1::Envelope::BodyCase type) const {
    std::vector<v1::Envelope> out;
    for (const auto& env : sent) {
      if (env.body_case() == type) {
        out.push_back(env);
      }
    }
    return out;
  }

  fs::path dir;
  hw::SimBox box;
  std::optional<Journal> journal;
  std::optional<Controller> controller;
  std::int64_t clock_ms = 1'000'000;
  std::vector<v1::Envelope> sent;
};

}  // namespace

TEST_CASE("the journal keeps a reserve and spends it on the record in hand", "[journal][disk]") {
  const fs::path dir = lostcard::test::makeTestDir("journal_disk_full_simtest/reserve");
  SmallDisk::install();
  SmallDisk::setCapacity(SmallDisk::kUnlimited);
  const fs::path file = dir / "journal.sqlite";
  constexpr std::int64_t kReserve = 256 * 1024;
  Journal journal(file, onSmallDisk(kReserve));
  REQUIRE(fs::file_size(dir / "journal.sqlite-reserve") == kReserve);
  CHECK_FALSE(journal.lowOnSpace());

  auto captured = lostcard::wire::makeEnvelope(1);
  captured.mutable_card_captured()->set_deposit_id("d1");
  captured.mutable_card_captured()->add_front()->set_jpeg(std::string(20'000, 'x'));
  SmallDisk::setCapacity(SmallDisk::usedBytes(dir));  // full
  const int refused_before = SmallDisk::refusedWrites();
  journal.recordCapture(captured, 1000);
  CHECK(SmallDisk::refusedWrites() > refused_before);  // the first try met a full disk
  CHECK(journal.deposit("d1"));                        // and the second kept the record
  CHECK(journal.imageCount("d1") == 1);
  CHECK_FALSE(fs::exists(dir / "journal.sqlite-reserve"));
  CHECK(journal.lowOnSpace());

  // With the reserve spent, a write that does not fit fails, and changes nothing.
  auto second = captured;
  second.set_message_id("m2");
  second.mutable_card_captured()->set_deposit_id("d2");
  second.mutable_card_captured()->mutable_front(0)->set_jpeg(std::string(2'000'000, 'y'));
  CHECK_THROWS_AS(journal.recordCapture(second, 2000), JournalFull);
  CHECK_FALSE(journal.deposit("d2"));
  CHECK_FALSE(journal.restoreReserve());  // no room for it either
  CHECK(journal.lowOnSpace());

  SmallDisk::setCapacity(SmallDisk::kUnlimited);
  CHECK(journal.restoreReserve());
  CHECK_FALSE(journal.lowOnSpace());
  CHECK(fs::file_size(dir / "journal.sqlite-reserve") == kReserve);
  journal.recordCapture(second, 2000);
  CHECK(journal.deposits().size() == 2);
}

TEST_CASE("a journal opened on a full disk starts low on space and still reads and writes",
          "[journal][disk]") {
  const fs::path dir = lostcard::test::makeTestDir("journal_disk_full_simtest/open-full");
  SmallDisk::install();
  SmallDisk::setCapacity(SmallDisk::kUnlimited);
  const fs::path file = dir / "journal.sqlite";
  {
    Journal journal(file, onSmallDisk(0));
    auto captured = lostcard::wire::makeEnvelope(1);
    captured.mutable_card_captured()->set_deposit_id("d1");
    journal.recordCapture(captured, 1000);
  }
  SmallDisk::setCapacity(SmallDisk::usedBytes(dir) + 1024);  // no room for a 64 KiB reserve
  Journal journal(file, onSmallDisk(64 * 1024));
  CHECK(journal.lowOnSpace());
  CHECK_FALSE(fs::exists(dir / "journal.sqlite-reserve"));
  CHECK(journal.deposits().size() == 1);
  SmallDisk::setCapacity(SmallDisk::kUnlimited);
  CHECK(journal.restoreReserve());
  CHECK_FALSE(journal.lowOnSpace());
}

TEST_CASE(
    "disk full mid-card: the reserve finishes the card, then the box closes until there is room",
    "[kiosk][sim][disk]") {
  Kiosk k("reserve", 1024 * 1024);
  CHECK(k.box.shutterState() == "open");
  k.box.dropCard(makeCard(k.dir / "cards", "card-a"));
  k.poll();
  REQUIRE(k.all(v1::Envelope::kCardCaptured).size() == 1);
  const std::string a = k.all(v1::Envelope::kCardCaptured)[0].card_captured().deposit_id();

  k.diskFullNow();
  k.controller->onMessage(storeDisposition(a, "1111"));
  // The decision, the move and the report went into the reserve: the card is where the journal
  // says, and the cloud is told.
  CHECK(k.box.cardInSlot(0) == std::optional<std::string>("card-a"));
  CHECK(k.journal->whereIs(a) == Location::inSlot(0));
  CHECK(k.journal->deposit(a)->state == DepositState::kStored);
  REQUIRE(k.all(v1::Envelope::kCardStored).size() == 1);
  // Then no new card: closed, and the display says why.
  CHECK(k.journal->lowOnSpace());
  CHECK(k.controller->outOfService());
  CHECK(k.box.shutterState() == "closed");
  CHECK(k.box.displayText() == kTextOutOfService);

  // A card forced through the closed shutter is left alone while the disk stays full (answering
  // the CardCaptured folded the write-ahead log away, which freed some room: fill it again).
  k.diskFullNow();
  k.box.dropCard(makeCard(k.dir / "cards", "card-b"));
  k.pollAfterRetryInterval();
  CHECK(k.all(v1::Envelope::kCardCaptured).size() == 1);
  CHECK(k.journal->deposits().size() == 1);
  CHECK(k.box.cardsInIntake() == std::vector<std::string>{"card-b"});
  CHECK(k.controller->outOfService());
  // The cloud is still heard: an acknowledgement is recorded as it comes.
  const auto stored = k.all(v1::Envelope::kCardStored)[0];
  k.controller->onMessage(lostcard::wire::makeAck(stored.message_id(), 0));

  // Room again: the reserve is made again, the box opens and takes the waiting card by itself.
  k.roomAgain();
  k.pollAfterRetryInterval();
  CHECK_FALSE(k.journal->lowOnSpace());
  CHECK_FALSE(k.controller->outOfService());
  REQUIRE(k.all(v1::Envelope::kCardCaptured).size() == 2);
  const std::string b = k.all(v1::Envelope::kCardCaptured)[1].card_captured().deposit_id();
  k.controller->onMessage(storeDisposition(b, "2222"));
  CHECK(k.box.cardInSlot(1) == std::optional<std::string>("card-b"));
  CHECK(k.box.shutterState() == "open");
  CHECK(k.box.displayText() != kTextOutOfService);
  CHECK(k.journal->deposits().size() == 2);
  CHECK(k.journal->unackedOutbox().size() == 1);  // card-b's CardStored; card-a's was acked
}

TEST_CASE("no room even for the record in hand: the card waits on the tray, nothing goes out",
          "[kiosk][sim][disk]") {
  Kiosk k("no-reserve", 0);
  k.diskFullNow();
  k.box.dropCard(makeCard(k.dir / "cards", "card-c"));
  k.poll();
  // Photographed, but not journaled: it is not reported and it stays on the tray.
  CHECK(k.all(v1::Envelope::kCardCaptured).empty());
  CHECK(k.journal->deposits().empty());
  CHECK(k.box.cardsInIntake() == std::vector<std::string>{"card-c"});
  CHECK(k.controller->outOfService());
  CHECK(k.box.shutterState() == "closed");
  CHECK(k.box.displayText() == kTextOutOfService);
  k.pollAfterRetryInterval();  // still no room
  CHECK(k.journal->deposits().empty());
  CHECK(k.controller->outOfService());

  k.roomAgain();
  k.pollAfterRetryInterval();
  // The write is made with the photos it was given, and the card goes on from there.
  REQUIRE(k.all(v1::Envelope::kCardCaptured).size() == 1);
  const auto captured = k.all(v1::Envelope::kCardCaptured)[0].card_captured();
  CHECK(captured.front_size() == 2);
  CHECK(k.journal->deposit(captured.deposit_id()));
  CHECK_FALSE(k.controller->outOfService());
  CHECK(k.box.shutterState() == "closed");  // the card in hand is still being handled
  CHECK(k.box.displayText() == kTextThanks);
  k.controller->onMessage(storeDisposition(captured.deposit_id(), "3333"));
  CHECK(k.box.cardInSlot(0) == std::optional<std::string>("card-c"));
  CHECK(k.box.shutterState() == "open");
}

TEST_CASE("no move starts before its record: a decision that cannot be journaled waits",
          "[kiosk][sim][disk]") {
  Kiosk k("move-waits", 0);
  k.box.dropCard(makeCard(k.dir / "cards", "card-d"));
  k.poll();
  REQUIRE(k.all(v1::Envelope::kCardCaptured).size() == 1);
  const std::string d = k.all(v1::Envelope::kCardCaptured)[0].card_captured().deposit_id();

  k.diskFullNow();
  k.controller->onMessage(storeDisposition(d, "4444"));
  k.pollAfterRetryInterval();
  CHECK(k.box.cardsInIntake() == std::vector<std::string>{"card-d"});
  CHECK_FALSE(k.box.cardInSlot(0));
  CHECK(k.journal->openMoves().empty());
  CHECK_FALSE(k.journal->deposit(d)->decision);
  CHECK(k.journal->imageCount(d) == 2 * 2);  // the photos stay until the decision is written
  CHECK(k.all(v1::Envelope::kCardStored).empty());
  CHECK(k.controller->outOfService());

  k.roomAgain();
  k.pollAfterRetryInterval();
  CHECK(k.box.cardInSlot(0) == std::optional<std::string>("card-d"));
  const auto record = k.journal->deposit(d);
  CHECK(record->decision == Decision::store("4444"));
  CHECK(record->location == Location::inSlot(0));
  CHECK(record->state == DepositState::kStored);
  CHECK(k.journal->imageCount(d) == 0);
  CHECK(k.all(v1::Envelope::kCardStored).size() == 1);
  CHECK_FALSE(k.controller->outOfService());
  CHECK(k.box.shutterState() == "open");
}

TEST_CASE("disk full while the sorter moves: the card is where it is and the journal knows it",
          "[kiosk][sim][disk][recovery]") {
  Kiosk k("mid-move", 0);
  k.box.dropCard(makeCard(k.dir / "cards", "card-e"));
  k.poll();
  REQUIRE(k.all(v1::Envelope::kCardCaptured).size() == 1);
  const std::string e = k.all(v1::Envelope::kCardCaptured)[0].card_captured().deposit_id();

  // The disk fills while the card is on its way (the sorter held mid-move, on another thread).
  // (No Catch assertion on that thread: Catch2 is not thread-safe. The sorter is let go in any
  // case, so a failure cannot hang the test.)
  k.box.holdMidMove();
  bool held = false;
  std::thread filler([&] {
    held = lostcard::test::eventually([&] { return k.box.moveHeld(); }, 30s);
    k.diskFullNow();
    k.box.setFault(hw::SimFault::kHoldMidMove, false);
  });
  k.controller->onMessage(storeDisposition(e, "5555"));
  filler.join();
  REQUIRE(held);
  CHECK(k.box.cardInSlot(0) == std::optional<std::string>("card-e"));
  // The move's end could not be written; its beginning was: the journal knows where it went.
  const auto open = k.journal->openMoves();
  REQUIRE(open.size() == 1);
  CHECK(open[0].to == Location::inSlot(0));
  CHECK(k.controller->outOfService());
  CHECK(k.all(v1::Envelope::kCardStored).empty());

  SECTION("room again: the move is finished and reported") {
    k.roomAgain();
    k.pollAfterRetryInterval();
    CHECK(k.journal->openMoves().empty());
    CHECK(k.journal->whereIs(e) == Location::inSlot(0));
    CHECK(k.all(v1::Envelope::kCardStored).size() == 1);
    CHECK_FALSE(k.controller->outOfService());
  }
  SECTION("a power cut first: recovery finds the card in its slot") {
    k.controller.reset();
    k.journal.reset();
    k.roomAgain();
    k.journal.emplace(k.disk() / "journal.sqlite", onSmallDisk(0));
    k.startController();
    CHECK(k.journal->openMoves().empty());
    CHECK(k.journal->whereIs(e) == Location::inSlot(0));
    CHECK(k.journal->deposit(e)->state == DepositState::kStored);
    CHECK(k.all(v1::Envelope::kCardStored).size() == 1);
  }
}

TEST_CASE("a kiosk started on a full disk waits for room, then recovers and opens",
          "[kiosk][sim][disk][recovery]") {
  Kiosk k("start-full", 0);
  k.controller.reset();
  k.journal.reset();
  // A power cut left a move whose end was never written: the card reached slot 0.
  std::string id;
  {
    Journal raw(k.disk() / "journal.sqlite");
    auto env = lostcard::wire::makeEnvelope(0);
    id = lostcard::wire::newUuid();
    env.mutable_card_captured()->set_deposit_id(id);
    raw.recordCapture(env, 1000);
    raw.recordDisposition(id, Decision::store("6666"), 1100);
    raw.captureAnswered(id);
    raw.beginMove(id, Location::tray(), Location::inSlot(0), "", 1200);
  }
  k.box.dropCard(makeCard(k.dir / "cards", "card-f"));
  REQUIRE(k.box.devices().sorter->moveTo(hw::Destination::toSlot(0)));

  k.diskFullNow();
  k.journal.emplace(k.disk() / "journal.sqlite", onSmallDisk(0));
  k.startController();
  CHECK(k.controller->outOfService());
  CHECK(k.controller->intake() == nullptr);
  CHECK(k.box.shutterState() == "closed");
  CHECK(k.box.displayText() == kTextOutOfService);
  CHECK(k.journal->openMoves().size() == 1);

  k.roomAgain();
  k.pollAfterRetryInterval();
  CHECK_FALSE(k.controller->outOfService());
  REQUIRE(k.controller->intake() != nullptr);
  CHECK(k.journal->openMoves().empty());
  CHECK(k.journal->whereIs(id) == Location::inSlot(0));
  CHECK(k.all(v1::Envelope::kCardStored).size() == 1);
  CHECK(k.box.shutterState() == "open");
}
