#include <fmt/format.h>

#include <utility>

#include "lostcard/hw/board.hpp"
#include "lostcard/hw/evdev_keypad.hpp"
#include "lostcard/hw/gpiod_devices.hpp"
#include "lostcard/hw/log_display.hpp"
#include "lostcard/hw/opencv_camera.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::hw {

namespace {

// Requests every line of the board, noting each one that fails in `problems`.
class LineRequester {
 public:
  LineRequester(const BoardConfig& config, std::vector<std::string>& problems)
      : chip_(std::make_shared<GpioChip>(config.gpiochip)),
        consumer_(config.consumer),
        problems_(problems) {
    if (!chip_->ok()) {
      // One problem, not one per line: every line fails for the same reason.
      problems_.push_back(chip_->error());
    }
  }

  GpioLine input(const GpioLineSpec& spec, const std::string& role) {
    return note(GpioLine::request(chip_, spec, GpioLine::kInput, consumer_), role);
  }
  GpioLine output(const GpioLineSpec& spec, const std::string& role) {
    return note(GpioLine::request(chip_, spec, GpioLine::kOutput, consumer_), role);
  }

 private:
  GpioLine note(GpioLine line, const std::string& role) {
    if (!line.ok() && chip_->ok()) {
      problems_.push_back(fmt::format("{}: {}", role, line.error()));
    }
    return line;
  }

  std::shared_ptr<GpioChip> chip_;
  std::string consumer_;
  std::vector<std::string>& problems_;
};

std::vector<GpioLine> slotLines(LineRequester& lines, const std::vector<GpioLineSpec>& specs,
                                bool output, const std::string& role) {
  std::vector<GpioLine> out;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::string what = fmt::format("{} {}", role, i);
    out.push_back(output ? lines.output(specs[i], what) : lines.input(specs[i], what));
  }
  return out;
}

}  // namespace

struct BoardDevices::Parts {
  Parts(const BoardConfig& config, LineRequester& lines)
      : sensor(lines.input(config.card_sensor, "card sensor")),
        shutter(lines.output(config.shutter, "shutter")),
        sorter(config.sorter,
               GpiodSorter::Lines{
                   lines.output(config.sorter.step, "sorter step"),
                   lines.output(config.sorter.dir, "sorter dir"),
                   lines.output(config.sorter.enable, "sorter enable"),
                   lines.input(config.sorter.home_switch, "sorter home switch"),
                   lines.output(config.sorter.push, "sorter pusher"),
                   slotLines(lines, config.slot_sensors, /*output=*/false, "slot sensor"),
               },
               sensor),
        locks(slotLines(lines, config.slot_locks, /*output=*/true, "slot lock"),
              lines.output(config.bin_lock, "bin lock")),
        camera(config.cameras) {
    if (!config.keypad_device.empty()) {
      keypad = std::make_unique<EvdevKeypad>(config.keypad_device);
    }
    if (!config.bin_door.name.empty()) {
      bin_door = std::make_unique<GpiodBinDoor>(lines.input(config.bin_door, "bin door switch"));
    }
  }

  GpiodCardSensor sensor;
  GpiodShutter shutter;
  GpiodSorter sorter;
  GpiodLocks locks;
  OpencvCamera camera;
  LogDisplay display;
  std::unique_ptr<EvdevKeypad> keypad;
  std::unique_ptr<GpiodBinDoor> bin_door;
};

BoardDevices::BoardDevices(const BoardConfig& config) {
  LineRequester lines(config, problems_);
  parts_ = std::make_unique<Parts>(config, lines);
  auto log = wire::componentLogger("hw.board");
  if (problems_.empty()) {
    log->info("board {}: all GPIO lines on {} requested", config.name, config.gpiochip);
  }
  for (const auto& problem : problems_) {
    log->error("board {}: {}", config.name, problem);
  }
}

BoardDevices::~BoardDevices() = default;

Devices BoardDevices::devices() {
  return Devices{&parts_->camera, &parts_->sensor,  &parts_->sorter,      &parts_->shutter,
                 &parts_->locks,  &parts_->display, parts_->keypad.get(), parts_->bin_door.get()};
}

}  // namespace lostcard::hw
