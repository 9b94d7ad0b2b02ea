#include "lostcard/hw/evdev_keypad.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/input.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace lostcard::hw {

namespace {

std::optional<char> keyChar(int code) {
  switch (code) {
    case KEY_0:
    case KEY_KP0:
      return '0';
    case KEY_1:
    case KEY_KP1:
      return '1';
    case KEY_2:
    case KEY_KP2:
      return '2';
    case KEY_3:
    case KEY_KP3:
      return '3';
    case KEY_4:
    case KEY_KP4:
      return '4';
    case KEY_5:
    case KEY_KP5:
      return '5';
    case KEY_6:
    case KEY_KP6:
      return '6';
    case KEY_7:
    case KEY_KP7:
      return '7';
    case KEY_8:
    case KEY_KP8:
      return '8';
    case KEY_9:
    case KEY_KP9:
      return '9';
    case KEY_SPACE:
    case KEY_KPDOT:
    case KEY_DOT:
    case KEY_TAB:
      return ' ';
    case KEY_KPASTERISK:
    case KEY_NUMERIC_STAR:
    case KEY_A:
      return '*';
    case KEY_NUMERIC_POUND:
    case KEY_B:
      return '#';
    default:
      return std::nullopt;
  }
}

}  // namespace

EvdevKeypad::EvdevKeypad(std::string device) : device_(std::move(device)) {}

EvdevKeypad::~EvdevKeypad() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::optional<std::string> EvdevKeypad::press(int key_code) {
  if (key_code == KEY_ENTER || key_code == KEY_KPENTER) {
    std::string entry = std::move(typing_);
    typing_.clear();
    if (entry.empty()) {
      return std::nullopt;
    }
    return entry;
  }
  if (key_code == KEY_BACKSPACE || key_code == KEY_DELETE || key_code == KEY_ESC) {
    typing_.clear();
    return std::nullopt;
  }
  if (auto c = keyChar(key_code)) {
    typing_.push_back(*c);
    if (typing_.size() > kMaxEntryChars) {
      typing_.clear();
    }
  }
  return std::nullopt;
}

Result<std::vector<std::string>> EvdevKeypad::entries() {
  using R = Result<std::vector<std::string>>;
  if (fd_ < 0) {
    fd_ = ::open(device_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) {
      return R::failure(fmt::format("keypad: cannot open {}: {}", device_, std::strerror(errno)));
    }
  }
  std::vector<std::string> out;
  input_event events[64];
  while (true) {
    const ssize_t n = ::read(fd_, events, sizeof events);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      typing_.clear();
      return R::failure(fmt::format("keypad: reading {}: {}", device_, std::strerror(err)));
    }
    if (n == 0) {
      break;
    }
    const auto count = static_cast<std::size_t>(n) / sizeof(input_event);
    for (std::size_t i = 0; i < count; ++i) {
      // value 1: pressed (0: released, 2: autorepeat).
      if (events[i].type == EV_KEY && events[i].value == 1) {
        if (auto entry = press(events[i].code)) {
          out.push_back(std::move(*entry));
        }
      }
    }
  }
  return out;
}

}  // namespace lostcard::hw
