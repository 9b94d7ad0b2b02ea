#include "lostcard/kiosk/box_entry.hpp"

#include <algorithm>

namespace lostcard::kiosk {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
  }
  while (!s.empty() && s.back() == ' ') {
    s.remove_suffix(1);
  }
  return s;
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

BoxEntry parseBoxEntry(std::string_view typed, int slot_count) {
  typed = trim(typed);
  if (typed.empty()) {
    return BadEntry{"Please type the slot number, then your code."};
  }
  if (typed == "*") {
    return EndSessionEntry{};
  }
  if (typed.front() == '#') {
    const std::string_view rest = trim(typed.substr(1));
    const auto space = rest.find(' ');
    const std::string_view number = rest.substr(0, space);
    if (!allDigits(number) || number.size() > 3 || std::stoi(std::string(number)) < 1) {
      return BadEntry{std::string(kTextRestockFormat)};
    }
    const std::string_view card =
        space == std::string_view::npos ? std::string_view() : trim(rest.substr(space + 1));
    const auto digits = static_cast<std::size_t>(std::count_if(
        card.begin(), card.end(), [](char c) { return c >= '0' && c <= '9'; }));
    if (card.empty() || card.find_first_not_of("0123456789 ") != std::string_view::npos ||
        digits < kMinCardDigits || digits > kMaxCardDigits) {
      return BadEntry{std::string(kTextRestockFormat)};
    }
    return RestockEntry{std::stoi(std::string(number)), std::string(card)};
  }
  if (typed.front() == '*') {
    std::string code;
    for (char c : typed.substr(1)) {
      if (c == ' ') {
        continue;
      }
      if (c < '0' || c > '9') {
        return BadEntry{"An operator code has 10 digits."};
      }
      code.push_back(c);
    }
    if (code.size() < kMinOperatorCodeDigits || code.size() > kMaxOperatorCodeDigits) {
      return BadEntry{"An operator code has 10 digits."};
    }
    return OperatorEntry{code};
  }
  const auto space = typed.find(' ');
  if (space == std::string_view::npos) {
    return BadEntry{"Type the slot number, the separator key, then your code."};
  }
  const std::string_view slot_text = typed.substr(0, space);
  const std::string_view code = trim(typed.substr(space + 1));
  if (!allDigits(slot_text) || slot_text.size() > 3) {
    return BadEntry{"Type the slot number, the separator key, then your code."};
  }
  const int number = std::stoi(std::string(slot_text));
  if (number < 1 || number > slot_count) {
    return BadEntry{"There is no slot " + std::to_string(number) + " in this box."};
  }
  if (code.find_first_not_of("0123456789 ") != std::string_view::npos ||
      code.find('*') != std::string_view::npos || code.empty()) {
    return BadEntry{"A pickup code has 10 digits. Please type it again."};
  }
  return PickupEntry{number - 1, std::string(code)};
}

}  // namespace lostcard::kiosk
