#pragma once
// Small value types shared by the kiosk's state machine, journal and daemon.
//
//   Location where = Location::slot(3);
//   where.text();                       // "slot:3"
//   Location::parse("bin")->kind;       // Location::Kind::kBin
//
//   Decision d = Decision::store("1234");   // the cloud said: keep it for its holder
//   Decision e = Decision::difficult("unreadable");
#include <optional>
#include <string>
#include <string_view>

#include "lostcard/hw/devices.hpp"

namespace lostcard::kiosk {

// Where a card physically is, as the journal records it.
struct Location {
  // kCollected: out of the box, taken by its holder or an operator.
  enum class Kind { kTray, kSlot, kBin, kJam, kUnknown, kCollected };
  Kind kind = Kind::kUnknown;
  int slot = -1;  // 0-based, when kind == kSlot

  static Location tray() { return {Kind::kTray, -1}; }
  static Location inSlot(int index) { return {Kind::kSlot, index}; }
  static Location bin() { return {Kind::kBin, -1}; }
  static Location jam() { return {Kind::kJam, -1}; }
  static Location unknown() { return {Kind::kUnknown, -1}; }
  static Location collected() { return {Kind::kCollected, -1}; }
  static Location of(const hw::Destination& to) {
    return to.kind == hw::Destination::Kind::kSlot ? inSlot(to.slot) : bin();
  }

  // "tray", "slot:N", "bin", "jam", "unknown" or "collected".
  std::string text() const;
  static std::optional<Location> parse(std::string_view text);

  bool operator==(const Location&) const = default;
};

// What becomes of a card: kept in a slot for its holder, or put aside as difficult.
struct Decision {
  enum class Kind { kStore, kDifficult };
  Kind kind = Kind::kDifficult;
  std::string last4;   // kStore: last four digits of the recognized number
  std::string reason;  // kDifficult: why, for operators ("unreadable", "capture failed", ...)

  static Decision store(std::string last4) { return {Kind::kStore, std::move(last4), {}}; }
  static Decision difficult(std::string reason) {
    return {Kind::kDifficult, {}, std::move(reason)};
  }
  bool isStore() const { return kind == Kind::kStore; }

  bool operator==(const Decision&) const = default;
};

}  // namespace lostcard::kiosk
