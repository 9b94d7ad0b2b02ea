#pragma once
// What a person typed on the box's keypad (hw::Keypad), as the kiosk understands it. Pure: no
// I/O, no clock.
//
//   parseBoxEntry("07 1234567890", 24)   -> PickupEntry{.slot = 6, .code = "1234567890"}
//   parseBoxEntry("* 2468135790", 24)    -> OperatorEntry{.code = "2468135790"}
//   parseBoxEntry("99 1234567890", 24)   -> BadEntry{"There is no slot 99 in this box."}
//   parseBoxEntry("#12 4000 1234 5678 9010", 24)
//                                        -> RestockEntry{.number = 12,
//                                                        .card_number = "4000 1234 5678 9010"}
//   parseBoxEntry("*", 24)               -> EndSessionEntry{}
//
// A cardholder types the number on the slot's door (1-based, as in their notice), the separator
// key, then their code (spaces inside the code are kept: the cloud accepts "123 456 7890"). An
// operator types the operator key '*', then their box code (digits; spaces dropped). Whether a
// code is right is the cloud's to say; here only the shape is checked, so that nothing obviously
// mistyped uses a try. A BadEntry's text is for the display and never holds what was typed.
//
// In an operator's session (after their code was accepted) the operator types '#', a card's
// restock number (1..999, from the collection list and the card's label), the separator key and
// the number printed on the card itself (8 to 19 digits, spaces allowed) to put that card back:
// the cloud checks that the card in hand is that deposit's before the box takes it. '*' alone
// ends the session. Outside a session the controller refuses both. The card's number, like a
// code, lives only in the entry and on the wire: never journaled or logged.
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace lostcard::kiosk {

struct PickupEntry {
  int slot = -1;  // 0-based
  std::string code;
  bool operator==(const PickupEntry&) const = default;
};
struct OperatorEntry {
  std::string code;
  bool operator==(const OperatorEntry&) const = default;
};
struct BadEntry {
  std::string why;
  bool operator==(const BadEntry&) const = default;
};
struct RestockEntry {
  int number = 0;           // 1..kMaxRestockNumber
  std::string card_number;  // as typed: digits and spaces
  bool operator==(const RestockEntry&) const = default;
};
struct EndSessionEntry {
  bool operator==(const EndSessionEntry&) const = default;
};
using BoxEntry =
    std::variant<PickupEntry, OperatorEntry, BadEntry, RestockEntry, EndSessionEntry>;

inline constexpr int kMaxRestockNumber = 999;

// A card's number has 8 to 19 digits (as Store::enrollCard takes them); the cloud checks the rest.
inline constexpr std::size_t kMinCardDigits = 8;
inline constexpr std::size_t kMaxCardDigits = 19;

// What the display says to a restock entry of the wrong shape.
inline constexpr std::string_view kTextRestockFormat =
    "Type #, the restock number, the separator key, then the number on the card.";

// Operator box codes have 10 digits, like pickup codes (lostcard-admin set-operator-code).
inline constexpr std::size_t kMinOperatorCodeDigits = 10;
inline constexpr std::size_t kMaxOperatorCodeDigits = 10;

BoxEntry parseBoxEntry(std::string_view typed, int slot_count);

}  // namespace lostcard::kiosk
