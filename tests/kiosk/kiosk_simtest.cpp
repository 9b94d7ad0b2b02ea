// The kiosk with the real simulated box (hw::SimBox, folders on disk), its real journal and its
// real uplink, talking to a fake cloud played in-process over in-memory streams.
#include <catch2/catch.hpp>

// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "fake_cloud.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/controller.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace hw = lostcard::hw;
namespace v1 = lostcard::v1;
using namespace lostcard::kiosk;
using lostcard::kiosk::test::FakeCloud;
using lostcard::kiosk::test::runUntil;
using lostcard::kiosk::test::Stream;

namespace {

std::int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string cardJpeg(bool back) {
  cv::Mat image(60, 96, CV_8UC3, cv::Scalar(40, 90, back ? 180 : 60));
  cv::putText(image, back ? "back" : "front", {8, 30}, cv::FONT_HERSHEY_SIMPLEX, 0.5,
              cv::Scalar(255, 255, 255), 1);
  std::vector<uchar> jpeg;
  REQUIRE(cv::imencode(".jpg", image, jpeg));
  return std::string(jpeg.begin(), jpeg.end());
}

fs::path makeCard(const fs::path& dir, const std::string& name) {
  const fs::path card = dir / name;
  fs::create_directories(card);
  std::ofstream(card / "front.jpg", std::ios::binary) << cardJpeg(false);
  std::ofstream(card / "back.jpg", std::ios::binary) << cardJpeg(true);
  return card;
}

// One kiosk: the simulated box, the journal, the controller and the uplink on one io_context,
// with the sensor polled every few milliseconds as the daemon does.
struct Kiosk {
  Kiosk(asio::io_context& io, FakeCloud& cloud, const fs::path& dir, IntakeConfig config,
        int slots = 4)
      : io(io),
        box(hw::SimBoxOptions{.root = dir / "box",
                              .slot_count = slots,
                              .bin_capacity = config.bin_capacity,
                              .frame_jitter_seed = 1}),
        journal(dir / "journal.sqlite"),
        uplink(io.get_executor(), cloud.connector(),
               UplinkOptions{.kiosk_id = "kiosk-test",
                             .hello_timeout = std::chrono::minutes(10),
                             .backoff_initial = std::chrono::milliseconds(1),
                             .backoff_max = std::chrono::milliseconds(5)},
               UplinkHandlers{
                   .backlog = [this] { return controller->backlog(); },
                   .on_message = [this](const v1::Envelope& env) { controller->onMessage(env); },
                   .on_link = {},
                   .clock_ms = wallClockMs}),
        poll_timer(io) {
    controller.emplace(box.devices(), journal, config, wallClockMs,
                       [this](const v1::Envelope& env) { uplink.send(env); });
    controller->start();
    asio::co_spawn(io, uplink.run(), asio::detached);
    asio::co_spawn(io, pollLoop(), asio::detached);
  }

  ~Kiosk() { stop(); }

  void stop() {
    if (stopped) {
      return;
    }
    stopped = true;
    controller->shutdown();
    uplink.stop();
    poll_timer.cancel();
    runUntil(io, [&] { return !polling; });
  }

  asio::awaitable<void> pollLoop() {
    polling = true;
    while (!stopped) {
      poll_timer.expires_after(std::chrono::milliseconds(5));
      boost::system::error_code ec;
      co_await poll_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!stopped) {
        controller->poll();
      }
    }
    polling = false;
  }

  asio::io_context& io;
  hw::SimBox box;
  Journal journal;
  Uplink<Stream> uplink;
  std::optional<Controller> controller;
  asio::steady_timer poll_timer;
  bool stopped = false;
  bool polling = false;
};

v1::Envelope storeDisposition(const std::string& deposit_id, const std::string& last4) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_disposition()->set_deposit_id(deposit_id);
  env.mutable_disposition()->mutable_store()->set_last4(last4);
  return env;
}

v1::Envelope difficultDisposition(const std::string& deposit_id, v1::DifficultReason reason) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_disposition()->set_deposit_id(deposit_id);
  env.mutable_disposition()->mutable_difficult()->set_reason(reason);
  return env;
}

struct Fixture {
  explicit Fixture(const std::string& name)
      : dir(lostcard::test::makeTestDir("kiosk_simtest/" + name)), cloud(io) {}
  fs::path dir;
  asio::io_context io;
  FakeCloud cloud;

  // Waits for the kiosk's next connection and answers its Hello.
  lostcard::kiosk::test::CloudEnd& accept(std::size_t index) {
    REQUIRE(runUntil(io, [&] { return cloud.hasGot(index, 1); }));
    REQUIRE(cloud.end(index).got[0].has_hello());
    cloud.end(index).helloAck();
    return cloud.end(index);
  }
};

}  // namespace

TEST_CASE("a dropped card is photographed, reported, stored in slot 0 and acknowledged",
          "[kiosk][sim]") {
  Fixture f("store");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10, .frames_per_face = 2});
  auto& cloud = f.accept(0);
  CHECK(kiosk.box.shutterState() == "open");
  CHECK(kiosk.box.displayText() == kTextReady);

  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-a"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto captured = cloud.all(v1::Envelope::kCardCaptured).front();
  const auto& cc = captured.card_captured();
  const std::string deposit_id = cc.deposit_id();
  CHECK(lostcard::wire::isUuid(deposit_id));
  CHECK(cc.front_size() == 2);
  CHECK(cc.back_size() == 2);
  CHECK(cc.front(0).jpeg().substr(0, 2) == "\xff\xd8");  // JPEG
  CHECK(cc.front(0).width_px() == 96);
  CHECK(cc.metadata().camera_id() == "sim-camera");
  // Until the cloud answers, the card waits on the tray behind the closed shutter.
  CHECK(kiosk.box.cardsInIntake() == std::vector<std::string>{"card-a"});
  CHECK(kiosk.box.shutterState() == "closed");
  CHECK(kiosk.box.displayText() == kTextThanks);
  CHECK(kiosk.journal.whereIs(deposit_id) == Location::tray());
  CHECK(kiosk.journal.imageCount(deposit_id) == 4);

  cloud.send(storeDisposition(deposit_id, "4242"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  const auto stored = cloud.all(v1::Envelope::kCardStored).front();
  CHECK(stored.card_stored().deposit_id() == deposit_id);
  CHECK(stored.card_stored().location().has_slot());
  CHECK(stored.card_stored().location().slot() == 0);

  // Physically in slot 0, and the journal agrees.
  CHECK(kiosk.box.cardInSlot(0) == std::optional<std::string>("card-a"));
  CHECK(kiosk.box.cardsInIntake().empty());
  auto record = kiosk.journal.deposit(deposit_id);
  REQUIRE(record);
  CHECK(record->location == Location::inSlot(0));
  CHECK(record->state == DepositState::kStored);
  CHECK(record->decision == Decision::store("4242"));
  CHECK(kiosk.journal.imageCount(deposit_id) == 0);  // the cloud has answered
  CHECK(kiosk.box.shutterState() == "open");

  // The CardStored is resent until acknowledged; the Ack ends that.
  REQUIRE(kiosk.journal.unackedOutbox().size() == 1);
  cloud.send(lostcard::wire::makeAck(stored.message_id(), 0));
  REQUIRE(runUntil(f.io, [&] { return kiosk.journal.unackedOutbox().empty(); }));
}

TEST_CASE("a difficult card goes to the bin", "[kiosk][sim]") {
  Fixture f("difficult");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
  auto& cloud = f.accept(0);
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-b"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto id = cloud.all(v1::Envelope::kCardCaptured).front().card_captured().deposit_id();
  cloud.send(difficultDisposition(id, v1::DIFFICULT_REASON_NO_HOLDER));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  CHECK(cloud.all(v1::Envelope::kCardStored).front().card_stored().location().has_bin());
  CHECK(kiosk.box.cardsInBin() == std::vector<std::string>{"card-b"});
  CHECK(kiosk.journal.whereIs(id) == Location::bin());
  CHECK(kiosk.journal.deposit(id)->reason == "no holder");
}

TEST_CASE("a camera failure sends the card to the bin without waiting for the cloud",
          "[kiosk][sim]") {
  Fixture f("camera");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
  auto& cloud = f.accept(0);
  kiosk.box.setFault(hw::SimFault::kCameraFailure, true);
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-c"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  const auto captured = cloud.all(v1::Envelope::kCardCaptured);
  REQUIRE(captured.size() == 1);
  CHECK(captured[0].card_captured().front_size() == 0);
  CHECK(captured[0].card_captured().back_size() == 0);
  const auto id = captured[0].card_captured().deposit_id();
  CHECK(kiosk.box.cardsInBin() == std::vector<std::string>{"card-c"});
  CHECK(kiosk.journal.whereIs(id) == Location::bin());
  CHECK_THAT(kiosk.journal.deposit(id)->reason, Catch::Contains("capture failed"));
  // The cloud's answer to the empty capture is taken as an answer and changes nothing.
  cloud.send(difficultDisposition(id, v1::DIFFICULT_REASON_BAD_IMAGE));
  REQUIRE(runUntil(f.io, [&] {
    auto outbox = kiosk.journal.unackedOutbox();
    return outbox.size() == 1 && outbox[0].has_card_stored();
  }));
  CHECK(kiosk.journal.whereIs(id) == Location::bin());
}

TEST_CASE("a card the cloud refuses goes to the bin instead of waiting for ever", "[kiosk][sim]") {
  Fixture f("refused");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
  auto& cloud = f.accept(0);
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-r"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto captured = cloud.all(v1::Envelope::kCardCaptured).front();
  const auto id = captured.card_captured().deposit_id();
  cloud.send(lostcard::wire::makeAck(captured.message_id(), 0, "kiosk not enrolled"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  CHECK(kiosk.box.cardsInBin() == std::vector<std::string>{"card-r"});
  CHECK_THAT(kiosk.journal.deposit(id)->reason, Catch::Contains("kiosk not enrolled"));
  CHECK(kiosk.journal.imageCount(id) == 0);
}

TEST_CASE("a sorter jam puts the box out of order with the card journaled as jammed",
          "[kiosk][sim]") {
  Fixture f("jam");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
  auto& cloud = f.accept(0);
  kiosk.box.setFault(hw::SimFault::kSorterJam, true);
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-d"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto id = cloud.all(v1::Envelope::kCardCaptured).front().card_captured().deposit_id();
  cloud.send(storeDisposition(id, "1111"));
  REQUIRE(runUntil(f.io, [&] { return kiosk.box.displayText() == kTextOutOfOrder; }));
  CHECK(kiosk.box.cardsJammed() == std::vector<std::string>{"card-d"});
  CHECK(kiosk.box.shutterState() == "closed");
  auto record = kiosk.journal.deposit(id);
  CHECK(record->location == Location::jam());
  CHECK(record->state == DepositState::kFault);
  CHECK(cloud.all(v1::Envelope::kCardStored).empty());  // the card is not where it belongs
}

TEST_CASE("after a restart the unanswered CardCaptured is resent and the card still stored",
          "[kiosk][sim]") {
  Fixture f("restart");
  std::string id;
  std::string message_id;
  {
    Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
    auto& cloud = f.accept(0);
    kiosk.box.dropCard(makeCard(f.dir / "cards", "card-e"));
    REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
    const auto captured = cloud.all(v1::Envelope::kCardCaptured).front();
    id = captured.card_captured().deposit_id();
    message_id = captured.message_id();
    // The daemon stops before the cloud answers.
  }
  const std::size_t next_connection = f.cloud.connections();
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
  CHECK(kiosk.controller->intake()->trayDeposit() == std::optional<std::string>(id));
  auto& cloud = f.accept(next_connection);
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto again = cloud.all(v1::Envelope::kCardCaptured).front();
  CHECK(again.message_id() == message_id);
  CHECK(again.card_captured().front_size() == 2);  // the images came from the journal
  cloud.send(storeDisposition(id, "5555"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  CHECK(kiosk.box.cardInSlot(0) == std::optional<std::string>("card-e"));
  CHECK(kiosk.journal.deposits().size() == 1);  // the same deposit, not a new one
}

TEST_CASE("offline, a card goes to a slot as pending and is reported when the cloud answers",
          "[kiosk][sim][offline]") {
  Fixture f("offline");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10, .offline_timeout_ms = 1});
  // The cloud does not answer Hello yet: the link is down.
  REQUIRE(runUntil(f.io, [&] { return f.cloud.hasGot(0, 1); }));
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-f"));
  REQUIRE(runUntil(f.io, [&] { return kiosk.box.cardInSlot(0).has_value(); }));
  auto pending = kiosk.journal.deposits(DepositState::kPending);
  REQUIRE(pending.size() == 1);
  const auto id = pending[0].deposit_id;
  CHECK(pending[0].location == Location::inSlot(0));
  CHECK(kiosk.box.shutterState() == "open");

  // The link comes up: the CardCaptured goes out, the answer comes, CardStored follows.
  auto& cloud = f.accept(0);
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardCaptured).empty(); }));
  cloud.send(storeDisposition(id, "7777"));
  REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
  CHECK(cloud.all(v1::Envelope::kCardStored).front().card_stored().location().slot() == 0);
  CHECK(kiosk.journal.deposit(id)->state == DepositState::kStored);
}

namespace {

// The journal as a power cut left it: a decided deposit whose move to `to` was begun.
std::string journalInterruptedMove(const fs::path& dir, const Decision& decision,
                                   const Location& to) {
  Journal journal(dir / "journal.sqlite");
  auto env = lostcard::wire::makeEnvelope(0);
  const std::string id = lostcard::wire::newUuid();
  env.mutable_card_captured()->set_deposit_id(id);
  env.mutable_card_captured()->add_front()->set_jpeg("front");
  journal.recordCapture(env, 1000);
  journal.recordDisposition(id, decision, 1100);
  journal.captureAnswered(id);
  journal.beginMove(id, Location::tray(), to, "", 1200);
  return id;
}

}  // namespace

TEST_CASE("start-up finishes what a power cut interrupted", "[kiosk][sim][recovery]") {
  SECTION("the card never left the tray: the move is done again") {
    Fixture f("recover-tray");
    const auto id = journalInterruptedMove(f.dir, Decision::store("1234"), Location::inSlot(0));
    {
      hw::SimBox box({.root = f.dir / "box", .slot_count = 4});
      box.dropCard(makeCard(f.dir / "cards", "card-g"));
    }
    Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
    CHECK(kiosk.box.cardInSlot(0) == std::optional<std::string>("card-g"));
    CHECK(kiosk.journal.whereIs(id) == Location::inSlot(0));
    auto& cloud = f.accept(0);
    REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
    CHECK(cloud.all(v1::Envelope::kCardStored).front().card_stored().deposit_id() == id);
    CHECK(kiosk.journal.deposits().size() == 1);  // the card was not taken for a new one
  }
  SECTION("the card reached its slot: the journal catches up and the cloud is told") {
    Fixture f("recover-slot");
    const auto id = journalInterruptedMove(f.dir, Decision::store("1234"), Location::inSlot(1));
    {
      hw::SimBox box({.root = f.dir / "box", .slot_count = 4});
      box.dropCard(makeCard(f.dir / "cards", "card-h"));
      REQUIRE(box.devices().sorter->moveTo(hw::Destination::toSlot(1)));
    }
    Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
    CHECK(kiosk.journal.whereIs(id) == Location::inSlot(1));
    CHECK(kiosk.journal.deposit(id)->state == DepositState::kStored);
    CHECK(kiosk.journal.openMoves().empty());
    auto& cloud = f.accept(0);
    REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
    CHECK(cloud.all(v1::Envelope::kCardStored).front().card_stored().location().slot() == 1);
    CHECK(kiosk.controller->intake()->occupiedSlots() == std::set<int>{1});
  }
  SECTION("the card left the tray for the bin: assumed there, flagged for the operator") {
    Fixture f("recover-bin");
    const auto id =
        journalInterruptedMove(f.dir, Decision::difficult("unreadable"), Location::bin());
    {
      hw::SimBox box({.root = f.dir / "box", .slot_count = 4});
      box.dropCard(makeCard(f.dir / "cards", "card-i"));
      REQUIRE(box.devices().sorter->moveTo(hw::Destination::toBin()));
    }
    Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 10});
    auto record = kiosk.journal.deposit(id);
    CHECK(record->location == Location::bin());
    CHECK(record->flagged);
    auto& cloud = f.accept(0);
    REQUIRE(runUntil(f.io, [&] { return !cloud.all(v1::Envelope::kCardStored).empty(); }));
    CHECK(cloud.all(v1::Envelope::kCardStored).front().card_stored().location().has_bin());
  }
}

TEST_CASE("a full box keeps its shutter closed", "[kiosk][sim]") {
  Fixture f("full");
  Kiosk kiosk(f.io, f.cloud, f.dir, IntakeConfig{.bin_capacity = 1}, /*slots=*/1);
  auto& cloud = f.accept(0);
  // The first card fills the only slot; the box still takes cards, as the bin has room.
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-j"));
  REQUIRE(runUntil(f.io, [&] { return cloud.all(v1::Envelope::kCardCaptured).size() == 1; }));
  cloud.send(storeDisposition(
      cloud.all(v1::Envelope::kCardCaptured)[0].card_captured().deposit_id(), "2222"));
  REQUIRE(runUntil(f.io, [&] { return kiosk.box.cardInSlot(0).has_value(); }));
  CHECK(kiosk.box.shutterState() == "open");

  // The second card fills the bin: now nothing more fits.
  kiosk.box.dropCard(makeCard(f.dir / "cards", "card-k"));
  REQUIRE(runUntil(f.io, [&] { return cloud.all(v1::Envelope::kCardCaptured).size() == 2; }));
  cloud.send(
      difficultDisposition(cloud.all(v1::Envelope::kCardCaptured)[1].card_captured().deposit_id(),
                           v1::DIFFICULT_REASON_UNREADABLE));
  REQUIRE(runUntil(f.io, [&] { return kiosk.box.cardsInBin().size() == 1; }));
  CHECK(kiosk.box.shutterState() == "closed");
  CHECK(kiosk.box.displayText() == kTextFull);
  CHECK(kiosk.controller->intake()->phase() == Intake::Phase::kFull);
}
