// The simulated box: cards dropped into the intake are seen and photographed, the sorter
// carries them to slots and the bin with the refusals a real box has, each fault switch does
// what it says, and the physical state lives on the filesystem (it survives the SimBox and
// other processes can change it).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using lostcard::hw::Destination;
using lostcard::hw::Face;
using lostcard::hw::SimBox;
using lostcard::hw::SimBoxOptions;
using lostcard::hw::SimFault;
using lostcard::hw::Status;
using namespace std::chrono_literals;

namespace {

// A small card-like image: a coloured background, a stripe and some text.
std::string cardJpeg(int seed, bool back) {
  cv::Mat image(60, 96, CV_8UC3, cv::Scalar(40 + seed * 13 % 150, 90, back ? 180 : 60));
  cv::rectangle(image, {4, back ? 8 : 36}, {91, back ? 20 : 44}, cv::Scalar(230, 230, 230),
                cv::FILLED);
  cv::putText(image, std::to_string(seed), {8, 30}, cv::FONT_HERSHEY_SIMPLEX, 0.6,
              cv::Scalar(255, 255, 255), 1);
  std::vector<uchar> jpeg;
  REQUIRE(cv::imencode(".jpg", image, jpeg));
  return std::string(jpeg.begin(), jpeg.end());
}

// A card folder (front.jpg, back.jpg) under `dir`, as the card generator makes them.
fs::path makeCard(const fs::path& dir, const std::string& name, int seed) {
  const fs::path card = dir / name;
  fs::create_directories(card);
  std::ofstream(card / "front.jpg", std::ios::binary) << cardJpeg(seed, false);
  std::ofstream(card / "back.jpg", std::ios::binary) << cardJpeg(seed, true);
  return card;
}

// Lets a sorter held mid-move on `sorter` go and waits for it: a failed check must not leave
// a thread running (std::terminate) or a sorter held.
void releaseHold(SimBox& box, std::thread& sorter) {
  box.setFault(SimFault::kHoldMidMove, false);
  sorter.join();
}

struct Fixture {
  explicit Fixture(const std::string& name, int slots = 6, int bin_capacity = 100) {
    dir = lostcard::test::makeTestDir("sim_box_simtest/" + name);
    root = dir / "box";
    cards = dir / "cards";
    options = SimBoxOptions{root, slots, bin_capacity, 7};
  }
  fs::path dir;
  fs::path root;
  fs::path cards;
  SimBoxOptions options;
};

cv::Mat decode(const std::string& jpeg) {
  const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
  return cv::imdecode(raw, cv::IMREAD_COLOR);
}

}  // namespace

TEST_CASE("the box creates its folders and starts empty", "[sim]") {
  Fixture f("empty");
  SimBox box(f.options);
  for (const char* sub : {"intake", "bin", "jam", "faults", "state", "slots/00", "slots/05"}) {
    CHECK(fs::is_directory(f.root / sub));
  }
  CHECK_FALSE(fs::exists(f.root / "slots/06"));
  auto devices = box.devices();
  REQUIRE(devices.camera);
  REQUIRE(devices.sensor);
  REQUIRE(devices.sorter);
  REQUIRE(devices.shutter);
  REQUIRE(devices.locks);
  REQUIRE(devices.display);
  CHECK(devices.sorter->slotCount() == 6);
  auto present = devices.sensor->cardPresent();
  REQUIRE(present);
  CHECK_FALSE(*present);
  CHECK(box.cardsInIntake().empty());
  CHECK(box.cardsInBin().empty());
  CHECK_FALSE(box.cardInSlot(0));
  CHECK(box.shutterState() == "closed");
}

TEST_CASE("a dropped card is sensed and photographed on both faces", "[sim]") {
  Fixture f("camera");
  SimBox box(f.options);
  auto devices = box.devices();

  auto nothing = devices.camera->capture(Face::kFront, 2);
  REQUIRE_FALSE(nothing);
  CHECK(nothing.error() == "camera: no card on the tray");

  CHECK(box.dropCard(makeCard(f.cards, "card-a", 1)) == "card-a");
  CHECK(box.cardsInIntake() == std::vector<std::string>{"card-a"});
  auto present = devices.sensor->cardPresent();
  REQUIRE(present);
  CHECK(*present);

  auto front = devices.camera->capture(Face::kFront, 3);
  REQUIRE(front);
  REQUIRE(front->size() == 3);
  for (const auto& frame : *front) {
    const cv::Mat image = decode(frame.jpeg);
    REQUIRE_FALSE(image.empty());
    CHECK(frame.width_px == 96);
    CHECK(frame.height_px == 60);
    CHECK(image.cols == 96);
    CHECK(image.rows == 60);
  }
  CHECK((*front)[0].jpeg != (*front)[1].jpeg);
  CHECK((*front)[1].jpeg != (*front)[2].jpeg);

  auto back = devices.camera->capture(Face::kBack, 1);
  REQUIRE(back);
  REQUIRE(back->size() == 1);
  // The back is another picture: its mean colour differs clearly from the front's.
  const cv::Scalar front_mean = cv::mean(decode((*front)[0].jpeg));
  const cv::Scalar back_mean = cv::mean(decode((*back)[0].jpeg));
  CHECK(std::abs(front_mean[2] - back_mean[2]) > 50);

  auto none = devices.camera->capture(Face::kFront, 0);
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Contains("frames must be"));
}

TEST_CASE("frames are deterministic for a seed", "[sim]") {
  Fixture f("seed");
  const fs::path card = makeCard(f.cards, "card-a", 3);
  auto capture = [&](const std::string& name, int seed) {
    SimBoxOptions options = f.options;
    options.root = f.dir / name;
    options.frame_jitter_seed = seed;
    SimBox box(options);
    box.dropCard(card);
    auto frames = box.devices().camera->capture(Face::kFront, 2);
    REQUIRE(frames);
    return std::vector<std::string>{(*frames)[0].jpeg, (*frames)[1].jpeg};
  };
  CHECK(capture("one", 5) == capture("two", 5));
  CHECK(capture("three", 5) != capture("four", 6));
}

TEST_CASE("the sorter carries cards to slots and the bin", "[sim]") {
  Fixture f("sort");
  SimBox box(f.options);
  auto devices = box.devices();
  auto& sorter = *devices.sorter;

  SECTION("nothing to carry") {
    const auto s = sorter.moveTo(Destination::toSlot(0));
    REQUIRE_FALSE(s);
    CHECK(s.error() == "sorter: no card on the tray");
  }

  SECTION("to a slot, then an occupied slot is refused, then to the bin") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    REQUIRE(sorter.moveTo(Destination::toSlot(3)));
    CHECK(box.cardInSlot(3) == "card-a");
    CHECK(box.cardsInIntake().empty());
    CHECK(fs::exists(f.root / "slots/03/card-a/front.jpg"));
    auto occupied = sorter.slotOccupied(3);
    REQUIRE(occupied);
    CHECK(*occupied);
    auto free_slot = sorter.slotOccupied(2);
    REQUIRE(free_slot);
    CHECK_FALSE(*free_slot);
    auto present = devices.sensor->cardPresent();
    REQUIRE(present);
    CHECK_FALSE(*present);

    box.dropCard(makeCard(f.cards, "card-b", 2));
    const auto refused = sorter.moveTo(Destination::toSlot(3));
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == "sorter: slot 3 is occupied");
    CHECK(box.cardsInIntake() == std::vector<std::string>{"card-b"});
    CHECK(box.cardInSlot(3) == "card-a");

    REQUIRE(sorter.moveTo(Destination::toBin()));
    CHECK(box.cardsInBin() == std::vector<std::string>{"card-b"});
    CHECK(box.cardsInIntake().empty());
  }

  SECTION("a slot out of range is refused and the card stays on the tray") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    for (int bad : {-1, 6, 100}) {
      const auto s = sorter.moveTo(Destination::toSlot(bad));
      REQUIRE_FALSE(s);
      CHECK_THAT(s.error(), Contains("out of range"));
      REQUIRE_FALSE(sorter.slotOccupied(bad));
    }
    CHECK(box.cardsInIntake() == std::vector<std::string>{"card-a"});
  }

  SECTION("cards are taken in name order, one per move") {
    box.dropCard(makeCard(f.cards, "card-b", 2));
    box.dropCard(makeCard(f.cards, "card-a", 1));
    REQUIRE(sorter.moveTo(Destination::toSlot(0)));
    REQUIRE(sorter.moveTo(Destination::toSlot(1)));
    CHECK(box.cardInSlot(0) == "card-a");
    CHECK(box.cardInSlot(1) == "card-b");
  }

  SECTION("a second card of the same name keeps both") {
    const fs::path card = makeCard(f.cards, "card-a", 1);
    CHECK(box.dropCard(card) == "card-a");
    CHECK(box.dropCard(card) == "card-a~2");
    REQUIRE(sorter.moveTo(Destination::toBin()));
    box.dropCard(card);  // "card-a" again: the tray's "card-a" left, so the name is free
    REQUIRE(sorter.moveTo(Destination::toBin()));
    REQUIRE(sorter.moveTo(Destination::toBin()));
    CHECK(box.cardsInBin().size() == 3);
    CHECK(box.cardsInIntake().empty());
  }
}

TEST_CASE("a full bin is refused", "[sim]") {
  Fixture f("binfull", /*slots=*/2, /*bin_capacity=*/2);
  SimBox box(f.options);
  auto& sorter = *box.devices().sorter;
  for (int i = 0; i < 2; ++i) {
    box.dropCard(makeCard(f.cards, "card-" + std::to_string(i), i));
    REQUIRE(sorter.moveTo(Destination::toBin()));
  }
  box.dropCard(makeCard(f.cards, "card-x", 9));
  const auto s = sorter.moveTo(Destination::toBin());
  REQUIRE_FALSE(s);
  CHECK(s.error() == "sorter: the bin is full (2 cards)");
  CHECK(box.cardsInIntake() == std::vector<std::string>{"card-x"});

  // Once the operator empties it, it takes cards again.
  CHECK(box.emptyBin().size() == 2);
  REQUIRE(sorter.moveTo(Destination::toBin()));
  CHECK(box.cardsInBin() == std::vector<std::string>{"card-x"});
  CHECK(box.cardsCollected().size() == 2);
}

TEST_CASE("fault switches", "[sim]") {
  Fixture f("faults");
  SimBox box(f.options);
  auto devices = box.devices();

  SECTION("names and files") {
    for (SimFault fault : lostcard::hw::allSimFaults()) {
      const std::string name(lostcard::hw::simFaultName(fault));
      CHECK(lostcard::hw::simFaultFromName(name) == fault);
      box.setFault(fault, true);
      CHECK(fs::exists(f.root / "faults" / name));
      CHECK(box.faultOn(fault));
      box.setFault(fault, false);
      CHECK_FALSE(fs::exists(f.root / "faults" / name));
      CHECK_FALSE(box.faultOn(fault));
    }
    CHECK(lostcard::hw::simFaultName(SimFault::kSorterJam) == "sorter-jam");
    CHECK_FALSE(lostcard::hw::simFaultFromName("no-such-fault"));
  }

  SECTION("camera failure") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    box.setFault(SimFault::kCameraFailure, true);
    auto frames = devices.camera->capture(Face::kFront, 2);
    REQUIRE_FALSE(frames);
    CHECK_THAT(frames.error(), Contains("camera:") && Contains("camera-failure"));
    box.setFault(SimFault::kCameraFailure, false);
    CHECK(devices.camera->capture(Face::kFront, 2));
  }

  SECTION("card sensor stuck on and stuck off") {
    box.setFault(SimFault::kSensorStuckOn, true);
    auto present = devices.sensor->cardPresent();
    REQUIRE(present);
    CHECK(*present);  // nothing on the tray
    box.setFault(SimFault::kSensorStuckOn, false);

    box.dropCard(makeCard(f.cards, "card-a", 1));
    box.setFault(SimFault::kSensorStuckOff, true);
    present = devices.sensor->cardPresent();
    REQUIRE(present);
    CHECK_FALSE(*present);  // a card on the tray
    box.setFault(SimFault::kSensorStuckOff, false);
    present = devices.sensor->cardPresent();
    REQUIRE(present);
    CHECK(*present);
  }

  SECTION("sorter jam: the card sticks in the mechanism until an operator clears it") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    box.setFault(SimFault::kSorterJam, true);
    const auto s = devices.sorter->moveTo(Destination::toSlot(1));
    REQUIRE_FALSE(s);
    CHECK(s.error() == "sorter jammed");
    CHECK(box.cardsJammed() == std::vector<std::string>{"card-a"});
    CHECK(box.cardsInIntake().empty());
    CHECK_FALSE(box.cardInSlot(1));

    box.setFault(SimFault::kSorterJam, false);
    REQUIRE(devices.sorter->home());
    CHECK(box.cardsJammed() == std::vector<std::string>{"card-a"});  // home clears nothing
    CHECK(box.clearJams() == std::vector<std::string>{"card-a"});
    CHECK(box.cardsJammed().empty());
    CHECK(box.cardsCollected() == std::vector<std::string>{"card-a"});
  }

  SECTION("slot sensor failure: slots can't be checked, so moves to slots are refused") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    box.setFault(SimFault::kSlotSensorFailure, true);
    auto occupied = devices.sorter->slotOccupied(0);
    REQUIRE_FALSE(occupied);
    CHECK_THAT(occupied.error(), Contains("slot sensor 0"));
    const auto s = devices.sorter->moveTo(Destination::toSlot(0));
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error(), Contains("slot sensor 0"));
    CHECK(box.cardsInIntake() == std::vector<std::string>{"card-a"});
    REQUIRE(devices.sorter->moveTo(Destination::toBin()));  // the bin has no slot sensor
    CHECK(box.cardsInBin() == std::vector<std::string>{"card-a"});
  }

  SECTION("hold mid-move: the card stops between the tray and its slot until released") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    box.holdMidMove();
    Status moved = Status::failure("not run");
    std::thread sorter([&] { moved = devices.sorter->moveTo(Destination::toSlot(2)); });
    const bool held = lostcard::test::eventually([&] { return box.moveHeld(); }, 30s);
    if (!held) {
      releaseHold(box, sorter);
    }
    REQUIRE(held);
    CHECK(fs::exists(f.root / "faults" / "held"));
    CHECK(box.cardsInTransit() == std::vector<std::string>{"card-a"});
    CHECK(box.cardsInIntake().empty());
    CHECK_FALSE(box.cardInSlot(2));
    auto present = devices.sensor->cardPresent();
    REQUIRE(present);
    CHECK_FALSE(*present);  // the card has left the tray
    box.setFault(SimFault::kHoldMidMove, false);
    sorter.join();
    CHECK(moved);
    CHECK(box.cardInSlot(2) == std::optional<std::string>("card-a"));
    CHECK(box.cardsInTransit().empty());
    CHECK_FALSE(box.moveHeld());
  }

  SECTION("hold mid-move on the Nth move: earlier moves count it down") {
    box.holdMidMove(2);
    box.dropCard(makeCard(f.cards, "card-a", 1));
    REQUIRE(devices.sorter->moveTo(Destination::toBin()));  // the 1st goes through
    CHECK(box.cardsInBin() == std::vector<std::string>{"card-a"});
    CHECK_FALSE(box.moveHeld());
    std::ifstream count(f.root / "faults" / "hold-mid-move");
    int left = 0;
    count >> left;
    CHECK(left == 1);
    box.dropCard(makeCard(f.cards, "card-b", 2));
    std::thread sorter([&] { (void)devices.sorter->moveTo(Destination::toBin()); });
    const bool held = lostcard::test::eventually([&] { return box.moveHeld(); }, 30s);
    if (!held) {
      releaseHold(box, sorter);
    }
    REQUIRE(held);
    CHECK(box.cardsInTransit() == std::vector<std::string>{"card-b"});
    box.setFault(SimFault::kHoldMidMove, false);
    sorter.join();
    CHECK(box.cardsInBin() == std::vector<std::string>{"card-a", "card-b"});
  }

  SECTION("homing brings back a card a cut left in the sorter, and clears the held marker") {
    // What a kill -9 of a held kiosk leaves behind.
    box.dropCard(makeCard(f.cards, "card-a", 1));
    fs::rename(f.root / "intake" / "card-a", f.root / "transit" / "card-a");
    std::ofstream(f.root / "faults" / "held") << "card=card-a to=slot:0 pid=1\n";
    REQUIRE(box.moveHeld());
    REQUIRE(devices.sorter->home());
    CHECK(box.cardsInIntake() == std::vector<std::string>{"card-a"});
    CHECK(box.cardsInTransit().empty());
    CHECK_FALSE(box.moveHeld());
  }

  SECTION("another process switches a fault by creating its file") {
    box.dropCard(makeCard(f.cards, "card-a", 1));
    std::ofstream(f.root / "faults" / "camera-failure").put('\n');
    CHECK(box.faultOn(SimFault::kCameraFailure));
    REQUIRE_FALSE(devices.camera->capture(Face::kBack, 1));
    fs::remove(f.root / "faults" / "camera-failure");
    REQUIRE(devices.camera->capture(Face::kBack, 1));
  }
}

TEST_CASE("shutter, locks and display write the box's state", "[sim]") {
  Fixture f("state");
  SimBox box(f.options);
  auto devices = box.devices();
  REQUIRE(devices.shutter->open());
  CHECK(box.shutterState() == "open");
  REQUIRE(devices.shutter->close());
  CHECK(box.shutterState() == "closed");

  devices.display->show("Thank you!");
  CHECK(box.displayText() == "Thank you!");

  REQUIRE(devices.locks->unlockSlot(4, 5000ms));
  std::ifstream slot_file(f.root / "state/unlocked-slot-04");
  std::string line;
  REQUIRE(std::getline(slot_file, line));
  CHECK_THAT(line, Contains("Z hold_ms=5000"));
  REQUIRE(devices.locks->unlockBin(2000ms));
  CHECK(fs::exists(f.root / "state/unlocked-bin"));
  const auto bad = devices.locks->unlockSlot(6, 1000ms);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error(), Contains("locks: slot 6 out of range"));
}

TEST_CASE("the physical state survives the SimBox", "[sim]") {
  Fixture f("survive");
  {
    SimBox box(f.options);
    auto devices = box.devices();
    box.dropCard(makeCard(f.cards, "card-a", 1));
    REQUIRE(devices.sorter->moveTo(Destination::toSlot(2)));
    box.dropCard(makeCard(f.cards, "card-b", 2));
    REQUIRE(devices.sorter->moveTo(Destination::toBin()));
    box.dropCard(makeCard(f.cards, "card-c", 3));
    box.setFault(SimFault::kSorterJam, true);
    REQUIRE_FALSE(devices.sorter->moveTo(Destination::toSlot(4)));
    box.setFault(SimFault::kSorterJam, false);
    box.dropCard(makeCard(f.cards, "card-d", 4));
    REQUIRE(devices.shutter->open());
    devices.display->show("Insert a card");
    box.setFault(SimFault::kSensorStuckOff, true);
  }
  SimBox box(f.options);
  CHECK(box.cardInSlot(2) == "card-a");
  CHECK(box.cardsInBin() == std::vector<std::string>{"card-b"});
  CHECK(box.cardsJammed() == std::vector<std::string>{"card-c"});
  CHECK(box.cardsInIntake() == std::vector<std::string>{"card-d"});
  CHECK(box.shutterState() == "open");
  CHECK(box.displayText() == "Insert a card");
  CHECK(box.faultOn(SimFault::kSensorStuckOff));
  box.setFault(SimFault::kSensorStuckOff, false);

  auto devices = box.devices();
  auto occupied = devices.sorter->slotOccupied(2);
  REQUIRE(occupied);
  CHECK(*occupied);
  REQUIRE(devices.sorter->moveTo(Destination::toSlot(5)));
  CHECK(box.cardInSlot(5) == "card-d");
  CHECK(box.collectFromSlot(2) == "card-a");
  CHECK_FALSE(box.cardInSlot(2));
  CHECK_FALSE(box.collectFromSlot(2));
}

TEST_CASE("cards dropped by another process while the sorter works are never lost", "[sim]") {
  Fixture f("concurrent", /*slots=*/2, /*bin_capacity=*/100);
  SimBox box(f.options);
  auto devices = box.devices();
  constexpr int kCards = 30;
  for (int i = 0; i < kCards; ++i) {
    makeCard(f.cards, fmt::format("card-{:02}", i), i);
  }

  // The other process: builds each card under a hidden name in the intake, then renames it in.
  std::jthread finder([&] {  // joins even if an assertion below throws
    for (int i = 0; i < kCards; ++i) {
      const std::string name = fmt::format("card-{:02}", i);
      const fs::path hidden = f.root / "intake" / ("." + name + ".part");
      fs::copy(f.cards / name, hidden, fs::copy_options::recursive);
      fs::rename(hidden, f.root / "intake" / name);
    }
  });
  const bool all_sorted = lostcard::test::eventually(
      [&] {
        auto present = devices.sensor->cardPresent();
        REQUIRE(present);
        while (*present) {
          auto frames = devices.camera->capture(Face::kFront, 1);
          REQUIRE(frames);
          REQUIRE(devices.sorter->moveTo(Destination::toBin()));
          present = devices.sensor->cardPresent();
          REQUIRE(present);
        }
        return box.cardsInBin().size() == kCards;
      },
      60s);
  finder.join();
  CHECK(all_sorted);
  const auto in_bin = box.cardsInBin();
  CHECK(std::set<std::string>(in_bin.begin(), in_bin.end()).size() == kCards);
  CHECK(box.cardsInIntake().empty());
}

TEST_CASE("the keypad hands each typed entry to the kiosk once, in typing order", "[sim]") {
  const fs::path root = lostcard::test::makeTestDir("sim_box_keypad");
  SimBox box({.root = root, .slot_count = 4});
  auto* keypad = box.devices().keypad;
  REQUIRE(keypad != nullptr);
  CHECK(keypad->entries()->empty());
  box.type("03 1234567890");
  box.type("* 2468013579");
  CHECK(box.keypadEntriesWaiting() == 2);
  // Another process typing (another SimBox on the same folder) is seen too.
  SimBox(SimBoxOptions{.root = root, .slot_count = 4}).type("1 9");
  const auto read = keypad->entries();
  REQUIRE(read);
  CHECK(*read == std::vector<std::string>{"03 1234567890", "* 2468013579", "1 9"});
  CHECK(keypad->entries()->empty());
  CHECK(box.keypadEntriesWaiting() == 0);
  CHECK_THROWS_AS(box.type("12; rm -rf /"), std::invalid_argument);
}

TEST_CASE("slot-door-stuck keeps slot doors locked; the bin door switch follows the operator",
          "[sim]") {
  const fs::path root = lostcard::test::makeTestDir("sim_box_doors");
  SimBox box({.root = root, .slot_count = 4});
  auto devices = box.devices();
  CHECK(devices.locks->unlockSlot(2, 100ms));
  CHECK(fs::exists(root / "state/unlocked-slot-02"));
  box.setFault(SimFault::kSlotDoorStuck, true);
  const Status stuck = devices.locks->unlockSlot(1, 100ms);
  CHECK_FALSE(stuck);
  CHECK_THAT(stuck.error(), Contains("slot-door-stuck"));
  CHECK_FALSE(fs::exists(root / "state/unlocked-slot-01"));
  CHECK(devices.locks->unlockBin(100ms));  // the bin's latch is not a slot door
  box.setFault(SimFault::kSlotDoorStuck, false);

  REQUIRE(devices.bin_door != nullptr);
  CHECK(*devices.bin_door->closed());
  box.setBinDoorOpen(true);
  CHECK_FALSE(*devices.bin_door->closed());
  box.setBinDoorOpen(false);
  CHECK(*devices.bin_door->closed());
}
