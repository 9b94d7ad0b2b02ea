#pragma once
// The box's hardware, as the kiosk firmware sees it.
//
// Physical model: the finder drops a card through the intake shutter onto the imaging tray,
// where the card sensor sees it and the cameras photograph both faces. The sorter then carries
// the card from the tray to one storage slot (one card per slot, each behind its own lock) or
// to the difficult-card bin (many cards, one lock, emptied by an operator).
//
// Two implementations of every interface: the board's drivers (gpiod_devices.hpp,
// opencv_camera.hpp) and the simulator (sim_box.hpp). Code that uses these interfaces cannot
// tell them apart. Every call may block for as long as the mechanism takes (a sorter move
// takes about a second on the board); none throws for a device failure.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lostcard/hw/result.hpp"

namespace lostcard::hw {

enum class Face { kFront, kBack };

struct CapturedFrame {
  std::string jpeg;  // JPEG bytes as the camera produced them
  int width_px = 0;
  int height_px = 0;
};

// Both faces of the card on the tray (a camera above and one below the glass tray).
class Camera {
 public:
  virtual ~Camera() = default;
  // `frames` consecutive frames of one face.
  virtual Result<std::vector<CapturedFrame>> capture(Face face, int frames) = 0;
  virtual std::string id() const = 0;
};

// The light barrier over the imaging tray.
class CardSensor {
 public:
  virtual ~CardSensor() = default;
  virtual Result<bool> cardPresent() = 0;
};

// Where the sorter can carry a card.
struct Destination {
  enum class Kind { kSlot, kBin };
  Kind kind = Kind::kBin;
  int slot = -1;  // 0-based slot index when kind == kSlot

  static Destination toSlot(int index) { return {Kind::kSlot, index}; }
  static Destination toBin() { return {Kind::kBin, -1}; }
  bool operator==(const Destination&) const = default;
};

class Sorter {
 public:
  virtual ~Sorter() = default;
  // Carries the card on the tray to `to`. Succeeds only when the destination's sensor confirms
  // the card arrived; on failure the card may still be on the tray or stuck in the mechanism
  // (the caller finds out with cardPresent() and slotOccupied()).
  virtual Status moveTo(const Destination& to) = 0;
  // Drives the mechanism to its home position (after a power cut or a jam).
  virtual Status home() = 0;
  // Whether slot `index` holds a card, from the slot's own sensor.
  virtual Result<bool> slotOccupied(int index) = 0;
  virtual int slotCount() const = 0;
};

// The intake shutter: closed while a card is being handled or when the box is full.
class IntakeShutter {
 public:
  virtual ~IntakeShutter() = default;
  virtual Status open() = 0;
  virtual Status close() = 0;
};

// Slot doors and the bin door. unlock() releases the latch for `hold`, then it relocks.
class Locks {
 public:
  virtual ~Locks() = default;
  virtual Status unlockSlot(int index, std::chrono::milliseconds hold) = 0;
  virtual Status unlockBin(std::chrono::milliseconds hold) = 0;
};

// The small text display on the front of the box.
class Display {
 public:
  virtual ~Display() = default;
  virtual void show(const std::string& text) = 0;
};

// The keypad (or touch screen) on the front of the box. A cardholder types the number on a slot's
// door, the separator key and their pickup code ("07 1234567890"); an operator the operator key,
// then their operator code ("* 2468135790"). An entry is what was typed up to Enter: digits, '*'
// (the operator key) and ' ' (the separator key); Clear empties the entry being typed, so it
// never reaches the firmware. The firmware polls: each call returns the entries completed since
// the previous call, oldest first (none: an empty vector). What is typed holds codes: drivers
// never log an entry's text.
class Keypad {
 public:
  virtual ~Keypad() = default;
  virtual Result<std::vector<std::string>> entries() = 0;
};

// The difficult-card bin's door switch: whether the door is shut (after an operator emptied the
// bin, the kiosk waits for the door to be shut again).
class BinDoor {
 public:
  virtual ~BinDoor() = default;
  virtual Result<bool> closed() = 0;
};

// Everything the firmware drives, owned together.
struct Devices {
  Camera* camera = nullptr;
  CardSensor* sensor = nullptr;
  Sorter* sorter = nullptr;
  IntakeShutter* shutter = nullptr;
  Locks* locks = nullptr;
  Display* display = nullptr;
  // Optional: a box without them takes cards but hands none out at the box.
  Keypad* keypad = nullptr;
  BinDoor* bin_door = nullptr;
};

}  // namespace lostcard::hw
