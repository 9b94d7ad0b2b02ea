#include "lostcard/cloud/luhn.hpp"

#include "lostcard/cloud/card_formats.hpp"

namespace lostcard::cloud {

// The rule itself is defined once, as a weighted sum (checkSumOf in card_formats.hpp).

bool luhnValid(std::string_view digits) { return passesCheck(CheckRule::kLuhn, digits); }

std::optional<char> luhnCheckDigit(std::string_view payload) {
  return checkCharacter(CheckRule::kLuhn, payload);
}

}  // namespace lostcard::cloud
