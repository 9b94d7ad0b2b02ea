#include "lostcard/cloud/luhn.hpp"

#include <catch2/catch.hpp>

using lostcard::cloud::luhnCheckDigit;
using lostcard::cloud::luhnValid;

TEST_CASE("luhnValid accepts well-known test card numbers") {
  CHECK(luhnValid("4111111111111111"));  // Visa
  CHECK(luhnValid("5555555555554444"));  // Mastercard
  CHECK(luhnValid("378282246310005"));   // American Express, 15 digits
  CHECK(luhnValid("30569309025904"));    // Diners, 14 digits
  CHECK(luhnValid("4222222222222"));     // 13-digit Visa
  CHECK(luhnValid("6011111111111117"));  // Discover
  CHECK(luhnValid("79927398713"));       // the textbook example
  CHECK(luhnValid("0"));
}

TEST_CASE("luhnValid rejects a wrong check digit, a substitution and a transposition") {
  CHECK_FALSE(luhnValid("4111111111111112"));
  CHECK_FALSE(luhnValid("4111111111111121"));  // last two digits swapped
  CHECK_FALSE(luhnValid("5555555555554445"));
  CHECK_FALSE(luhnValid("5555555555545444"));  // adjacent transposition of 4 and 5
  CHECK_FALSE(luhnValid("79927398710"));
}

TEST_CASE("luhnValid is false for empty input and anything but digits") {
  CHECK_FALSE(luhnValid(""));
  CHECK_FALSE(luhnValid("4111 1111 1111 1111"));
  CHECK_FALSE(luhnValid("4111-1111-1111-1111"));
  CHECK_FALSE(luhnValid("411111111111111a"));
  CHECK_FALSE(luhnValid(" 4111111111111111"));
  CHECK_FALSE(luhnValid("４111111111111111"));  // full-width digit (UTF-8)
}

TEST_CASE("luhnCheckDigit completes a number so it passes") {
  CHECK(luhnCheckDigit("411111111111111") == '1');
  CHECK(luhnCheckDigit("7992739871") == '3');
  CHECK(luhnCheckDigit("555555555555444") == '4');
  for (const std::string payload : {"4", "40000000000000", "123456789012345678"}) {
    const auto digit = luhnCheckDigit(payload);
    REQUIRE(digit);
    CHECK(luhnValid(payload + *digit));
  }
  CHECK_FALSE(luhnCheckDigit(""));
  CHECK_FALSE(luhnCheckDigit("41x"));
}
