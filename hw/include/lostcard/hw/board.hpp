#pragma once
// The real box: its board file (which GPIO lines and cameras do what) and the drivers built
// from it.
//
//   auto config = lostcard::hw::BoardConfig::load("/etc/lostcard/lostbox-v1.ini");  // throws
//   lostcard::hw::BoardDevices board(config);
//   for (const auto& problem : board.problems()) { log->error("board: {}", problem); }
//   lostcard::hw::Devices devices = board.devices();
//
// Board files live in hw/boards/ (lostbox-v1.ini documents the format). GPIO lines are found by
// their libgpiod line NAME on one gpiochip, never by number, so a board revision that moves a
// signal to another pin only changes its device tree.
//
// Missing hardware is not an exception: BoardDevices always constructs. Whatever could not be
// opened (no gpiochip, a missing line, a line another process holds, a camera that won't open)
// is listed by problems(), and every call on an affected device fails with that reason, e.g.
// "card sensor: gpiochip 'gpiochip0' not found (No such file or directory)". GPIO lines are
// requested once, at construction: fix the board and restart. Cameras are opened on first use
// and reopened after a failure, as USB cameras come and go.
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "lostcard/hw/devices.hpp"
#include "lostcard/hw/result.hpp"

namespace lostcard::hw {

// A GPIO line by name; active_low inverts it (the drivers speak of "active", not high/low).
struct GpioLineSpec {
  std::string name;
  bool active_low = false;
  bool operator==(const GpioLineSpec&) const = default;
};

struct SorterConfig {
  GpioLineSpec step;
  GpioLineSpec dir;  // active = away from home
  GpioLineSpec enable;
  GpioLineSpec home_switch;  // input, active at the home position
  GpioLineSpec push;         // pusher solenoid
  int push_ms = 250;
  int step_delay_us = 400;   // half a step period
  int first_slot_steps = 0;  // carriage position of slot 0, in steps from home
  int steps_per_slot = 0;    // slot pitch, in steps
  int bin_steps = 0;         // carriage position of the bin
  int max_home_steps = 0;
  int confirm_timeout_ms = 500;

  int slotPositionSteps(int index) const { return first_slot_steps + index * steps_per_slot; }
};

struct CameraConfig {
  std::string front_device = "/dev/video0";
  std::string back_device = "/dev/video1";
  int width_px = 1920;
  int height_px = 1080;
  int jpeg_quality = 92;
  int warmup_frames = 5;
};

class BoardConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BoardConfig {
  std::string name;
  std::string gpiochip;                     // e.g. "gpiochip0"
  std::string consumer = "lostcard-kiosk";  // label gpioinfo shows on our lines
  GpioLineSpec card_sensor;                 // input, active while a card is on the tray
  GpioLineSpec shutter;                     // output, active = open
  SorterConfig sorter;
  std::vector<GpioLineSpec> slot_sensors;  // one per slot, active = holds a card
  std::vector<GpioLineSpec> slot_locks;    // one per slot, active = unlocked
  GpioLineSpec bin_lock;                   // active = unlocked
  CameraConfig cameras;
  // Optional ([keypad] device, [bin] door_switch): without them the box hands out nothing.
  std::string keypad_device;  // a Linux input device, e.g. /dev/input/event2 (EvdevKeypad)
  GpioLineSpec bin_door;      // input, active while the bin door is shut; name "" when absent

  int slotCount() const { return static_cast<int>(slot_sensors.size()); }

  // Reads and checks a board file. Throws BoardConfigError naming the file, the line or key,
  // and what is wrong ("lostbox-v1.ini: [sorter] step_delay_us: 'fast' is not a whole number").
  static BoardConfig load(const std::filesystem::path& ini);
  // The same without exceptions.
  static Result<BoardConfig> tryLoad(const std::filesystem::path& ini);
};

// Owns the board's drivers (GpiodCardSensor, GpiodShutter, GpiodSorter, GpiodLocks,
// OpencvCamera, LogDisplay, and when configured EvdevKeypad and GpiodBinDoor) for one
// BoardConfig.
class BoardDevices {
 public:
  explicit BoardDevices(const BoardConfig& config);
  ~BoardDevices();
  BoardDevices(const BoardDevices&) = delete;
  BoardDevices& operator=(const BoardDevices&) = delete;

  // Pointers valid while the BoardDevices lives.
  Devices devices();
  // What could not be set up at construction, one line each; empty when every line was
  // requested. (Cameras are opened on first use, so they are not checked here.)
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
  std::vector<std::string> problems_;
};

}  // namespace lostcard::hw
