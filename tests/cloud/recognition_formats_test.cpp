// Check rules and the issuer-format config (card_formats.hpp): pure logic, no images.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/test/child_process.hpp"

using lostcard::cloud::CardFormat;
using lostcard::cloud::CheckRule;
using lostcard::cloud::defaultCardFormats;
using lostcard::cloud::matchFormat;
using lostcard::cloud::mod11_2CheckChar;
using lostcard::cloud::parseCardFormats;
using lostcard::cloud::passesCheck;

TEST_CASE("ISO 7064 MOD 11-2 accepts known ID numbers, including an X check character") {
  CHECK(passesCheck(CheckRule::kIso7064Mod11_2, "11010519491231002X"));
  CHECK(passesCheck(CheckRule::kIso7064Mod11_2, "440524188001010014"));
  CHECK(passesCheck(CheckRule::kIso7064Mod11_2, "110101199003074477"));
  CHECK(mod11_2CheckChar("11010519491231002") == 'X');
  CHECK(mod11_2CheckChar("44052418800101001") == '4');
  // A check character alone protects nothing: "1" alone sums to the rule's target.
  CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, "1"));
  CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, ""));
}

TEST_CASE("ISO 7064 MOD 11-2 catches single substitutions and adjacent transpositions") {
  const std::string good = "440524188001010014";
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (char d = '0'; d <= '9'; ++d) {
      if (d == good[i]) {
        continue;
      }
      std::string bad = good;
      bad[i] = d;
      INFO(i << " -> " << d);
      CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, bad));
    }
  }
  std::string swapped = "11010519491231002X";
  std::swap(swapped[3], swapped[4]);
  CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, swapped));
  CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, "X"));
  CHECK_FALSE(passesCheck(CheckRule::kIso7064Mod11_2, ""));
  CHECK_FALSE(mod11_2CheckChar("12a4"));
  CHECK_FALSE(passesCheck(CheckRule::kNone, "4111111111111111"));
}

TEST_CASE("the built-in payment format takes Luhn numbers in their printed groupings") {
  const auto formats = defaultCardFormats();
  CHECK(matchFormat(formats, "4111111111111111", {4, 4, 4, 4}) != nullptr);
  CHECK(matchFormat(formats, "4111111111111111") != nullptr);        // gaps not seen
  CHECK(matchFormat(formats, "4111111111111111", {16}) != nullptr);  // one unbroken run
  CHECK(matchFormat(formats, "378282246310005", {4, 6, 5}) != nullptr);
  CHECK(matchFormat(formats, "6011000990139424014", {6, 13}) == nullptr);  // fails Luhn
  CHECK(matchFormat(formats, "4111111111111111", {4, 6, 6}) == nullptr);   // wrong grouping
  CHECK(matchFormat(formats, "4111111111111112") == nullptr);              // fails Luhn
  CHECK(matchFormat(formats, "411111111111", {}) == nullptr);              // 12 digits
  CHECK(matchFormat(formats, "411111111111111X") == nullptr);              // no X here
}

TEST_CASE("parseCardFormats reads formats with prefixes, check rules and groupings") {
  std::string why;
  const auto formats = parseCardFormats(
      "# issuers\n"
      "format name=payment length=13-19 prefix=* check=luhn groups=4-4-4-4,6-13\n"
      "\n"
      "format name=id-18 length=18 prefix=1,4 check=mod11-2 groups=6-8-4 last=digit-or-x  # ID\n",
      &why);
  REQUIRE(formats);
  INFO(why);
  REQUIRE(formats->size() == 2);
  const CardFormat& id = (*formats)[1];
  CHECK(id.name == "id-18");
  CHECK(id.min_length == 18);
  CHECK(id.max_length == 18);
  CHECK(id.prefixes == std::vector<std::string>{"1", "4"});
  CHECK(id.check == CheckRule::kIso7064Mod11_2);
  CHECK(id.last_may_be_x);
  CHECK(id.groupings == std::vector<std::vector<std::size_t>>{{6, 8, 4}});

  const CardFormat* f = matchFormat(*formats, "11010519491231002X", {6, 8, 4});
  REQUIRE(f != nullptr);
  CHECK(f->name == "id-18");
  CHECK(matchFormat(*formats, "11010519491231002X", {4, 4, 4, 4, 2}) == nullptr);
  CHECK(matchFormat(*formats, "21010519491231002X") == nullptr);  // fails the check
  CHECK(matchFormat(*formats, "540524188001010014") == nullptr);  // prefix 5 not listed
  CHECK(matchFormat(*formats, "6011000990139424", {4, 4, 4, 4})->name == "payment");
}

TEST_CASE("parseCardFormats refuses malformed configs with the line number") {
  const auto refuses = [](const std::string& text, const std::string& reason) {
    std::string why;
    INFO(text);
    CHECK_FALSE(parseCardFormats(text, &why));
    CHECK(why.find(reason) != std::string::npos);
  };
  refuses("format name=x length=16\n", "line 1: a format needs check=");
  refuses("# c\nformat name=x length=16 check=crc32\n", "line 2: unknown check rule 'crc32'");
  refuses("format name=x length=20-10 check=luhn\n", "bad length");
  refuses("format name=x length=16 check=luhn groups=4-4-x\n", "bad groups");
  refuses("format name=x length=16 check=luhn prefix=4a\n", "bad prefix");
  refuses("format name=x length=16 check=luhn colour=red\n", "unknown key 'colour'");
  refuses("format length=16 check=luhn\n", "needs name=");
  refuses("format name=x check=luhn\n", "needs length=");
  refuses("formats name=x length=16 check=luhn\n", "expected 'format'");
  refuses("format name=x length=16 check\n", "expected key=value");
  refuses("# nothing\n", "no formats");
}

TEST_CASE("models/card_formats.conf parses and matches the built-in formats") {
  std::ifstream in(lostcard::test::sourceDir() + "/models/card_formats.conf");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::string why;
  const auto formats = parseCardFormats(text.str(), &why);
  INFO(why);
  REQUIRE(formats);
  const auto builtin = defaultCardFormats();
  REQUIRE(formats->size() == builtin.size());
  for (std::size_t i = 0; i < builtin.size(); ++i) {
    CHECK((*formats)[i].name == builtin[i].name);
    CHECK((*formats)[i].min_length == builtin[i].min_length);
    CHECK((*formats)[i].max_length == builtin[i].max_length);
    CHECK((*formats)[i].prefixes == builtin[i].prefixes);
    CHECK((*formats)[i].check == builtin[i].check);
    CHECK((*formats)[i].groupings == builtin[i].groupings);
    CHECK((*formats)[i].last_may_be_x == builtin[i].last_may_be_x);
  }
}
