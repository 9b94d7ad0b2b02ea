#pragma once
// The box's GPIO-driven devices, over the libgpiod 1.6 C API. BoardDevices (board.hpp) builds
// them from a board file; use these directly only to drive a partial or test rig.
//
//   auto chip = std::make_shared<GpioChip>("gpiochip0");
//   GpioLine sensor = GpioLine::request(chip, {"LC_CARD_SENSOR", true}, GpioLine::kInput, "me");
//   GpiodCardSensor card_sensor(std::move(sensor));
//   Result<bool> present = card_sensor.cardPresent();   // fails if the line was not granted
//
// A GpioLine that could not be requested still exists and remembers why ("gpiochip 'gpiochip0'
// not found (No such file or directory)", "line 'LC_SHUTTER_OPEN' not found on gpiochip0"):
// every device call that needs it fails with that reason, prefixed by the device's name.
// Values are "active"/"inactive": the line's active_low flag is applied by the kernel.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/hw/board.hpp"
#include "lostcard/hw/devices.hpp"
#include "lostcard/hw/result.hpp"

struct gpiod_chip;
struct gpiod_line;

namespace lostcard::hw {

// An open gpiochip. Never throws: ok() tells whether it opened, error() why not.
class GpioChip {
 public:
  explicit GpioChip(std::string name);
  ~GpioChip();
  GpioChip(const GpioChip&) = delete;
  GpioChip& operator=(const GpioChip&) = delete;

  bool ok() const { return chip_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  gpiod_chip* raw() const { return chip_; }

 private:
  std::string name_;
  gpiod_chip* chip_ = nullptr;
  std::string error_;
};

// One requested line, released when destroyed. Move-only.
class GpioLine {
 public:
  enum Direction { kInput, kOutput };

  // Requests `spec` from `chip` (outputs start inactive). Never throws: check ok()/error().
  static GpioLine request(std::shared_ptr<GpioChip> chip, const GpioLineSpec& spec,
                          Direction direction, const std::string& consumer);
  // A line that is known to be unusable, e.g. a slot index the board file has no line for.
  static GpioLine unavailable(std::string name, std::string error);

  GpioLine(GpioLine&& other) noexcept;
  GpioLine& operator=(GpioLine&& other) noexcept;
  GpioLine(const GpioLine&) = delete;
  GpioLine& operator=(const GpioLine&) = delete;
  ~GpioLine();

  bool ok() const { return line_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

  Result<bool> active();
  Status setActive(bool active);

 private:
  GpioLine() = default;
  void release();

  std::shared_ptr<GpioChip> chip_;  // keeps the chip open while the line is held
  gpiod_line* line_ = nullptr;
  std::string name_;
  std::string error_;
};

class GpiodCardSensor final : public CardSensor {
 public:
  explicit GpiodCardSensor(GpioLine line);
  Result<bool> cardPresent() override;

 private:
  std::mutex mutex_;
  GpioLine line_;
};

class GpiodShutter final : public IntakeShutter {
 public:
  explicit GpiodShutter(GpioLine line);  // active = open
  Status open() override;
  Status close() override;

 private:
  std::mutex mutex_;
  GpioLine line_;
};

// A carriage on a stepper (step/dir/enable, a home switch) that stops in front of a slot or the
// bin, where a pusher slides the card in. A move: check the tray holds a card and the slot is
// empty, home if the position is unknown, step to the destination, push, then wait up to
// confirm_timeout_ms for the slot's sensor to see the card (for the bin: for the tray sensor to
// see none). After any failure the position counts as unknown and the next move homes first.
class GpiodSorter final : public Sorter {
 public:
  struct Lines {
    GpioLine step;
    GpioLine dir;
    GpioLine enable;
    GpioLine home_switch;
    GpioLine push;
    std::vector<GpioLine> slot_sensors;
  };
  // `tray` is the card sensor over the tray (not owned; must outlive the sorter).
  GpiodSorter(SorterConfig config, Lines lines, CardSensor& tray);

  Status moveTo(const Destination& to) override;
  Status home() override;
  Result<bool> slotOccupied(int index) override;
  int slotCount() const override;

 private:
  Status homeLocked();
  Status stepTo(int target_steps);
  Status pulse(int steps, bool away_from_home);
  Status push();
  Result<bool> slotOccupiedLocked(int index);
  Status waitFor(const std::function<Result<bool>()>& condition, const std::string& what);

  SorterConfig config_;
  Lines lines_;
  CardSensor& tray_;
  std::mutex mutex_;
  std::optional<int> position_steps_;  // unknown until homed
};

// Pulses a latch line active for `hold`, then inactive again. Blocks for `hold`.
class GpiodLocks final : public Locks {
 public:
  GpiodLocks(std::vector<GpioLine> slot_locks, GpioLine bin_lock);
  Status unlockSlot(int index, std::chrono::milliseconds hold) override;
  Status unlockBin(std::chrono::milliseconds hold) override;

 private:
  Status pulse(GpioLine& line, const std::string& door, std::chrono::milliseconds hold);

  std::mutex mutex_;
  std::vector<GpioLine> slot_locks_;
  GpioLine bin_lock_;
};

// The bin door's switch: a GPIO input, active while the door is shut.
class GpiodBinDoor final : public BinDoor {
 public:
  explicit GpiodBinDoor(GpioLine line);
  Result<bool> closed() override;

 private:
  std::mutex mutex_;
  GpioLine line_;
};

}  // namespace lostcard::hw
