// The intake state machine: events in, actions out, no hardware, no clock.
#include <catch2/catch.hpp>

#include <algorithm>

#include "lostcard/kiosk/intake.hpp"

using namespace lostcard::kiosk;
namespace hw = lostcard::hw;

namespace {

constexpr const char* kId = "11111111-1111-4111-8111-111111111111";
constexpr const char* kOtherId = "22222222-2222-4222-8222-222222222222";

std::vector<std::string> names(const std::vector<Action>& actions) {
  std::vector<std::string> out;
  for (const auto& a : actions) {
    out.push_back(describe(a));
  }
  return out;
}

template <class T>
const T* find(const std::vector<Action>& actions) {
  for (const auto& a : actions) {
    if (const auto* p = std::get_if<T>(&a)) {
      return p;
    }
  }
  return nullptr;
}

template <class T>
bool has(const std::vector<Action>& actions) {
  return find<T>(actions) != nullptr;
}

event::CaptureSucceeded twoFrames() {
  event::CaptureSucceeded e;
  e.front.push_back({"front-jpeg-1", 640, 400});
  e.front.push_back({"front-jpeg-2", 640, 400});
  e.back.push_back({"back-jpeg-1", 640, 400});
  e.back.push_back({"back-jpeg-2", 640, 400});
  return e;
}

// Drives a fresh card up to "waiting for the Disposition".
void dropAndCapture(Intake& intake, const std::string& id, std::int64_t now_ms) {
  intake.handle(event::CardDetected{id}, now_ms);
  intake.handle(twoFrames(), now_ms + 10);
  REQUIRE(intake.phase() == Intake::Phase::kAwaiting);
}

}  // namespace

TEST_CASE("start-up opens the shutter and greets", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10});
  auto actions = intake.start(0);
  CHECK(names(actions) ==
        std::vector<std::string>{"OpenShutter", "Show(" + std::string(kTextReady) + ")"});
  CHECK(intake.phase() == Intake::Phase::kIdle);
}

TEST_CASE("happy path: a readable card ends in the lowest free slot", "[intake]") {
  IntakeSnapshot snapshot;
  snapshot.occupied_slots = {0, 2};
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10, .frames_per_face = 2}, snapshot);
  intake.start(0);

  auto detected = intake.handle(event::CardDetected{kId}, 1000);
  CHECK(names(detected) == std::vector<std::string>{"CloseShutter",
                                                    "Show(" + std::string(kTextReading) + ")",
                                                    "Capture(2)"});
  CHECK(intake.phase() == Intake::Phase::kCapturing);

  auto captured = intake.handle(twoFrames(), 1100);
  const auto* journal = find<action::JournalNewDeposit>(captured);
  REQUIRE(journal != nullptr);
  CHECK(journal->deposit_id == kId);
  CHECK(journal->detected_at_ms == 1000);
  CHECK(journal->captured_at_ms == 1100);
  CHECK(journal->front.size() == 2);
  CHECK(journal->back.size() == 2);
  CHECK(journal->capture_error.empty());
  CHECK(names(captured) == std::vector<std::string>{"JournalNewDeposit(" + std::string(kId) + ")",
                                                    "SendCaptured(" + std::string(kId) + ")",
                                                    "Show(Thank you)"});
  CHECK(intake.phase() == Intake::Phase::kAwaiting);

  // Nothing moves while the cloud thinks (no offline timeout configured).
  CHECK(intake.handle(event::Tick{}, 1'000'000).empty());
  CHECK(intake.phase() == Intake::Phase::kAwaiting);

  auto decided = intake.handle(event::DispositionReceived{kId, Decision::store("4242")}, 1'000'100);
  CHECK(decided == std::vector<Action>{
                       action::JournalDisposition{kId, Decision::store("4242")},
                       action::JournalMoveBegin{kId, Location::tray(), Location::inSlot(1), ""},
                       action::MoveTo{kId, hw::Destination::toSlot(1)}});
  CHECK(intake.phase() == Intake::Phase::kMoving);

  auto moved = intake.handle(event::MoveSucceeded{}, 1'000'200);
  CHECK(moved == std::vector<Action>{action::JournalMoveDone{kId, Location::inSlot(1)},
                                     action::SendStored{kId, Location::inSlot(1)},
                                     action::OpenShutter{}, action::Show{std::string(kTextReady)}});
  CHECK(intake.phase() == Intake::Phase::kIdle);
  CHECK(intake.occupiedSlots() == std::set<int>{0, 1, 2});
  CHECK_FALSE(intake.trayDeposit());
}

TEST_CASE("'Thank you' stays on the display for a while after a quick answer", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10, .thank_you_ms = 3000});
  intake.start(0);
  dropAndCapture(intake, kId, 1000);  // thank you until 4010
  intake.handle(event::DispositionReceived{kId, Decision::store("1234")}, 1500);
  auto moved = intake.handle(event::MoveSucceeded{}, 1600);
  CHECK(has<action::OpenShutter>(moved));
  CHECK_FALSE(has<action::Show>(moved));
  CHECK(intake.handle(event::Tick{}, 4000).empty());
  CHECK(intake.handle(event::Tick{}, 4010) ==
        std::vector<Action>{action::Show{std::string(kTextReady)}});
}

TEST_CASE("a difficult card goes to the bin", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10});
  intake.start(0);
  dropAndCapture(intake, kId, 0);
  auto decided =
      intake.handle(event::DispositionReceived{kId, Decision::difficult("unreadable")}, 50);
  CHECK(decided ==
        std::vector<Action>{action::JournalDisposition{kId, Decision::difficult("unreadable")},
                            action::JournalMoveBegin{kId, Location::tray(), Location::bin(), ""},
                            action::MoveTo{kId, hw::Destination::toBin()}});
  auto moved = intake.handle(event::MoveSucceeded{}, 60);
  CHECK(find<action::SendStored>(moved)->at == Location::bin());
  CHECK(intake.binCount() == 1);
  CHECK(intake.occupiedSlots().empty());
}

TEST_CASE("the camera is retried, then the card goes to the bin without frames", "[intake]") {
  Intake intake(IntakeConfig{
      .slot_count = 4, .bin_capacity = 10, .max_capture_attempts = 3, .capture_retry_ms = 100});
  intake.start(0);
  intake.handle(event::CardDetected{kId}, 0);
  // Each retry waits capture_retry_ms, counted by the caller's ticks.
  CHECK(intake.handle(event::CaptureFailed{"timeout"}, 10).empty());
  CHECK(intake.handle(event::Tick{}, 109).empty());
  CHECK(intake.handle(event::Tick{}, 110) == std::vector<Action>{action::Capture{2}});
  CHECK(intake.handle(event::Tick{}, 111).empty());  // one retry per failure
  CHECK(intake.handle(event::CaptureFailed{"timeout"}, 120).empty());
  CHECK(intake.handle(event::Tick{}, 220) == std::vector<Action>{action::Capture{2}});
  auto gave_up = intake.handle(event::CaptureFailed{"timeout"}, 230);

  const auto* journal = find<action::JournalNewDeposit>(gave_up);
  REQUIRE(journal != nullptr);
  CHECK(journal->front.empty());
  CHECK(journal->back.empty());
  CHECK(journal->capture_error == "timeout");
  CHECK(has<action::SendCaptured>(gave_up));  // the cloud still learns about the deposit
  const auto* decision = find<action::JournalDisposition>(gave_up);
  REQUIRE(decision != nullptr);
  CHECK(decision->decision == Decision::difficult(std::string(kReasonCaptureFailed)));
  const auto* move = find<action::MoveTo>(gave_up);
  REQUIRE(move != nullptr);
  CHECK(move->to == hw::Destination::toBin());
  CHECK(intake.phase() == Intake::Phase::kMoving);

  auto moved = intake.handle(event::MoveSucceeded{}, 40);
  CHECK(find<action::SendStored>(moved)->at == Location::bin());
  CHECK(intake.phase() == Intake::Phase::kIdle);

  // The cloud's later answer ("bad image") changes nothing: the card is already in the bin.
  CHECK(
      intake.handle(event::DispositionReceived{kId, Decision::difficult("bad image")}, 50).empty());
}

TEST_CASE("with capture_retry_ms = 0 the camera is retried at once", "[intake]") {
  Intake intake(IntakeConfig{
      .slot_count = 4, .bin_capacity = 10, .max_capture_attempts = 2, .capture_retry_ms = 0});
  intake.start(0);
  intake.handle(event::CardDetected{kId}, 0);
  CHECK(intake.handle(event::CaptureFailed{"timeout"}, 10) ==
        std::vector<Action>{action::Capture{2}});
  auto captured = intake.handle(twoFrames(), 20);
  CHECK(has<action::JournalNewDeposit>(captured));
  CHECK(find<action::JournalNewDeposit>(captured)->front.size() == 2);
}

TEST_CASE("a failed move puts the box out of order with the shutter closed", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10});
  intake.start(0);
  dropAndCapture(intake, kId, 0);
  intake.handle(event::DispositionReceived{kId, Decision::store("1234")}, 50);
  auto failed = intake.handle(event::MoveFailed{"jammed", Location::jam()}, 60);
  CHECK(failed == std::vector<Action>{action::JournalMoveFailed{kId, Location::jam(), "jammed"},
                                      action::Show{std::string(kTextOutOfOrder)}});
  CHECK(intake.phase() == Intake::Phase::kOutOfOrder);
  CHECK(intake.occupiedSlots().empty());  // the slot never got the card

  // No more cards are taken, and the display keeps saying so.
  CHECK(intake.handle(event::CardDetected{kOtherId}, 70).empty());
  CHECK(intake.handle(event::Tick{}, 100'000).empty());
  CHECK(intake.phase() == Intake::Phase::kOutOfOrder);
}

TEST_CASE("no free slot: a card to store goes to the bin as 'box full'", "[intake]") {
  IntakeSnapshot snapshot;
  snapshot.occupied_slots = {0, 1};
  Intake intake(IntakeConfig{.slot_count = 2, .bin_capacity = 2}, snapshot);
  intake.start(0);
  CHECK(intake.phase() == Intake::Phase::kIdle);
  dropAndCapture(intake, kId, 0);
  auto decided = intake.handle(event::DispositionReceived{kId, Decision::store("1234")}, 50);
  const auto* begin = find<action::JournalMoveBegin>(decided);
  REQUIRE(begin != nullptr);
  CHECK(begin->to == Location::bin());
  CHECK(begin->note == kReasonBoxFull);
  intake.handle(event::MoveSucceeded{}, 60);
  CHECK(intake.binCount() == 1);
  CHECK(intake.phase() == Intake::Phase::kIdle);  // one place left in the bin
}

TEST_CASE("no free slot and a full bin: the shutter stays closed and says so", "[intake]") {
  IntakeSnapshot snapshot;
  snapshot.occupied_slots = {0, 1};
  snapshot.bin_count = 0;
  Intake intake(IntakeConfig{.slot_count = 2, .bin_capacity = 1}, snapshot);
  intake.start(0);
  dropAndCapture(intake, kId, 0);
  intake.handle(event::DispositionReceived{kId, Decision::difficult("no holder")}, 50);
  auto moved = intake.handle(event::MoveSucceeded{}, 60);
  CHECK(names(moved) == std::vector<std::string>{"JournalMoveDone(" + std::string(kId) + ", bin)",
                                                 "SendStored(" + std::string(kId) + ", bin)",
                                                 "Show(" + std::string(kTextFull) + ")"});
  CHECK(intake.phase() == Intake::Phase::kFull);
  CHECK(intake.handle(event::CardDetected{kOtherId}, 70).empty());

  // A cardholder takes a card out of slot 1: the box opens again.
  auto emptied = intake.handle(event::SlotEmptied{1}, 80);
  CHECK(emptied ==
        std::vector<Action>{action::OpenShutter{}, action::Show{std::string(kTextReady)}});
  CHECK(intake.phase() == Intake::Phase::kIdle);
}

TEST_CASE("a full box stays closed from start-up", "[intake]") {
  IntakeSnapshot snapshot;
  snapshot.occupied_slots = {0};
  snapshot.bin_count = 3;
  Intake intake(IntakeConfig{.slot_count = 1, .bin_capacity = 3}, snapshot);
  CHECK(intake.start(0) ==
        std::vector<Action>{action::CloseShutter{}, action::Show{std::string(kTextFull)}});
  CHECK(intake.phase() == Intake::Phase::kFull);
  CHECK(intake.handle(event::BinEmptied{}, 10) ==
        std::vector<Action>{action::OpenShutter{}, action::Show{std::string(kTextReady)}});
}

TEST_CASE("a full bin: a difficult card goes to a slot, flagged for the operator", "[intake]") {
  IntakeSnapshot snapshot;
  snapshot.bin_count = 1;
  Intake intake(IntakeConfig{.slot_count = 2, .bin_capacity = 1}, snapshot);
  intake.start(0);
  dropAndCapture(intake, kId, 0);
  auto decided =
      intake.handle(event::DispositionReceived{kId, Decision::difficult("ambiguous")}, 50);
  const auto* begin = find<action::JournalMoveBegin>(decided);
  REQUIRE(begin != nullptr);
  CHECK(begin->to == Location::inSlot(0));
  CHECK(begin->note == kReasonBinFull);
  auto moved = intake.handle(event::MoveSucceeded{}, 60);
  CHECK(has<action::FlagForOperator>(moved));
  CHECK(find<action::SendStored>(moved)->at == Location::inSlot(0));
}

TEST_CASE("a Disposition for an unknown deposit is ignored", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10});
  intake.start(0);
  CHECK(intake.handle(event::DispositionReceived{kOtherId, Decision::store("1")}, 5).empty());
  dropAndCapture(intake, kId, 10);
  CHECK(intake.handle(event::DispositionReceived{kOtherId, Decision::store("1")}, 20).empty());
  CHECK(intake.phase() == Intake::Phase::kAwaiting);
  // A repeat of a Disposition already acted on is ignored too: the first decision holds.
  intake.handle(event::DispositionReceived{kId, Decision::store("1234")}, 30);
  CHECK(intake.handle(event::DispositionReceived{kId, Decision::difficult("x")}, 40).empty());
  CHECK(intake.phase() == Intake::Phase::kMoving);
}

TEST_CASE("a card seen while another is handled is left alone", "[intake]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10});
  intake.start(0);
  intake.handle(event::CardDetected{kId}, 0);
  CHECK(intake.handle(event::CardDetected{kOtherId}, 5).empty());
  CHECK(intake.trayDeposit() == std::optional<std::string>(kId));
  // Results nobody asked for are ignored.
  CHECK(intake.handle(event::MoveSucceeded{}, 6).empty());
}

TEST_CASE("a card on the tray at start-up resumes where it stopped", "[intake]") {
  SECTION("still waiting for its Disposition") {
    IntakeSnapshot snapshot;
    snapshot.tray = TrayDeposit{kId, 500, std::nullopt};
    Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10}, snapshot);
    auto actions = intake.start(1000);
    CHECK(has<action::CloseShutter>(actions));
    CHECK_FALSE(has<action::MoveTo>(actions));
    CHECK(intake.phase() == Intake::Phase::kAwaiting);
    auto decided = intake.handle(event::DispositionReceived{kId, Decision::store("9")}, 1100);
    CHECK(find<action::MoveTo>(decided)->to == hw::Destination::toSlot(0));
  }
  SECTION("decided but not moved") {
    IntakeSnapshot snapshot;
    snapshot.occupied_slots = {0};
    snapshot.tray = TrayDeposit{kId, 500, Decision::store("9")};
    Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10}, snapshot);
    auto actions = intake.start(1000);
    CHECK_FALSE(has<action::JournalDisposition>(actions));  // already journaled
    REQUIRE(find<action::MoveTo>(actions) != nullptr);
    CHECK(find<action::MoveTo>(actions)->to == hw::Destination::toSlot(1));
  }
  SECTION("out of order") {
    IntakeSnapshot snapshot;
    snapshot.out_of_order = true;
    Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10}, snapshot);
    CHECK(intake.start(0) ==
          std::vector<Action>{action::CloseShutter{}, action::Show{std::string(kTextOutOfOrder)}});
  }
}

TEST_CASE("offline: a card waits, then goes to a slot as pending", "[intake][offline]") {
  Intake intake(IntakeConfig{.slot_count = 4, .bin_capacity = 10, .offline_timeout_ms = 30'000});
  intake.start(0);
  dropAndCapture(intake, kId, 0);  // captured at 10
  CHECK_FALSE(has<action::MoveTo>(intake.handle(event::Tick{}, 30'009)));
  auto timed_out = intake.handle(event::Tick{}, 30'010);
  const auto* begin = find<action::JournalMoveBegin>(timed_out);
  REQUIRE(begin != nullptr);
  CHECK(begin->to == Location::inSlot(0));
  CHECK(begin->note == kReasonOffline);
  auto moved = intake.handle(event::MoveSucceeded{}, 30'020);
  CHECK(has<action::JournalMoveDone>(moved));
  CHECK_FALSE(has<action::SendStored>(moved));  // nothing to report before the decision
  CHECK(has<action::OpenShutter>(moved));
  CHECK(intake.phase() == Intake::Phase::kIdle);

  SECTION("a store decision reports the card in its slot") {
    auto later = intake.handle(event::DispositionReceived{kId, Decision::store("1234")}, 40'000);
    CHECK(later == std::vector<Action>{action::JournalDisposition{kId, Decision::store("1234")},
                                       action::SendStored{kId, Location::inSlot(0)}});
  }
  SECTION("a difficult decision flags the slot for the operator") {
    auto later =
        intake.handle(event::DispositionReceived{kId, Decision::difficult("no holder")}, 40'000);
    CHECK(has<action::FlagForOperator>(later));
    CHECK(find<action::SendStored>(later)->at == Location::inSlot(0));
    CHECK_FALSE(has<action::MoveTo>(later));
  }
  SECTION("the next card is handled meanwhile") {
    auto next = intake.handle(event::CardDetected{kOtherId}, 31'000);
    CHECK(has<action::Capture>(next));
  }
}

TEST_CASE("offline with no free slot: the card keeps waiting on the tray", "[intake][offline]") {
  IntakeSnapshot snapshot;
  snapshot.occupied_slots = {0};
  Intake intake(IntakeConfig{.slot_count = 1, .bin_capacity = 10, .offline_timeout_ms = 100},
                snapshot);
  intake.start(0);
  dropAndCapture(intake, kId, 0);
  CHECK_FALSE(has<action::MoveTo>(intake.handle(event::Tick{}, 10'000)));
  CHECK(intake.phase() == Intake::Phase::kAwaiting);
}

TEST_CASE("locations print and parse", "[types]") {
  for (const auto& loc : {Location::tray(), Location::inSlot(0), Location::inSlot(17),
                          Location::bin(), Location::jam(), Location::unknown()}) {
    CHECK(Location::parse(loc.text()) == loc);
  }
  CHECK(Location::inSlot(3).text() == "slot:3");
  CHECK_FALSE(Location::parse("slot:"));
  CHECK_FALSE(Location::parse("slot:-1"));
  CHECK_FALSE(Location::parse("shelf"));
}
