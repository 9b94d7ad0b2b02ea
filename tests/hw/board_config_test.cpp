// The board file: the shipped lostbox-v1.ini parses to the expected lines, malformed files are
// refused with a message that names the problem, and a board whose hardware is absent still
// constructs, with devices that fail clearly.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "lostcard/hw/board.hpp"
#include "lostcard/hw/log_display.hpp"
#include "lostcard/test/child_process.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using lostcard::hw::BoardConfig;
using lostcard::hw::BoardConfigError;
using lostcard::hw::BoardDevices;
using lostcard::hw::Destination;
using lostcard::hw::Face;
using lostcard::hw::GpioLineSpec;

namespace {

fs::path shippedBoardFile() {
  return fs::path(lostcard::test::sourceDir()) / "hw/boards/lostbox-v1.ini";
}

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The shipped file with `from` replaced by `to` (which must occur), written to a test file.
fs::path variant(const std::string& name, const std::string& from, const std::string& to) {
  static const std::string dir = lostcard::test::makeTestDir("board_config_test");
  std::string text = readText(shippedBoardFile());
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  const fs::path path = fs::path(dir) / (name + ".ini");
  std::ofstream(path) << text;
  return path;
}

std::string loadError(const fs::path& path) {
  try {
    BoardConfig::load(path);
  } catch (const BoardConfigError& e) {
    return e.what();
  }
  FAIL("no BoardConfigError for " << path);
  return "";
}

}  // namespace

TEST_CASE("the shipped lostbox-v1 board file parses", "[board]") {
  const BoardConfig c = BoardConfig::load(shippedBoardFile());
  CHECK(c.name == "lostbox-v1");
  CHECK(c.gpiochip == "gpiochip0");
  CHECK(c.consumer == "lostcard-kiosk");
  CHECK(c.card_sensor == GpioLineSpec{"LC_CARD_SENSOR", true});
  CHECK(c.shutter == GpioLineSpec{"LC_SHUTTER_OPEN", false});

  CHECK(c.sorter.step == GpioLineSpec{"LC_SORTER_STEP", false});
  CHECK(c.sorter.dir.name == "LC_SORTER_DIR");
  CHECK(c.sorter.enable == GpioLineSpec{"LC_SORTER_ENABLE", true});
  CHECK(c.sorter.home_switch == GpioLineSpec{"LC_SORTER_HOME", true});
  CHECK(c.sorter.push.name == "LC_SORTER_PUSH");
  CHECK(c.sorter.step_delay_us == 400);
  CHECK(c.sorter.push_ms == 250);
  CHECK(c.sorter.confirm_timeout_ms == 500);
  CHECK(c.sorter.slotPositionSteps(0) == 600);
  CHECK(c.sorter.slotPositionSteps(23) == 600 + 23 * 400);
  CHECK(c.sorter.bin_steps == 10400);
  CHECK(c.sorter.max_home_steps == 12000);

  REQUIRE(c.slotCount() == 24);
  REQUIRE(c.slot_locks.size() == 24);
  CHECK(c.slot_sensors[0].name == "LC_SLOT00_SENSOR");
  CHECK(c.slot_sensors[7].name == "LC_SLOT07_SENSOR");
  CHECK(c.slot_sensors[23].name == "LC_SLOT23_SENSOR");
  CHECK(c.slot_locks[12] == GpioLineSpec{"LC_SLOT12_LOCK", false});
  CHECK(c.bin_lock.name == "LC_BIN_LOCK");

  CHECK(c.cameras.front_device == "/dev/video0");
  CHECK(c.cameras.back_device == "/dev/video1");
  CHECK(c.cameras.width_px == 1920);
  CHECK(c.cameras.height_px == 1080);
  CHECK(c.cameras.jpeg_quality == 92);
  CHECK(c.cameras.warmup_frames == 5);
}

TEST_CASE("tryLoad gives the same board without exceptions", "[board]") {
  auto ok = BoardConfig::tryLoad(shippedBoardFile());
  REQUIRE(ok);
  CHECK(ok->slotCount() == 24);

  auto missing = BoardConfig::tryLoad("/nonexistent/board.ini");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error(), Contains("/nonexistent/board.ini") && Contains("no such board file"));
}

TEST_CASE("malformed board files are refused with a clear message", "[board]") {
  SECTION("a line that is not key = value") {
    const auto path = variant("syntax", "[intake]\n", "[intake]\nthis line has no equals sign\n");
    const std::string error = loadError(path);
    CHECK_THAT(error, Contains(path.string()) && Contains("line ") && Contains("'='"));
  }
  SECTION("a missing key") {
    const std::string error = loadError(variant("missing", "step_delay_us = 400\n", ""));
    CHECK_THAT(error, Contains("[sorter] step_delay_us is missing"));
  }
  SECTION("a number that is not a number") {
    const std::string error =
        loadError(variant("nan", "step_delay_us = 400", "step_delay_us = fast"));
    CHECK_THAT(error, Contains("[sorter] step_delay_us: 'fast' is not a whole number"));
  }
  SECTION("a number out of range") {
    const std::string error = loadError(variant("range", "jpeg_quality = 92", "jpeg_quality = 0"));
    CHECK_THAT(error, Contains("[cameras] jpeg_quality") && Contains("out of range"));
  }
  SECTION("a misspelt key") {
    const std::string error =
        loadError(variant("typo", "step_delay_us = 400", "step_delay_us = 400\nstep_dealy_us = 1"));
    CHECK_THAT(error, Contains("[sorter] step_dealy_us: unknown key"));
  }
  SECTION("a comment after a value") {
    const std::string error =
        loadError(variant("comment", "shutter = LC_SHUTTER_OPEN", "shutter = LC_SHUTTER_OPEN # x"));
    CHECK_THAT(error, Contains("[intake] shutter") && Contains("not a line name"));
  }
  SECTION("a bad true/false") {
    const std::string error = loadError(
        variant("flag", "card_sensor_active_low = true", "card_sensor_active_low = maybe"));
    CHECK_THAT(error, Contains("[intake] card_sensor_active_low: 'maybe' is not true or false"));
  }
  SECTION("a per-slot line without {}") {
    const std::string error =
        loadError(variant("pattern", "sensor = LC_SLOT{}_SENSOR", "sensor = LC_SLOT_SENSOR"));
    CHECK_THAT(error, Contains("[slots] sensor") && Contains("exactly one {}"));
  }
  SECTION("one line used twice") {
    const std::string error =
        loadError(variant("twice", "lock = LC_BIN_LOCK", "lock = LC_SHUTTER_OPEN"));
    CHECK_THAT(error, Contains("line 'LC_SHUTTER_OPEN' is used twice") &&
                          Contains("[intake] shutter") && Contains("[bin] lock"));
  }
  SECTION("the bin where a slot is") {
    const std::string error = loadError(variant("bin", "bin_steps = 10400", "bin_steps = 1400"));
    CHECK_THAT(error, Contains("bin_steps 1400 is the position of slot 2"));
  }
  SECTION("homing shorter than the travel") {
    const std::string error =
        loadError(variant("travel", "max_home_steps = 12000", "max_home_steps = 5000"));
    CHECK_THAT(error, Contains("max_home_steps 5000 is shorter than the carriage travel"));
  }
  SECTION("a key outside any section") {
    const std::string error = loadError(variant("nosection", "[board]\n", "stray = 1\n[board]\n"));
    CHECK_THAT(error, Contains("'stray' is outside any [section]"));
  }
  SECTION("a missing file") {
    CHECK_THAT(loadError("/nonexistent/lostbox.ini"), Contains("no such board file"));
  }
}

TEST_CASE("a board whose hardware is absent constructs, and its devices fail clearly", "[board]") {
  // Names that exist on no machine, so this runs the same on a developer's PC and on a box.
  BoardConfig config = BoardConfig::load(shippedBoardFile());
  config.gpiochip = "lostcard-no-such-chip";
  config.cameras.front_device = "/nonexistent/video-front";
  config.cameras.back_device = "/nonexistent/video-back";

  BoardDevices board(config);
  REQUIRE(board.problems().size() == 1);
  CHECK_THAT(board.problems()[0], Contains("gpiochip 'lostcard-no-such-chip' not found"));

  auto devices = board.devices();
  auto present = devices.sensor->cardPresent();
  REQUIRE_FALSE(present);
  CHECK_THAT(present.error(), Contains("card sensor: gpiochip 'lostcard-no-such-chip' not found"));

  const auto open = devices.shutter->open();
  REQUIRE_FALSE(open);
  CHECK_THAT(open.error(), Contains("shutter: gpiochip"));

  CHECK(devices.sorter->slotCount() == 24);
  const auto moved = devices.sorter->moveTo(Destination::toSlot(0));
  REQUIRE_FALSE(moved);
  CHECK_THAT(moved.error(), Contains("gpiochip 'lostcard-no-such-chip' not found"));
  const auto homed = devices.sorter->home();
  REQUIRE_FALSE(homed);
  CHECK_THAT(homed.error(), Contains("sorter: gpiochip"));
  auto occupied = devices.sorter->slotOccupied(3);
  REQUIRE_FALSE(occupied);
  CHECK_THAT(occupied.error(), Contains("slot sensor 3: gpiochip"));
  auto out_of_range = devices.sorter->slotOccupied(24);
  REQUIRE_FALSE(out_of_range);
  CHECK_THAT(out_of_range.error(), Contains("out of range"));

  const auto unlocked = devices.locks->unlockSlot(5, std::chrono::milliseconds(0));
  REQUIRE_FALSE(unlocked);
  CHECK_THAT(unlocked.error(), Contains("locks: slot 5 door: gpiochip"));
  const auto bin = devices.locks->unlockBin(std::chrono::milliseconds(0));
  REQUIRE_FALSE(bin);
  CHECK_THAT(bin.error(), Contains("locks: bin door"));

  auto frames = devices.camera->capture(Face::kFront, 2);
  REQUIRE_FALSE(frames);
  CHECK_THAT(frames.error(), Contains("camera: /nonexistent/video-front not found"));
  auto back = devices.camera->capture(Face::kBack, 2);
  REQUIRE_FALSE(back);
  CHECK_THAT(back.error(), Contains("/nonexistent/video-back"));

  devices.display->show("Thank you!");  // the log display needs no hardware
  auto* display = dynamic_cast<lostcard::hw::LogDisplay*>(devices.display);
  REQUIRE(display != nullptr);
  CHECK(display->lastText() == "Thank you!");
}
