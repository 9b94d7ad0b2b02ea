#include "lostcard/kiosk/types.hpp"

#include <charconv>

namespace lostcard::kiosk {

std::string Location::text() const {
  switch (kind) {
    case Kind::kTray:
      return "tray";
    case Kind::kSlot:
      return "slot:" + std::to_string(slot);
    case Kind::kBin:
      return "bin";
    case Kind::kJam:
      return "jam";
    case Kind::kCollected:
      return "collected";
    case Kind::kUnknown:
      break;
  }
  return "unknown";
}

std::optional<Location> Location::parse(std::string_view text) {
  if (text == "tray") {
    return tray();
  }
  if (text == "bin") {
    return bin();
  }
  if (text == "jam") {
    return jam();
  }
  if (text == "unknown") {
    return unknown();
  }
  if (text == "collected") {
    return collected();
  }
  constexpr std::string_view kSlotPrefix = "slot:";
  if (text.substr(0, kSlotPrefix.size()) == kSlotPrefix) {
    text.remove_prefix(kSlotPrefix.size());
    int index = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (ec == std::errc() && end == text.data() + text.size() && index >= 0) {
      return inSlot(index);
    }
  }
  return std::nullopt;
}

}  // namespace lostcard::kiosk
