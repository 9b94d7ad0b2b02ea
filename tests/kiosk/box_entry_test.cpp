// What a person types on the box's keypad: the entry parser (pure) and the board keypad's key
// handling (EvdevKeypad::press, no device needed).
#include "lostcard/kiosk/box_entry.hpp"

#include <linux/input.h>

#include <catch2/catch.hpp>

#include "lostcard/hw/evdev_keypad.hpp"

using namespace lostcard::kiosk;

TEST_CASE("a cardholder's entry names the slot on its door and the code", "[box]") {
  CHECK(parseBoxEntry("07 1234567890", 24) == BoxEntry{PickupEntry{6, "1234567890"}});
  CHECK(parseBoxEntry("  1   123 456 7890 ", 24) == BoxEntry{PickupEntry{0, "123 456 7890"}});
  CHECK(parseBoxEntry("24 1234567890", 24) == BoxEntry{PickupEntry{23, "1234567890"}});
  // The cloud judges the code; a short one is sent (it answers INVALID_CODE, no try used).
  CHECK(parseBoxEntry("2 123", 24) == BoxEntry{PickupEntry{1, "123"}});
}

TEST_CASE("an operator's entry starts with the operator key", "[box]") {
  CHECK(parseBoxEntry("* 2468013579", 24) == BoxEntry{OperatorEntry{"2468013579"}});
  CHECK(parseBoxEntry("*246 801 3579", 24) == BoxEntry{OperatorEntry{"2468013579"}});
  CHECK(std::holds_alternative<BadEntry>(parseBoxEntry("* 12345", 24)));
  CHECK(std::holds_alternative<BadEntry>(parseBoxEntry("* 12*4567890", 24)));
}

TEST_CASE("an operator in a session types # and a restock number, then the card's number",
          "[box]") {
  CHECK(parseBoxEntry("#12 4000 1234 5678 9010", 24) ==
        BoxEntry{RestockEntry{12, "4000 1234 5678 9010"}});
  CHECK(parseBoxEntry(" # 7 4000123456789010 ", 24) == BoxEntry{RestockEntry{7, "4000123456789010"}});
  CHECK(parseBoxEntry("#999 12345678", 24) == BoxEntry{RestockEntry{999, "12345678"}});
  CHECK(parseBoxEntry("#1 1234567890123456789", 24) ==
        BoxEntry{RestockEntry{1, "1234567890123456789"}});
  CHECK(parseBoxEntry("*", 24) == BoxEntry{EndSessionEntry{}});
  CHECK(parseBoxEntry(" * ", 24) == BoxEntry{EndSessionEntry{}});
  // '#N' alone, or a number that cannot be a card's: the format, never what was typed.
  for (const std::string typed :
       {"#", "#7", " # 7 ", "#0 4000123456789010", "#1000 4000123456789010", "#*4 40001234",
        "#-1 40001234", "#7 1234567", "#7 12345678901234567890", "#7 4000-1234-5678-9010",
        "#7 4000*1234"}) {
    INFO(typed);
    const auto entry = parseBoxEntry(typed, 24);
    REQUIRE(std::holds_alternative<BadEntry>(entry));
    CHECK(std::get<BadEntry>(entry).why == kTextRestockFormat);
  }
}

TEST_CASE("mistyped entries are refused with a reason and never echo what was typed", "[box]") {
  for (const std::string typed : {"", "   ", "1234567890", "0 1234567890", "25 1234567890",
                                  "1234 1234567890", "3 12*4", "3 "}) {
    INFO(typed);
    const auto entry = parseBoxEntry(typed, 24);
    REQUIRE(std::holds_alternative<BadEntry>(entry));
    const auto& why = std::get<BadEntry>(entry).why;
    CHECK_FALSE(why.empty());
    CHECK(why.find("1234567890") == std::string::npos);
  }
  CHECK(std::get<BadEntry>(parseBoxEntry("25 1234567890", 24)).why ==
        "There is no slot 25 in this box.");
}

TEST_CASE("the board keypad builds entries from key presses", "[box]") {
  lostcard::hw::EvdevKeypad keypad("/nonexistent/input");
  for (int key : {KEY_KP0, KEY_7, KEY_SPACE, KEY_1, KEY_2}) {
    CHECK_FALSE(keypad.press(key));
  }
  CHECK(keypad.press(KEY_KPENTER) == std::optional<std::string>("07 12"));
  // Clear empties the entry being typed; an empty Enter is nothing.
  keypad.press(KEY_9);
  keypad.press(KEY_BACKSPACE);
  CHECK_FALSE(keypad.press(KEY_ENTER));
  keypad.press(KEY_KPASTERISK);
  keypad.press(KEY_KPDOT);
  keypad.press(KEY_3);
  keypad.press(KEY_F1);  // not a keypad key: ignored
  CHECK(keypad.press(KEY_ENTER) == std::optional<std::string>("* 3"));
  // The restock key: '#' on a phone-style keypad, "B" on a 4x4 matrix.
  keypad.press(KEY_NUMERIC_POUND);
  keypad.press(KEY_4);
  CHECK(keypad.press(KEY_ENTER) == std::optional<std::string>("#4"));
  keypad.press(KEY_B);
  keypad.press(KEY_5);
  CHECK(keypad.press(KEY_ENTER) == std::optional<std::string>("#5"));
  // A device that is not there is a clear error, not a crash.
  const auto entries = keypad.entries();
  REQUIRE_FALSE(entries);
  CHECK_THAT(entries.error(), Catch::Contains("/nonexistent/input"));
}
