#include "lostcard/hw/gpiod_devices.hpp"

#include <fmt/format.h>
#include <gpiod.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "lostcard/wire/log.hpp"

namespace lostcard::hw {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

// Prefixes a device's name to a lower-level failure.
Status prefixed(const std::string& device, const Status& s) {
  return s ? Status::success() : Status::failure(device + ": " + s.error());
}

}  // namespace

// ---- GpioChip -------------------------------------------------------------------------------

GpioChip::GpioChip(std::string name) : name_(std::move(name)) {
  chip_ = ::gpiod_chip_open_by_name(name_.c_str());
  if (chip_ == nullptr) {
    const int err = errno;
    error_ = err == ENOENT ? fmt::format("gpiochip '{}' not found ({})", name_, errnoText(err))
                           : fmt::format("cannot open gpiochip '{}' ({})", name_, errnoText(err));
  }
}

GpioChip::~GpioChip() {
  if (chip_ != nullptr) {
    ::gpiod_chip_close(chip_);
  }
}

// ---- GpioLine -------------------------------------------------------------------------------

GpioLine GpioLine::request(std::shared_ptr<GpioChip> chip, const GpioLineSpec& spec,
                           Direction direction, const std::string& consumer) {
  GpioLine line;
  line.name_ = spec.name;
  if (!chip || !chip->ok()) {
    line.error_ = chip ? chip->error() : "no gpiochip";
    return line;
  }
  gpiod_line* raw = ::gpiod_chip_find_line(chip->raw(), spec.name.c_str());
  if (raw == nullptr) {
    const int err = errno;
    line.error_ = err == ENOENT || err == 0
                      ? fmt::format("line '{}' not found on {}", spec.name, chip->name())
                      : fmt::format("cannot look up line '{}' on {} ({})", spec.name, chip->name(),
                                    errnoText(err));
    return line;
  }
  const int flags = spec.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
  const int rc =
      direction == kInput
          ? ::gpiod_line_request_input_flags(raw, consumer.c_str(), flags)
          : ::gpiod_line_request_output_flags(raw, consumer.c_str(), flags, /*default_val=*/0);
  if (rc != 0) {
    const int err = errno;
    line.error_ = err == EBUSY
                      ? fmt::format("line '{}' is held by another program", spec.name)
                      : fmt::format("cannot request line '{}' as {} ({})", spec.name,
                                    direction == kInput ? "input" : "output", errnoText(err));
    return line;
  }
  line.chip_ = std::move(chip);
  line.line_ = raw;
  return line;
}

GpioLine GpioLine::unavailable(std::string name, std::string error) {
  GpioLine line;
  line.name_ = std::move(name);
  line.error_ = std::move(error);
  return line;
}

GpioLine::GpioLine(GpioLine&& other) noexcept
    : chip_(std::move(other.chip_)),
      line_(std::exchange(other.line_, nullptr)),
      name_(std::move(other.name_)),
      error_(std::move(other.error_)) {}

GpioLine& GpioLine::operator=(GpioLine&& other) noexcept {
  if (this != &other) {
    release();
    chip_ = std::move(other.chip_);
    line_ = std::exchange(other.line_, nullptr);
    name_ = std::move(other.name_);
    error_ = std::move(other.error_);
  }
  return *this;
}

GpioLine::~GpioLine() { release(); }

void GpioLine::release() {
  // Released before chip_ lets go of the chip: gpiod_chip_close frees its lines.
  if (line_ != nullptr) {
    ::gpiod_line_release(line_);
    line_ = nullptr;
  }
  chip_.reset();
}

Result<bool> GpioLine::active() {
  if (line_ == nullptr) {
    return Result<bool>::failure(error_);
  }
  const int value = ::gpiod_line_get_value(line_);
  if (value < 0) {
    return Result<bool>::failure(
        fmt::format("cannot read line '{}' ({})", name_, errnoText(errno)));
  }
  return value == 1;
}

Status GpioLine::setActive(bool active) {
  if (line_ == nullptr) {
    return Status::failure(error_);
  }
  if (::gpiod_line_set_value(line_, active ? 1 : 0) != 0) {
    return Status::failure(fmt::format("cannot set line '{}' ({})", name_, errnoText(errno)));
  }
  return Status::success();
}

// ---- GpiodCardSensor ------------------------------------------------------------------------

GpiodCardSensor::GpiodCardSensor(GpioLine line) : line_(std::move(line)) {}

Result<bool> GpiodCardSensor::cardPresent() {
  std::lock_guard lock(mutex_);
  auto value = line_.active();
  if (!value) {
    return Result<bool>::failure("card sensor: " + value.error());
  }
  return *value;
}

// ---- GpiodShutter ---------------------------------------------------------------------------

GpiodShutter::GpiodShutter(GpioLine line) : line_(std::move(line)) {}

Status GpiodShutter::open() {
  std::lock_guard lock(mutex_);
  return prefixed("shutter", line_.setActive(true));
}

Status GpiodShutter::close() {
  std::lock_guard lock(mutex_);
  return prefixed("shutter", line_.setActive(false));
}

// ---- GpiodSorter ----------------------------------------------------------------------------

GpiodSorter::GpiodSorter(SorterConfig config, Lines lines, CardSensor& tray)
    : config_(std::move(config)), lines_(std::move(lines)), tray_(tray) {}

int GpiodSorter::slotCount() const { return static_cast<int>(lines_.slot_sensors.size()); }

Result<bool> GpiodSorter::slotOccupied(int index) {
  std::lock_guard lock(mutex_);
  return slotOccupiedLocked(index);
}

Result<bool> GpiodSorter::slotOccupiedLocked(int index) {
  if (index < 0 || index >= slotCount()) {
    return Result<bool>::failure(
        fmt::format("slot sensor: slot {} out of range ({} slots)", index, slotCount()));
  }
  auto value = lines_.slot_sensors[index].active();
  if (!value) {
    return Result<bool>::failure(fmt::format("slot sensor {}: {}", index, value.error()));
  }
  return *value;
}

Status GpiodSorter::home() {
  std::lock_guard lock(mutex_);
  Status homed = homeLocked();
  if (Status s = lines_.enable.setActive(false); !s && homed) {
    return prefixed("sorter", s);
  }
  return homed;
}

Status GpiodSorter::homeLocked() {
  position_steps_.reset();
  if (Status s = lines_.enable.setActive(true); !s) {
    return prefixed("sorter", s);
  }
  for (int step = 0; step <= config_.max_home_steps; ++step) {
    auto at_home = lines_.home_switch.active();
    if (!at_home) {
      return Status::failure("sorter: home switch: " + at_home.error());
    }
    if (*at_home) {
      position_steps_ = 0;
      return Status::success();
    }
    if (Status s = pulse(1, /*away_from_home=*/false); !s) {
      return s;
    }
  }
  return Status::failure(
      fmt::format("sorter: home switch not reached after {} steps", config_.max_home_steps));
}

Status GpiodSorter::pulse(int steps, bool away_from_home) {
  const auto half_period = std::chrono::microseconds(config_.step_delay_us);
  if (Status s = lines_.dir.setActive(away_from_home); !s) {
    return prefixed("sorter", s);
  }
  for (int i = 0; i < steps; ++i) {
    if (Status s = lines_.step.setActive(true); !s) {
      return prefixed("sorter", s);
    }
    std::this_thread::sleep_for(half_period);
    if (Status s = lines_.step.setActive(false); !s) {
      return prefixed("sorter", s);
    }
    std::this_thread::sleep_for(half_period);
  }
  return Status::success();
}

Status GpiodSorter::stepTo(int target_steps) {
  if (Status s = lines_.enable.setActive(true); !s) {
    return prefixed("sorter", s);
  }
  if (!position_steps_) {
    if (Status s = homeLocked(); !s) {
      return s;
    }
  }
  const int delta = target_steps - *position_steps_;
  // Unknown until the move completes: a failure half-way leaves the carriage anywhere.
  position_steps_.reset();
  if (Status s = pulse(std::abs(delta), delta > 0); !s) {
    return s;
  }
  position_steps_ = target_steps;
  return Status::success();
}

Status GpiodSorter::push() {
  if (Status s = lines_.push.setActive(true); !s) {
    return prefixed("sorter: pusher", s);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(config_.push_ms));
  return prefixed("sorter: pusher", lines_.push.setActive(false));
}

Status GpiodSorter::waitFor(const std::function<Result<bool>()>& condition,
                            const std::string& what) {
  // A sensor poll with a deadline: the mechanism's own settle time, not a test's judgement.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.confirm_timeout_ms);
  while (true) {
    auto held = condition();
    if (!held) {
      return Status::failure("sorter: " + held.error());
    }
    if (*held) {
      return Status::success();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::failure(
          fmt::format("sorter: {} after {} ms", what, config_.confirm_timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status GpiodSorter::moveTo(const Destination& to) {
  std::lock_guard lock(mutex_);
  const bool to_slot = to.kind == Destination::Kind::kSlot;
  if (to_slot && (to.slot < 0 || to.slot >= slotCount())) {
    return Status::failure(
        fmt::format("sorter: slot {} out of range ({} slots)", to.slot, slotCount()));
  }
  auto on_tray = tray_.cardPresent();
  if (!on_tray) {
    return Status::failure("sorter: " + on_tray.error());
  }
  if (!*on_tray) {
    return Status::failure("sorter: no card on the tray");
  }
  if (to_slot) {
    auto occupied = slotOccupiedLocked(to.slot);
    if (!occupied) {
      return Status::failure(occupied.error());
    }
    if (*occupied) {
      return Status::failure(fmt::format("sorter: slot {} is occupied", to.slot));
    }
  }

  const int target = to_slot ? config_.slotPositionSteps(to.slot) : config_.bin_steps;
  Status moved = stepTo(target);
  if (moved) {
    moved = push();
  }
  if (moved) {
    if (to_slot) {
      moved = waitFor([&] { return slotOccupiedLocked(to.slot); },
                      fmt::format("slot {} sensor did not see the card", to.slot));
    } else {
      moved = waitFor(
          [&]() -> Result<bool> {
            auto present = tray_.cardPresent();
            if (!present) {
              return Result<bool>::failure(present.error());
            }
            return !*present;
          },
          "the card is still on the tray");
    }
  }
  if (!moved) {
    position_steps_.reset();
  }
  // The motor need not hold the carriage between moves.
  if (Status s = lines_.enable.setActive(false); !s && moved) {
    return prefixed("sorter", s);
  }
  return moved;
}

// ---- GpiodLocks -----------------------------------------------------------------------------

GpiodLocks::GpiodLocks(std::vector<GpioLine> slot_locks, GpioLine bin_lock)
    : slot_locks_(std::move(slot_locks)), bin_lock_(std::move(bin_lock)) {}

Status GpiodLocks::unlockSlot(int index, std::chrono::milliseconds hold) {
  if (index < 0 || index >= static_cast<int>(slot_locks_.size())) {
    return Status::failure(
        fmt::format("locks: slot {} out of range ({} slots)", index, slot_locks_.size()));
  }
  return pulse(slot_locks_[index], fmt::format("slot {}", index), hold);
}

Status GpiodLocks::unlockBin(std::chrono::milliseconds hold) {
  return pulse(bin_lock_, "bin", hold);
}

Status GpiodLocks::pulse(GpioLine& line, const std::string& door, std::chrono::milliseconds hold) {
  if (hold.count() < 0) {
    return Status::failure(fmt::format("locks: negative hold for the {} door", door));
  }
  std::lock_guard lock(mutex_);
  const std::string device = fmt::format("locks: {} door", door);
  if (Status s = line.setActive(true); !s) {
    return prefixed(device, s);
  }
  wire::componentLogger("hw.board")->info("{} unlocked for {} ms", device, hold.count());
  std::this_thread::sleep_for(hold);
  return prefixed(device, line.setActive(false));
}

GpiodBinDoor::GpiodBinDoor(GpioLine line) : line_(std::move(line)) {}

Result<bool> GpiodBinDoor::closed() {
  std::lock_guard lock(mutex_);
  auto value = line_.active();
  if (!value) {
    return Result<bool>::failure("bin door switch: " + value.error());
  }
  return *value;
}

}  // namespace lostcard::hw
