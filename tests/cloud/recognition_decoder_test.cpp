#include <catch2/catch.hpp>

#include "lostcard/cloud/card_number_decoder.hpp"

using lostcard::cloud::decodeCardNumber;
using lostcard::cloud::DecodeThresholds;
using lostcard::cloud::OcrLine;
using lostcard::cloud::redactDigitRuns;

namespace {

OcrLine confident(std::string text) { return OcrLine{std::move(text), 95.0, 90.0, 92.0}; }

}  // namespace

TEST_CASE("decodeCardNumber accepts checked numbers in the printed groupings") {
  CHECK(decodeCardNumber(confident("4111 1111 1111 1111")).number == "4111111111111111");
  CHECK(decodeCardNumber(confident("3782 822463 10005")).number == "378282246310005");
  CHECK(decodeCardNumber(confident("3056 930902 5904")).number == "30569309025904");
  CHECK(decodeCardNumber(confident("4222 2222 22222")).number == "4222222222222");
  CHECK(decodeCardNumber(confident("5555555555554444")).number == "5555555555554444");
  CHECK(decodeCardNumber(confident("  4111  1111 1111 1111\n")).number == "4111111111111111");
}

TEST_CASE("decodeCardNumber rejects numbers that fail Luhn") {
  const auto d = decodeCardNumber(confident("4111 1111 1111 1112"));
  CHECK_FALSE(d.number);
  CHECK(d.why == "fails the Luhn check");
}

TEST_CASE("decodeCardNumber rejects the wrong number of digits") {
  CHECK_FALSE(decodeCardNumber(confident("4111 1111 1111")).number);            // 12
  CHECK_FALSE(decodeCardNumber(confident("4111 1111 1111 1111 1111")).number);  // 20
  CHECK_FALSE(decodeCardNumber(confident("")).number);
  CHECK(decodeCardNumber(confident("")).why == "no digits in the line");
  CHECK(decodeCardNumber(confident("12/29")).why == "line holds characters other than digits");
}

TEST_CASE("decodeCardNumber rejects unknown groupings even when Luhn passes") {
  // 4111111111111111 split in a way no card prints it: likely a misread of spacing or extras.
  CHECK_FALSE(decodeCardNumber(confident("41 11111111 111111")).number);
  CHECK_FALSE(decodeCardNumber(confident("4111 1111 1111 111 1")).number);
}

TEST_CASE("decodeCardNumber rejects letters and punctuation") {
  CHECK_FALSE(decodeCardNumber(confident("4111 1111 1111 111I")).number);
  CHECK_FALSE(decodeCardNumber(confident("4111-1111-1111-1111")).number);
}

TEST_CASE("decodeCardNumber rejects a checked number read with low confidence") {
  const OcrLine low_mean{"4111 1111 1111 1111", 60.0, 55.0, 58.0};
  const auto d = decodeCardNumber(low_mean);
  CHECK_FALSE(d.number);
  CHECK(d.why.find("mean confidence") != std::string::npos);

  const OcrLine one_bad_digit{"4111 1111 1111 1111", 92.0, 12.0, 90.0};
  CHECK_FALSE(decodeCardNumber(one_bad_digit).number);

  // Tesseract sometimes inserts a digit with high character confidences; the group's word
  // confidence gives it away.
  const OcrLine unsure_group{"4111 1111 1111 1111", 96.0, 94.0, 63.0};
  const auto g = decodeCardNumber(unsure_group);
  CHECK_FALSE(g.number);
  CHECK(g.why.find("digit group") != std::string::npos);

  const DecodeThresholds lenient{50.0, 10.0, 50.0};
  CHECK(decodeCardNumber(low_mean, lenient).number == "4111111111111111");
}

TEST_CASE("decodeCardNumber's reasons never carry the digits") {
  for (const char* text : {"4111 1111 1111 1112", "4111 1111 1111 1111 1111", "41 11111111 111111",
                           "4111111111111x"}) {
    const auto d = decodeCardNumber(OcrLine{text, 10.0, 1.0, 5.0});
    CHECK_FALSE(d.number);
    CHECK(redactDigitRuns(d.why) == d.why);
  }
}

TEST_CASE("redactDigitRuns hides runs longer than the limit") {
  CHECK(redactDigitRuns("front frame 1: 9000x9000 px") == "front frame 1: 9000x9000 px");
  CHECK(redactDigitRuns("read 4111111111111111 ok") == "read ################ ok");
  CHECK(redactDigitRuns("4111 1111") == "4111 1111");
  CHECK(redactDigitRuns("12345", 4) == "#####");
  CHECK(redactDigitRuns("size 50000x50000") == "size 50000x50000");
  CHECK(redactDigitRuns("amex group 822463") == "amex group ######");
  CHECK(redactDigitRuns("", 4).empty());
}
