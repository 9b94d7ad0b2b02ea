#include "lostcard/cloud/luhn.hpp"

namespace lostcard::cloud {
namespace {

bool allDigits(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

// Luhn sum of `digits`, doubling every second digit counted from the right, starting with the
// rightmost one when `double_rightmost` is set.
int luhnSum(std::string_view digits, bool double_rightmost) {
  int sum = 0;
  bool double_it = double_rightmost;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (double_it) {
      d *= 2;
      if (d > 9) {
        d -= 9;
      }
    }
    sum += d;
    double_it = !double_it;
  }
  return sum;
}

}  // namespace

bool luhnValid(std::string_view digits) {
  return allDigits(digits) && luhnSum(digits, false) % 10 == 0;
}

std::optional<char> luhnCheckDigit(std::string_view payload) {
  if (!allDigits(payload)) {
    return std::nullopt;
  }
  const int sum = luhnSum(payload, true);
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

}  // namespace lostcard::cloud
