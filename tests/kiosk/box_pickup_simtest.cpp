// The kiosk's side of pickup on the simulated box, in-process with an injected clock and no
// cloud: the messages the controller sends are collected and the cloud's answers handed to it.
// What the end-to-end test cannot stop at: a power cut between "releasing" being journaled and
// the latch, an OPEN for a request from before a restart, a code never written to the journal.
#include <algorithm>
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

// ---- The operator's session: return slots, restock, the finder's card kept out ----

namespace {

const std::string kB = "bbbbbbbb-0000-4000-8000-000000000002";

// Deposit kB (card "card-b"): a difficult card that went to the bin and left it with an
// operator (BinEmptied journaled); the card is in the box's collected/ folder, in their hands.
void collectedFromBin(Fixture& f) {
  fs::create_directories(f.dir / "cards/card-b");
  std::ofstream(f.dir / "cards/card-b/front.jpg") << "y";
  f.box.dropCard(f.dir / "cards/card-b");
  REQUIRE(f.box.devices().sorter->moveTo(hw::Destination::toBin()));
  auto env = lostcard::wire::makeEnvelope(f.now_ms);
  env.mutable_card_captured()->set_deposit_id(kB);
  f.journal.recordCapture(env, f.now_ms);
  f.journal.recordDisposition(kB, Decision::difficult("unreadable"), f.now_ms);
  f.journal.captureAnswered(kB);
  f.journal.beginMove(kB, Location::tray(), Location::bin(), "", f.now_ms);
  f.journal.finishMove(kB, Location::bin(), f.now_ms);
  auto stored = lostcard::wire::makeEnvelope(f.now_ms);
  stored.mutable_card_stored()->set_deposit_id(kB);
  stored.mutable_card_stored()->mutable_location()->mutable_bin();
  f.journal.markAcked(f.journal.enqueue(kB, stored, f.now_ms).message_id());
  const std::string emptied = "dddddddd-0000-4000-8000-000000000004";
  f.journal.recordReleaseAsked(emptied, ReleaseKind::kBin, -1, f.now_ms);
  f.journal.recordReleaseOpening(emptied, "", f.now_ms);
  auto report = lostcard::wire::makeEnvelope(f.now_ms);
  report.mutable_bin_emptied()->set_request_id(emptied);
  f.journal.finishRelease(emptied, ReleaseState::kEmptied, "", report, f.now_ms);
  REQUIRE(f.box.emptyBin().size() == 1);
  REQUIRE(f.journal.deposit(kB)->state == DepositState::kCollected);
}

// The operator types their code; the cloud answers OK with these lists.
std::string operatorSession(Fixture& f, const std::vector<v1::ReturnSlot>& returns,
                            const std::vector<v1::RestockCard>& restock) {
  f.box.type("* 2468013579");
  f.controller->poll();
  REQUIRE(f.sent.back().has_operator_auth_request());
  const std::string request_id = f.sent.back().operator_auth_request().request_id();
  auto env = lostcard::wire::makeEnvelope(0);
  auto* answer = env.mutable_operator_auth_answer();
  answer->set_request_id(request_id);
  answer->set_result(v1::OPERATOR_AUTH_RESULT_OK);
  for (const auto& r : returns) {
    *answer->add_return_slots() = r;
  }
  for (const auto& r : restock) {
    *answer->add_restock() = r;
  }
  f.controller->onMessage(env);
  return request_id;
}

v1::ReturnSlot returnSlot(int slot, const std::string& deposit_id) {
  v1::ReturnSlot r;
  r.set_slot(static_cast<std::uint32_t>(slot));
  r.set_deposit_id(deposit_id);
  return r;
}

v1::RestockCard restockCard(int number, const std::string& deposit_id) {
  v1::RestockCard r;
  r.set_restock_number(static_cast<std::uint32_t>(number));
  r.set_deposit_id(deposit_id);
  r.set_last4("4242");
  return r;
}

template <class Pred>
int countSent(const Fixture& f, Pred pred) {
  return static_cast<int>(std::count_if(f.sent.begin(), f.sent.end(), pred));
}

void typeAndPoll(Fixture& f, const std::string& entry) {
  f.box.type(entry);
  f.now_ms += 100;
  f.controller->poll();
}

// The number printed on card-b, as the operator types it after '#N'.
constexpr const char* kCardB = "4000 0566 5566 5556";

// The operator types `entry` ('#N' and a card number): the RestockCheck the kiosk sent.
v1::RestockCheck restockTyped(Fixture& f, const std::string& entry) {
  const auto before = f.sent.size();
  typeAndPoll(f, entry);
  REQUIRE(f.sent.size() == before + 1);
  REQUIRE(f.sent.back().has_restock_check());
  return f.sent.back().restock_check();
}

void answerRestock(Fixture& f, const std::string& request_id, v1::RestockCheckResult result) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_restock_check_answer()->set_request_id(request_id);
  env.mutable_restock_check_answer()->set_result(result);
  f.controller->onMessage(env);
}

}  // namespace

TEST_CASE("restock: only after # and a listed number, one card, stored as that deposit", "[box]") {
  Fixture f("restock");
  collectedFromBin(f);
  f.start();
  CHECK(f.box.shutterState() == "open");
  operatorSession(f, {}, {restockCard(7, kB)});
  CHECK(f.box.shutterState() == "closed");  // no finder's card while the operator works

  // A number not on this box's list (a wrong one, or another box's) arms nothing, unasked.
  typeAndPoll(f, std::string("#8 ") + kCardB);
  CHECK(f.box.displayText() == "No card to put back has number #8 at this box.");
  CHECK(f.box.shutterState() == "closed");
  CHECK(countSent(f, [](const v1::Envelope& e) { return e.has_restock_check(); }) == 0);
  // '#N' alone: the format, nothing asked.
  typeAndPoll(f, "#7");
  CHECK(f.box.displayText() == std::string(kTextRestockFormat));
  CHECK(countSent(f, [](const v1::Envelope& e) { return e.has_restock_check(); }) == 0);

  // '#7' and the card's number: the cloud is asked about deposit kB; nothing is armed meanwhile.
  const auto check = restockTyped(f, std::string("#7 ") + kCardB);
  CHECK(check.deposit_id() == kB);
  CHECK(check.number() == kCardB);
  CHECK(lostcard::wire::isUuid(check.request_id()));
  CHECK(f.box.displayText() == "Checking card #7...");
  CHECK(f.box.shutterState() == "closed");
  CHECK_FALSE(f.controller->intake()->restockArmed());
  answerRestock(f, check.request_id(), v1::RESTOCK_CHECK_RESULT_OK);
  CHECK(f.box.displayText() == "Put card #7 in the intake.");
  CHECK(f.box.shutterState() == "open");
  REQUIRE(f.box.putBack("card-b").has_value());
  f.now_ms += 100;
  f.controller->poll();
  // Into the lowest free slot (slot 1 holds kA), reported as kB; never photographed or sent
  // for recognition.
  CHECK(f.box.cardInSlot(0) == std::optional<std::string>("card-b"));
  CHECK(countSent(f, [](const v1::Envelope& e) { return e.has_card_captured(); }) == 0);
  REQUIRE(countSent(f, [](const v1::Envelope& e) {
            return e.has_card_stored() && e.card_stored().deposit_id() == kB &&
                   e.card_stored().location().has_slot() && e.card_stored().location().slot() == 0;
          }) == 1);
  const auto b = f.journal.deposit(kB);
  CHECK(b->state == DepositState::kStored);
  CHECK(b->location == Location::inSlot(0));
  REQUIRE(b->decision);
  CHECK(b->decision->isStore());
  CHECK(b->decision->last4 == "4242");
  CHECK(f.box.shutterState() == "closed");  // armed for one card only
  // The card's number is in no journal file.
  for (const auto* suffix : {"", "-wal"}) {
    const auto bytes = fileBytes(f.dir / (std::string("journal.sqlite") + suffix));
    CHECK(bytes.find(kCardB) == std::string::npos);
    CHECK(bytes.find("4000056655665556") == std::string::npos);
  }

  // Put back once: the number no longer arms anything.
  typeAndPoll(f, std::string("#7 ") + kCardB);
  CHECK(f.box.displayText() == "No card to put back has number #7 at this box.");
  typeAndPoll(f, "*");
  CHECK(f.box.shutterState() == "open");
  CHECK(f.box.displayText() == std::string(kTextReady));
  // Outside a session, '#' and '*' do nothing.
  typeAndPoll(f, std::string("#7 ") + kCardB);
  CHECK(f.box.displayText() == "Operators: type * and your code first.");
}

TEST_CASE("restock: a card whose number is not the deposit's is refused and nothing is armed",
          "[box]") {
  Fixture f("restock-mismatch");
  collectedFromBin(f);
  f.start();
  operatorSession(f, {}, {restockCard(7, kB)});

  // Another holder's card labelled #7: the cloud says MISMATCH.
  const auto wrong = restockTyped(f, "#7 4556 7375 8689 9855");
  answerRestock(f, wrong.request_id(), v1::RESTOCK_CHECK_RESULT_MISMATCH);
  CHECK(f.box.displayText() == "That card is not #7: check its label and number.");
  CHECK(f.box.shutterState() == "closed");
  CHECK_FALSE(f.controller->intake()->restockArmed());
  // A card put in the intake now is not taken for kB.
  REQUIRE(f.box.putBack("card-b").has_value());
  f.now_ms += 100;
  f.controller->poll();
  CHECK(countSent(f, [](const v1::Envelope& e) { return e.has_card_stored(); }) == 0);
  CHECK(f.journal.deposit(kB)->state == DepositState::kCollected);
}

TEST_CASE("restock: an answer for a check no longer waited for arms nothing", "[box]") {
  Fixture f("restock-stale");
  collectedFromBin(f);
  f.start();
  operatorSession(f, {}, {restockCard(7, kB), restockCard(9, kA)});

  // Another entry typed since: the first check's OK arms nothing.
  const auto first = restockTyped(f, std::string("#7 ") + kCardB);
  const auto second = restockTyped(f, std::string("#9 ") + kCardB);
  CHECK(second.request_id() != first.request_id());
  answerRestock(f, first.request_id(), v1::RESTOCK_CHECK_RESULT_OK);
  CHECK_FALSE(f.controller->intake()->restockArmed());
  CHECK(f.box.shutterState() == "closed");
  answerRestock(f, second.request_id(), v1::RESTOCK_CHECK_RESULT_NOT_WAITING);
  CHECK(f.box.displayText() == "Card #9 does not wait to be put back at this box.");
  CHECK_FALSE(f.controller->intake()->restockArmed());

  // No answer in time: given up; an OK that comes later arms nothing. While it is waited for,
  // it is in the backlog (sent again after a reconnect).
  const auto late = restockTyped(f, std::string("#7 ") + kCardB);
  const auto backlog = f.controller->backlog();
  CHECK(std::count_if(backlog.begin(), backlog.end(), [&](const v1::Envelope& e) {
          return e.has_restock_check() && e.restock_check().request_id() == late.request_id();
        }) == 1);
  f.now_ms += 2000;  // answer_timeout_ms
  f.controller->poll();
  CHECK_THAT(f.box.displayText(), Catch::Contains("does not answer"));
  for (const auto& e : f.controller->backlog()) {
    CHECK_FALSE(e.has_restock_check());
  }
  answerRestock(f, late.request_id(), v1::RESTOCK_CHECK_RESULT_OK);
  CHECK_FALSE(f.controller->intake()->restockArmed());

  // A throttled kiosk says so, and arms nothing.
  const auto throttled = restockTyped(f, std::string("#7 ") + kCardB);
  answerRestock(f, throttled.request_id(), v1::RESTOCK_CHECK_RESULT_THROTTLED);
  CHECK_THAT(f.box.displayText(), Catch::Contains("Too many wrong card numbers"));
  CHECK_FALSE(f.controller->intake()->restockArmed());

  // The session ended before the answer came: nothing armed, the intake serves finders again.
  const auto ended = restockTyped(f, std::string("#7 ") + kCardB);
  typeAndPoll(f, "*");
  answerRestock(f, ended.request_id(), v1::RESTOCK_CHECK_RESULT_OK);
  CHECK_FALSE(f.controller->intake()->restockArmed());
  CHECK(f.box.displayText() == std::string(kTextReady));
}

TEST_CASE("restock: a card dropped without # is a finder's, taken after the session", "[box]") {
  Fixture f("restock-finder");
  collectedFromBin(f);
  f.start();
  operatorSession(f, {}, {restockCard(7, kB)});
  fs::create_directories(f.dir / "cards/finder");
  std::ofstream(f.dir / "cards/finder/front.jpg") << "z";
  f.box.dropCard(f.dir / "cards/finder");
  f.now_ms += 100;
  f.controller->poll();
  CHECK(countSent(f, [](const v1::Envelope& e) { return e.has_card_captured(); }) == 0);
  // Nor does #N arm while it lies there: it would be taken for the operator's card.
  typeAndPoll(f, std::string("#7 ") + kCardB);
  CHECK_THAT(f.box.displayText(), Catch::Contains("A card is in the intake"));
  CHECK_FALSE(f.controller->intake()->restockArmed());
  typeAndPoll(f, "*");
  for (int i = 0; i < 10; ++i) {  // the camera may take its tries (the card is no photo)
    f.now_ms += 300;
    f.controller->poll();
  }
  REQUIRE(countSent(f, [](const v1::Envelope& e) { return e.has_card_captured(); }) == 1);
  const auto captured = std::find_if(f.sent.begin(), f.sent.end(),
                                     [](const v1::Envelope& e) { return e.has_card_captured(); });
  CHECK(captured->card_captured().deposit_id() != kB);
  CHECK(f.journal.deposit(kB)->state == DepositState::kCollected);
}

TEST_CASE("restock: a power cut with the card on the tray finishes the move at start-up", "[box]") {
  Fixture f("restock-cut");
  collectedFromBin(f);
  REQUIRE(f.box.putBack("card-b").has_value());
  f.journal.recordRestock(kB, "4242", f.now_ms);  // then the power went
  f.start();
  CHECK(f.box.cardInSlot(0) == std::optional<std::string>("card-b"));
  CHECK(f.journal.deposit(kB)->location == Location::inSlot(0));
  CHECK(countSent(f, [](const v1::Envelope& e) {
          return e.has_card_stored() && e.card_stored().deposit_id() == kB;
        }) == 1);
}

TEST_CASE("return slots open for the operator; the cards taken are reported at the end", "[box]") {
  Fixture f("returns");
  f.start();
  const std::string request_id =
      operatorSession(f, {returnSlot(1, kA), returnSlot(2, kB)}, {});  // kB is not in slot 2
  CHECK(f.slotUnlocked(1));
  CHECK_FALSE(f.slotUnlocked(2));
  CHECK(f.journal.release(returnKey(request_id, 1))->state == ReleaseState::kOpen);
  REQUIRE(f.box.collectFromSlot(1).has_value());
  typeAndPoll(f, "*");
  const auto reports = countSent(f, [&](const v1::Envelope& e) {
    return e.has_return_collected() && e.return_collected().request_id() == request_id &&
           e.return_collected().deposit_ids_size() == 1 &&
           e.return_collected().deposit_ids(0) == kA;
  });
  CHECK(reports == 1);
  CHECK(f.journal.deposit(kA)->state == DepositState::kCollected);
  CHECK(f.journal.release(returnKey(request_id, 1))->state == ReleaseState::kTaken);
  for (const auto& r : f.journal.unfinishedReleases()) {
    CHECK(r.kind == ReleaseKind::kBin);  // its door was never opened: still waiting
  }
}

TEST_CASE("a power cut with a return slot open: settled from its sensor at start-up", "[box]") {
  Fixture f("returns-cut");
  const std::string request = "eeeeeeee-0000-4000-8000-000000000005";
  f.journal.recordReleaseAsked(returnKey(request, 1), ReleaseKind::kReturn, 1, f.now_ms);
  f.journal.recordReleaseOpening(returnKey(request, 1), kA, f.now_ms);
  f.journal.recordReleaseOpen(returnKey(request, 1), f.now_ms);
  REQUIRE(f.box.collectFromSlot(1).has_value());  // the operator took it, then the power went
  f.start();
  CHECK_FALSE(f.slotUnlocked(1));  // recovery opens nothing
  CHECK(countSent(f, [&](const v1::Envelope& e) {
          return e.has_return_collected() && e.return_collected().deposit_ids_size() == 1 &&
                 e.return_collected().deposit_ids(0) == kA;
        }) == 1);
  CHECK(f.journal.deposit(kA)->state == DepositState::kCollected);
  CHECK(f.journal.unfinishedReleases().empty());
  // No operator request is asked again for it.
  for (const auto& env : f.controller->backlog()) {
    CHECK_FALSE(env.has_operator_auth_request());
  }
}

TEST_CASE("an operator's session ends by itself after its time", "[box]") {
  Fixture f("session-timeout");
  f.start();
  f.controller->setBoxOptions({.unlock_ms = 100,
                               .take_ms = 5000,
                               .answer_timeout_ms = 2000,
                               .operator_session_ms = 60'000});
  operatorSession(f, {}, {});
  CHECK(f.box.shutterState() == "closed");
  f.now_ms += 59'000;
  f.controller->poll();
  CHECK(f.box.shutterState() == "closed");
  f.now_ms += 2'000;
  f.controller->poll();
  CHECK(f.box.shutterState() == "open");
}
