#pragma once
// The box's keypad on the board: a Linux input device (a USB or I2C matrix keypad, or a touch
// screen's on-screen keypad, as /dev/input/eventN), read with plain read() of struct input_event
// (linux/input.h); no library needed.
//
//   EvdevKeypad keypad("/dev/input/by-path/platform-keypad-event");
//   auto entries = keypad.entries();     // polled by the kiosk; never blocks
//
// Keys (presses only; releases and autorepeat are ignored): 0-9 on the main row or the keypad
// give digits; KEY_SPACE, KEY_KPDOT, KEY_DOT, KEY_TAB give the separator ' '; KEY_KPASTERISK,
// KEY_NUMERIC_STAR, KEY_A (on a 4x4 matrix keypad's "A" key) give the operator key '*';
// KEY_NUMERIC_POUND, KEY_B give the restock key '#'; KEY_ENTER, KEY_KPENTER
// end the entry; KEY_BACKSPACE, KEY_DELETE, KEY_ESC clear it. An entry longer than
// kMaxEntryChars is cleared (nobody types that much; a stuck key does). The device is opened on
// first use and again after an error (a USB keypad unplugged and plugged back). The text typed
// holds codes: it is never logged.
#include <optional>
#include <string>
#include <vector>

#include "lostcard/hw/devices.hpp"

namespace lostcard::hw {

class EvdevKeypad final : public Keypad {
 public:
  static constexpr std::size_t kMaxEntryChars = 64;

  explicit EvdevKeypad(std::string device);
  ~EvdevKeypad() override;
  EvdevKeypad(const EvdevKeypad&) = delete;
  EvdevKeypad& operator=(const EvdevKeypad&) = delete;

  Result<std::vector<std::string>> entries() override;

  // The key handling alone, for tests: feeds one key press (a KEY_* code) and returns a
  // completed entry when the key was Enter.
  std::optional<std::string> press(int key_code);

 private:
  std::string device_;
  int fd_ = -1;
  std::string typing_;
};

}  // namespace lostcard::hw
