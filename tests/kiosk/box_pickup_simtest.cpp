// The kiosk's side of pickup on the simulated box, in-process with an injected clock and no
// cloud: the messages the controller sends are collected and the cloud's answers handed to it.
// What the end-to-end test cannot stop at: a power cut between "releasing" being journaled and
// the latch, an OPEN for a request from before a restart, a code never written to the journal.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/controller.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::kiosk;
namespace fs = std::filesystem;
namespace hw = lostcard::hw;
namespace v1 = lostcard::v1;

namespace {

const std::string kA = "aaaaaaaa-0000-4000-8000-000000000001";

// A box with card "card-a" in slot 1, journaled as deposit kA (decided store, CardStored acked).
struct Fixture {
  explicit Fixture(const std::string& name)
      : dir(lostcard::test::makeTestDir("box_pickup_simtest/" + name)),
        box({.root = dir / "box", .slot_count = 4}),
        journal(dir / "journal.sqlite") {
    fs::create_directories(dir / "cards/card-a");
    std::ofstream(dir / "cards/card-a/front.jpg") << "x";
    box.dropCard(dir / "cards/card-a");
    REQUIRE(box.devices().sorter->moveTo(hw::Destination::toSlot(1)));
    auto env = lostcard::wire::makeEnvelope(now_ms);
    env.mutable_card_captured()->set_deposit_id(kA);
    journal.recordCapture(env, now_ms);
    journal.recordDisposition(kA, Decision::store("5556"), now_ms);
    journal.captureAnswered(kA);
    journal.beginMove(kA, Location::tray(), Location::inSlot(1), "", now_ms);
    journal.finishMove(kA, Location::inSlot(1), now_ms);
    auto stored = lostcard::wire::makeEnvelope(now_ms);
    stored.mutable_card_stored()->set_deposit_id(kA);
    stored.mutable_card_stored()->mutable_location()->set_slot(1);
    journal.markAcked(journal.enqueue(kA, stored, now_ms).message_id());
  }

  Controller& start() {
    controller.emplace(
        box.devices(), journal, IntakeConfig{}, [this] { return now_ms; },
        [this](const v1::Envelope& env) { sent.push_back(env); });
    controller->setBoxOptions({.unlock_ms = 100, .take_ms = 5000, .answer_timeout_ms = 2000});
    controller->start();
    return *controller;
  }

  std::vector<v1::PickupDone> reports() const {
    std::vector<v1::PickupDone> out;
    for (const auto& env : sent) {
      if (env.has_pickup_done()) {
        out.push_back(env.pickup_done());
      }
    }
    return out;
  }

  bool slotUnlocked(int slot) const {
    return fs::exists(dir / "box/state" / ("unlocked-slot-0" + std::to_string(slot)));
  }

  static v1::Envelope open(const std::string& request_id, const std::string& deposit_id, int slot) {
    auto env = lostcard::wire::makeEnvelope(0);
    auto* answer = env.mutable_pickup_answer();
    answer->set_request_id(request_id);
    answer->set_result(v1::PICKUP_RESULT_OPEN);
    answer->set_deposit_id(deposit_id);
    answer->set_slot(static_cast<std::uint32_t>(slot));
    return env;
  }

  fs::path dir;
  hw::SimBox box;
  Journal journal;
  std::int64_t now_ms = 1'700'000'000'000;
  std::vector<v1::Envelope> sent;
  std::optional<Controller> controller;
};

std::string fileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

TEST_CASE("the right answer opens that slot only; taken, the card leaves the journal", "[box]") {
  Fixture f("taken");
  auto& controller = f.start();
  f.box.type("2 1234567890");
  controller.poll();
  REQUIRE(f.sent.back().has_pickup_request());
  const auto request = f.sent.back().pickup_request();
  CHECK(request.slot() == 1);
  CHECK(request.code() == "1234567890");
  CHECK(f.box.displayText() == "Checking your code...");
  // The code is in no journal file; the request is, without it.
  for (const auto* suffix : {"", "-wal"}) {
    CHECK(fileBytes(f.dir / (std::string("journal.sqlite") + suffix)).find("1234567890") ==
          std::string::npos);
  }
  REQUIRE(f.journal.release(request.request_id())->state == ReleaseState::kAsked);

  controller.onMessage(Fixture::open(request.request_id(), kA, 1));
  CHECK(f.slotUnlocked(1));
  for (int other : {0, 2, 3}) {
    CHECK_FALSE(f.slotUnlocked(other));
  }
  CHECK(f.journal.release(request.request_id())->state == ReleaseState::kOpen);
  CHECK_THAT(f.journal.release(request.request_id())->detail,
             Catch::Contains("releasing slot:1 for deposit " + kA));
  // Typed meanwhile: refused, the box is busy.
  f.box.type("3 1111111111");
  f.now_ms += 100;
  controller.poll();
  CHECK(f.box.displayText() == "Please wait: the box is busy.");
  CHECK(f.reports().empty());

  REQUIRE(f.box.collectFromSlot(1).has_value());
  f.now_ms += 100;
  controller.poll();
  REQUIRE(f.reports().size() == 1);
  CHECK(f.reports()[0].outcome() == v1::PICKUP_OUTCOME_TAKEN);
  CHECK(f.reports()[0].deposit_id() == kA);
  CHECK(f.journal.deposit(kA)->state == DepositState::kCollected);
  CHECK(f.journal.occupiedSlots().empty());
  REQUIRE(f.sent.back().has_inventory());
  CHECK(f.sent.back().inventory().slots_size() == 0);
  CHECK(f.sent.back().inventory().uncertain_size() == 0);
  // The report waits in the outbox until acked.
  const auto queued = controller.backlog();
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].has_pickup_done());
  controller.onMessage(lostcard::wire::makeAck(queued[0].message_id(), 0));
  CHECK(controller.backlog().empty());
}

TEST_CASE("an OPEN for the wrong deposit, or after the holder was told to retry, opens nothing",
          "[box]") {
  Fixture f("not-opened");
  auto& controller = f.start();
  f.box.type("2 1234567890");
  controller.poll();
  const auto first = f.sent.back().pickup_request().request_id();
  controller.onMessage(Fixture::open(first, "bbbbbbbb-0000-4000-8000-000000000002", 1));
  CHECK_FALSE(f.slotUnlocked(1));
  REQUIRE(f.reports().size() == 1);
  CHECK(f.reports()[0].outcome() == v1::PICKUP_OUTCOME_NOT_OPENED);

  f.box.type("2 1234567890");
  controller.poll();
  const auto second = f.sent.back().pickup_request().request_id();
  f.now_ms += 2000;  // answer_timeout_ms
  controller.poll();
  CHECK_THAT(f.box.displayText(), Catch::Contains("does not answer"));
  // Resent after a reconnect without its code; the late OPEN opens nothing.
  const auto backlog = controller.backlog();
  REQUIRE(backlog.size() == 2);  // the first report (not acked) and the request
  CHECK(backlog[1].pickup_request().request_id() == second);
  CHECK(backlog[1].pickup_request().code().empty());
  controller.onMessage(Fixture::open(second, kA, 1));
  CHECK_FALSE(f.slotUnlocked(1));
  REQUIRE(f.reports().size() == 2);
  CHECK(f.reports()[1].outcome() == v1::PICKUP_OUTCOME_NOT_OPENED);
  CHECK(f.journal.deposit(kA)->location == Location::inSlot(1));
}

TEST_CASE("a power cut between journaling the release and the latch: not taken", "[box]") {
  Fixture f("cut-before-latch");
  const std::string request = "cccccccc-0000-4000-8000-000000000003";
  f.journal.recordReleaseAsked(request, ReleaseKind::kPickup, 1, f.now_ms);
  f.journal.recordReleaseOpening(request, kA, f.now_ms);
  f.start();
  CHECK_FALSE(f.slotUnlocked(1));  // recovery never opens a door
  REQUIRE(f.reports().size() == 1);
  CHECK(f.reports()[0].outcome() == v1::PICKUP_OUTCOME_NOT_TAKEN);
  CHECK(f.journal.release(request)->state == ReleaseState::kNotTaken);
  CHECK(f.journal.deposit(kA)->location == Location::inSlot(1));
  CHECK(f.journal.unfinishedReleases().empty());
}

TEST_CASE("a slot that does not open: reported, the deposit flagged, the card stays", "[box]") {
  Fixture f("door-stuck");
  auto& controller = f.start();
  f.box.setFault(hw::SimFault::kSlotDoorStuck, true);
  f.box.type("2 1234567890");
  controller.poll();
  controller.onMessage(Fixture::open(f.sent.back().pickup_request().request_id(), kA, 1));
  REQUIRE(f.reports().size() == 1);
  CHECK(f.reports()[0].outcome() == v1::PICKUP_OUTCOME_DOOR_FAILED);
  CHECK(f.journal.deposit(kA)->flagged);
  CHECK(f.journal.deposit(kA)->location == Location::inSlot(1));
  CHECK_THAT(f.box.displayText(), Catch::Contains("did not open"));
}
