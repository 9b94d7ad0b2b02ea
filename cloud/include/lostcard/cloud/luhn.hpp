#pragma once
// The Luhn (mod 10) check that every payment card number carries in its last digit. Recognition
// accepts a candidate number only when it passes; the card generator uses luhnCheckDigit() to
// make valid test numbers.
//
//   luhnValid("4111111111111111");       // true
//   luhnCheckDigit("411111111111111");   // '1'
#include <optional>
#include <string_view>

namespace lostcard::cloud {

// True when `digits` is a non-empty string of ASCII digits whose Luhn sum is a multiple of 10.
// Anything else (empty, spaces, letters) is false.
bool luhnValid(std::string_view digits);

// The digit to append to `payload` so the whole passes luhnValid(); nullopt when `payload` is
// empty or holds a non-digit.
std::optional<char> luhnCheckDigit(std::string_view payload);

}  // namespace lostcard::cloud
