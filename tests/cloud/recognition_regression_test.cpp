// The recognizer over the committed regression images (tests/data/recognition, made by
// lostcard-cardgen --preset hard; see its README.md). A wrong number is never accepted; the cards
// expected.tsv marks "read" must be read exactly, "unread" ones (no number on them) must not be
// read, and "pending" ones (too hard for the recognizer so far) may be read only exactly.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/cloud/recognition.hpp"
#include "lostcard/test/child_process.hpp"

namespace fs = std::filesystem;
using lostcard::cloud::CardImages;
using lostcard::cloud::CardReading;
using lostcard::cloud::ReadOutcome;
using lostcard::cloud::Recognizer;
using lostcard::cloud::RecognizerOptions;

namespace {

fs::path dataDir() { return fs::path(lostcard::test::sourceDir()) / "tests/data/recognition"; }

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// "<name>\t<value>" lines, '#' comments skipped, in file order.
std::vector<std::pair<std::string, std::string>> readPairs(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto tab = line.find('\t');
    pairs.emplace_back(line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  return pairs;
}

std::string lastFour(const std::string& digits) {
  return digits.size() < 4 ? digits : digits.substr(digits.size() - 4);
}

}  // namespace

TEST_CASE("every regression image has an expectation, and every expectation an image") {
  const auto labels = readPairs(dataDir() / "labels.tsv");
  const auto expected = readPairs(dataDir() / "expected.tsv");
  REQUIRE(labels.size() >= 12);
  std::map<std::string, std::string> expectation(expected.begin(), expected.end());
  CHECK(expectation.size() == labels.size());
  for (const auto& [name, number] : labels) {
    INFO(name);
    REQUIRE(expectation.count(name) == 1);
    const std::string& e = expectation.at(name);
    CHECK((e == "read" || e == "unread" || e == "pending"));
    // A card without a number can only be expected unread; one with a number is never
    // expected unread (it is read or pending).
    CHECK((number.empty() == (e == "unread")));
    CHECK(fs::is_regular_file(dataDir() / name / "front.jpg"));
    CHECK(fs::is_regular_file(dataDir() / name / "back.jpg"));
  }
}

TEST_CASE("the recognizer never reads a wrong number on the regression images") {
  Recognizer recognizer(RecognizerOptions{"", lostcard::test::sourceDir() + "/models", {}});
  const auto labels = readPairs(dataDir() / "labels.tsv");
  const auto expected_pairs = readPairs(dataDir() / "expected.tsv");
  const std::map<std::string, std::string> expected(expected_pairs.begin(), expected_pairs.end());
  int read = 0;
  std::vector<std::string> tighten;
  for (const auto& [name, truth] : labels) {
    const auto it = expected.find(name);
    REQUIRE(it != expected.end());
    const std::string& expectation = it->second;
    const CardReading reading = recognizer.read(CardImages{{slurp(dataDir() / name / "front.jpg")},
                                                           {slurp(dataDir() / name / "back.jpg")}});
    const bool got_number = reading.outcome == ReadOutcome::kRead;
    // Compared here, not in CHECK, so a failure prints the last four digits, not the numbers.
    const bool exact = got_number && !truth.empty() && reading.number == truth;
    INFO(name << " expected " << expectation << ", got "
              << lostcard::cloud::toString(reading.outcome)
              << (got_number ? " ending " + lastFour(reading.number) : "") << " (truth ending "
              << lastFour(truth) << "): " << reading.detail);
    // The hard requirement: a number that comes back is the card's own.
    CHECK((!got_number || exact));
    if (expectation == "read") {
      CHECK(exact);
    } else if (expectation == "unread") {
      CHECK_FALSE(got_number);
    } else if (exact) {
      tighten.push_back(name);
    }
    read += exact ? 1 : 0;
    // Operator details never carry a card number.
    CHECK_FALSE(std::regex_search(reading.detail, std::regex("[0-9]{6,}")));
  }
  for (const auto& name : tighten) {
    WARN(name << " is now read exactly: mark it \"read\" in tests/data/recognition/expected.tsv");
  }
  WARN(read << " of " << labels.size() << " regression cards read exactly");
}
