#include <array>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lostcard/cloud/card_number_decoder.hpp"
#include "lostcard/cloud/luhn.hpp"

using lostcard::cloud::decodeCardNumber;
using lostcard::cloud::DecodeThresholds;
using lostcard::cloud::OcrLine;
using lostcard::cloud::redactDigitRuns;

namespace {

OcrLine confident(std::string text) { return OcrLine{std::move(text), 95.0, 90.0, 92.0, {}}; }

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
  const OcrLine low_mean{"4111 1111 1111 1111", 60.0, 55.0, 58.0, {}};
  const auto d = decodeCardNumber(low_mean);
  CHECK_FALSE(d.number);
  CHECK(d.why.find("mean confidence") != std::string::npos);

  const OcrLine one_bad_digit{"4111 1111 1111 1111", 92.0, 12.0, 90.0, {}};
  CHECK_FALSE(decodeCardNumber(one_bad_digit).number);

  // Tesseract sometimes inserts a digit with high character confidences; the group's word
  // confidence gives it away.
  const OcrLine unsure_group{"4111 1111 1111 1111", 96.0, 94.0, 63.0, {}};
  const auto g = decodeCardNumber(unsure_group);
  CHECK_FALSE(g.number);
  CHECK(g.why.find("digit group") != std::string::npos);

  const DecodeThresholds lenient{50.0, 10.0, 50.0};
  CHECK(decodeCardNumber(low_mean, lenient).number == "4111111111111111");
}

TEST_CASE("decodeCardNumber's reasons never carry the digits") {
  for (const char* text : {"4111 1111 1111 1112", "4111 1111 1111 1111 1111", "41 11111111 111111",
                           "4111111111111x"}) {
    const auto d = decodeCardNumber(OcrLine{text, 10.0, 1.0, 5.0, {}});
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

// ---- decodeReading: per-character alternatives, check rules, repair and refusal ----

namespace {

using lostcard::cloud::CharChoice;
using lostcard::cloud::decodeReading;
using lostcard::cloud::defaultCardFormats;
using lostcard::cloud::fuseReadings;
using lostcard::cloud::LineReading;
using lostcard::cloud::readingOfText;
using lostcard::cloud::RepairPolicy;

constexpr const char* kTruth = "4556737586899855";  // Luhn-valid

bool luhnOk(const std::string& digits) { return lostcard::cloud::luhnValid(digits); }

// kTruth read with every character sure (0.97) and grouped 4-4-4-4.
LineReading sureReading(const std::string& digits = kTruth) {
  LineReading r;
  for (const char c : digits) {
    r.positions.push_back({CharChoice{c, 0.97}});
  }
  r.groups = {4, 4, 4, 4};
  return r;
}

// The digit that, put at position `at` of `digits`, makes the whole pass Luhn.
char luhnFix(std::string digits, std::size_t at) {
  for (char d = '0'; d <= '9'; ++d) {
    digits[at] = d;
    if (luhnOk(digits)) {
      return d;
    }
  }
  FAIL("no Luhn fix");
  return '?';
}

}  // namespace

TEST_CASE("decodeReading accepts a clean checked reading without repair") {
  const auto d = decodeReading(readingOfText("4556 7375 8689 9855", 0.95), defaultCardFormats());
  REQUIRE(d.number);
  CHECK(*d.number == kTruth);
  CHECK(d.repaired == 0);
  CHECK(d.format == "payment");
  CHECK(d.confidence == Approx(0.95));
}

TEST_CASE("decodeReading repairs one misread digit from its alternatives") {
  LineReading r = sureReading();
  // Position 5 ('3') misread as '8' with the truth a close second.
  r.positions[5] = {CharChoice{'8', 0.55}, CharChoice{'3', 0.40}};
  const auto d = decodeReading(r, defaultCardFormats());
  INFO(d.why);
  REQUIRE(d.number);
  CHECK(*d.number == kTruth);
  CHECK(d.repaired == 1);
  CHECK(d.confidence > 0.5);
  CHECK(d.confidence < 0.97);

  SECTION("but not when repairs are switched off") {
    const auto off = decodeReading(r, defaultCardFormats(), RepairPolicy{.max_repairs = 0});
    CHECK_FALSE(off.number);
    CHECK_FALSE(off.ambiguous);
  }
  SECTION("nor from an alternative the reader found implausible") {
    r.positions[5] = {CharChoice{'8', 0.88}, CharChoice{'3', 0.08}};
    const auto weak = decodeReading(r, defaultCardFormats());
    CHECK_FALSE(weak.number);
    CHECK(lostcard::cloud::redactDigitRuns(weak.why) == weak.why);
  }
}

TEST_CASE("decodeReading refuses when two repairs tie") {
  LineReading r = sureReading();
  std::string misread = kTruth;
  misread[5] = '8';
  // A second position whose alternative also repairs the misread line.
  const std::size_t other = 10;
  const char rival = luhnFix(misread, other);
  REQUIRE(rival != misread[other]);
  r.positions[5] = {CharChoice{'8', 0.50}, CharChoice{'3', 0.45}};
  r.positions[other] = {CharChoice{misread[other], 0.50}, CharChoice{rival, 0.45}};
  const auto d = decodeReading(r, defaultCardFormats());
  CHECK_FALSE(d.number);
  CHECK(d.ambiguous);
  CHECK(d.why.find("none is clearly likelier") != std::string::npos);
  CHECK(lostcard::cloud::redactDigitRuns(d.why) == d.why);
}

TEST_CASE("decodeReading refuses a checked reading whose characters are unsure") {
  const auto d = decodeReading(readingOfText("4556 7375 8689 9855", 0.4), defaultCardFormats());
  CHECK_FALSE(d.number);
  CHECK(d.why.find("mean character score") != std::string::npos);
  const auto floor = decodeReading(readingOfText("4556 7375 8689 9855", 0.04), defaultCardFormats(),
                                   RepairPolicy{.min_mean_score = 0.0});
  CHECK_FALSE(floor.number);
}

TEST_CASE("decodeReading rejects lengths, groupings and checks no format allows") {
  const auto formats = defaultCardFormats();
  CHECK(decodeReading(readingOfText("4556 7375 8689", 0.95), formats).why ==
        "12 characters, no known format has that length");
  CHECK_FALSE(decodeReading(readingOfText("4556 7375 8689 9856", 0.95), formats).number);
  CHECK_FALSE(decodeReading(readingOfText("45 5673758689 9855", 0.95), formats).number);
  CHECK(decodeReading(LineReading{}, formats).why == "no characters in the line");
}

TEST_CASE("decodeReading reads ID numbers of a configured MOD 11-2 format, X included") {
  const auto formats = lostcard::cloud::parseCardFormats(
      "format name=payment length=13-19 check=luhn groups=4-4-4-4\n"
      "format name=id-18 length=18 check=mod11-2 groups=6-8-4 last=digit-or-x\n");
  REQUIRE(formats);
  const auto d = decodeReading(readingOfText("110105 19491231 002X", 0.9), *formats);
  REQUIRE(d.number);
  CHECK(*d.number == "11010519491231002X");
  CHECK(d.format == "id-18");

  // The X read as a 4 by mistake, X the second choice: repaired by the check.
  LineReading r = readingOfText("110105 19491231 0024", 0.95);
  r.positions[17] = {CharChoice{'4', 0.5}, CharChoice{'X', 0.4}};
  const auto repaired = decodeReading(r, *formats);
  REQUIRE(repaired.number);
  CHECK(*repaired.number == "11010519491231002X");
  CHECK(repaired.repaired == 1);

  // Payment cards never end in X.
  CHECK_FALSE(decodeReading(readingOfText("4556 7375 8689 985X", 0.95), *formats).number);
}

// The sum over every number that differs from `base` only at `open` positions, each taking any
// digit (scored as `reading` scores it), of the numbers passing `format`'s check: what
// checkedShare's denominator must be when every other position is certain.
double bruteForcePassing(const LineReading& reading, std::string base,
                         const std::vector<std::size_t>& open,
                         const lostcard::cloud::CardFormat& format, std::size_t k = 0) {
  if (k == open.size()) {
    double p = 1.0;
    for (const std::size_t i : open) {
      double score = 0.0;
      for (const CharChoice& c : reading.positions[i]) {
        score = c.symbol == base[i] ? c.score : score;
      }
      p *= score;
    }
    return lostcard::cloud::passesCheck(format.check, base) ? p : 0.0;
  }
  double total = 0.0;
  for (char d = '0'; d <= '9'; ++d) {
    base[open[k]] = d;
    total += bruteForcePassing(reading, base, open, format, k + 1);
  }
  return total;
}

// A position that holds each digit with the given scores (digits 0..9 in order).
std::vector<CharChoice> spread(const std::array<double, 10>& scores) {
  std::vector<CharChoice> choices;
  for (int d = 0; d < 10; ++d) {
    choices.push_back({static_cast<char>('0' + d), scores[static_cast<std::size_t>(d)]});
  }
  return choices;
}

TEST_CASE("checkedShare weighs a number against every checked number, however far") {
  using lostcard::cloud::checkedShare;
  const auto payment = defaultCardFormats().front();
  LineReading r;
  for (const char c : std::string(kTruth)) {
    r.positions.push_back({CharChoice{c, 1.0}});
  }
  r.groups = {4, 4, 4, 4};

  SECTION("a number read with every digit certain is the only one") {
    CHECK(checkedShare(r, kTruth, payment) == Approx(1.0));
  }
  SECTION("three doubtful positions: the same as summing every checked filling") {
    const std::vector<std::size_t> open = {0, 3, 9};
    r.positions[0] = spread({0.02, 0.03, 0.05, 0.1, 0.4, 0.1, 0.2, 0.05, 0.03, 0.02});
    r.positions[3] = spread({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1});
    r.positions[9] = spread({0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.9, 0.01, 0.02, 0.01});
    const double own = 0.4 * 0.1 * 0.9;  // kTruth has 4, 6 and 6 there
    CHECK(checkedShare(r, kTruth, payment) ==
          Approx(own / bruteForcePassing(r, kTruth, open, payment)));
  }
  SECTION("a number two changes from another checked one shares with it") {
    // Two doubtful glyphs whose second choices together also pass Luhn (each alone does not):
    // a decoder allowed one repair never sees that rival.
    std::string rival = kTruth;
    bool found = false;
    for (char a = '0'; a <= '9' && !found; ++a) {
      for (char b = '0'; b <= '9' && !found; ++b) {
        rival[0] = a;
        rival[3] = b;
        found = a != kTruth[0] && b != kTruth[3] && luhnOk(rival);
      }
    }
    REQUIRE(found);
    r.positions[0] = {CharChoice{kTruth[0], 0.5}, CharChoice{rival[0], 0.45}};
    r.positions[3] = {CharChoice{kTruth[3], 0.6}, CharChoice{rival[3], 0.35}};
    const double share = checkedShare(r, kTruth, payment);
    CHECK(share < 0.7);
    CHECK(share > 0.5);
    CHECK(checkedShare(r, rival, payment) < 0.4);
    // The decoder's confidence (the mean score) alone calls kTruth sure.
    const auto d = decodeReading(r, defaultCardFormats(), RepairPolicy{.max_repairs = 0});
    REQUIRE(d.number);
    CHECK(d.confidence > 0.9);
    CHECK(d.checked_share == Approx(share));
  }
  SECTION("no share for a number the reading cannot give, or a format without a check") {
    CHECK(checkedShare(r, "4556", payment) == 0.0);
    auto unchecked = payment;
    unchecked.check = lostcard::cloud::CheckRule::kNone;
    CHECK(checkedShare(r, kTruth, unchecked) == 0.0);
  }
}

TEST_CASE("checkedShare follows ISO 7064 MOD 11-2, X included") {
  using lostcard::cloud::checkedShare;
  const auto formats = lostcard::cloud::parseCardFormats(
      "format name=id-18 length=18 check=mod11-2 groups=6-8-4 last=digit-or-x\n");
  REQUIRE(formats);
  const std::string id = "11010519491231002X";
  LineReading r = readingOfText("110105 19491231 002X", 1.0);
  CHECK(checkedShare(r, id, formats->front()) == Approx(1.0));
  // One doubtful digit: exactly one value of it passes with the X, so the share is the
  // number's own weight over the weights of the payloads passing with each check character.
  r.positions[17] = {CharChoice{'X', 0.5}, CharChoice{'4', 0.5}};
  r.positions[4] = spread({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1});
  std::string other = id;
  other[17] = '4';
  const auto fix = [&] {
    for (char d = '0'; d <= '9'; ++d) {
      other[4] = d;
      if (lostcard::cloud::passesCheck(lostcard::cloud::CheckRule::kIso7064Mod11_2, other)) {
        return true;
      }
    }
    return false;
  }();
  REQUIRE(fix);
  CHECK(checkedShare(r, id, formats->front()) == Approx(0.5));
}

TEST_CASE("fuseReadings lets frames outvote one frame's misread") {
  LineReading a = sureReading();
  a.positions[5] = {CharChoice{'8', 0.6}, CharChoice{'3', 0.3}};
  a.positions[9] = {CharChoice{'2', 0.9}};  // a confident misread in one frame only
  LineReading b = sureReading();
  LineReading c = sureReading();
  c.positions[5] = {CharChoice{'3', 0.7}, CharChoice{'8', 0.2}};

  // Frame a alone fails (two errors, one not in its alternatives).
  CHECK_FALSE(decodeReading(a, defaultCardFormats()).number);
  const LineReading fused = fuseReadings({a, b, c});
  REQUIRE(fused.positions.size() == 16);
  CHECK(fused.groups == std::vector<std::size_t>{4, 4, 4, 4});
  CHECK(fused.positions[5][0].symbol == '3');
  CHECK(fused.positions[9][0].symbol == kTruth[9]);
  const auto d = decodeReading(fused, defaultCardFormats());
  INFO(d.why);
  REQUIRE(d.number);
  CHECK(*d.number == kTruth);
  CHECK(d.repaired == 0);
}

TEST_CASE("fuseReadings keeps one reading as it is and leaves out other lengths") {
  const LineReading a = sureReading();
  const LineReading one = fuseReadings({a});
  REQUIRE(one.positions.size() == 16);
  CHECK(one.positions[0][0].score == Approx(0.97).epsilon(0.01));

  const LineReading shorter = readingOfText("4556 7375 8689 985", 0.9);
  const LineReading fused = fuseReadings({shorter, a, sureReading()});
  CHECK(fused.positions.size() == 16);
  CHECK(fuseReadings({}).positions.empty());
}

TEST_CASE("fillErasures fills a reader's doubtful glyphs from another reader that agrees") {
  using lostcard::cloud::fillErasures;
  SECTION("the other reader lost the line's end but agrees on the rest") {
    CHECK(fillErasures("42?8355435010392", "42083554350103") == "4208355435010392");
  }
  SECTION("the other reader added and missed a glyph") {
    CHECK(fillErasures("45?9148802731234", "7451914880273123") == "4519148802731234");
  }
  SECTION("two doubtful glyphs") {
    CHECK(fillErasures("4?11111111?11111", "4211111111311111") == "4211111111311111");
  }
  SECTION("a digit the readers read differently gives nothing") {
    CHECK_FALSE(fillErasures("42?8355435010392", "4208355435010393").has_value());
    CHECK_FALSE(fillErasures("42?8355435010392", "4208355475010392").has_value());
  }
  SECTION("nothing to fill, too much to fill, too little agreement") {
    CHECK_FALSE(fillErasures("4208355435010392", "4208355435010392").has_value());
    CHECK_FALSE(fillErasures("4???355435010392", "4208355435010392").has_value());
    CHECK_FALSE(fillErasures("42?8355435010392", "420835").has_value());
    CHECK_FALSE(fillErasures("42?8355435010392", "").has_value());
  }
}
